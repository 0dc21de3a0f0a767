// One stage's log, live: lines arrive over the SSE log stream (docs/api.md, Logs), which
// resumes after Last-Event-ID by itself when the connection drops, and ends with an `end`
// event once the stage is over. The view follows the tail until the reader scrolls up.
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { logsURL } from "../api";
import { useVisible } from "../lib/hooks";
import { Renderer, highlight, lineFromHash, matches, type RenderedLine } from "../lib/logs";

export interface LogViewProps {
  runId: string;
  stage: string;
  /** hash is the location's #L12 link, if any. */
  hash: string;
}

type StreamState = "connecting" | "live" | "paused" | "ended" | "error";

export function LogView({ runId, stage, hash }: LogViewProps) {
  const [lines, setLines] = useState<RenderedLine[]>([]);
  const [state, setState] = useState<StreamState>("connecting");
  const [endStatus, setEndStatus] = useState("");
  const [query, setQuery] = useState("");
  const [follow, setFollow] = useState(true);
  const box = useRef<HTMLDivElement>(null);
  const target = lineFromHash(hash);

  const renderer = useRef<Renderer | null>(null);
  renderer.current ??= new Renderer();
  const lastSeq = useRef(0);
  const visible = useVisible();
  const ended = state === "ended";

  // One connection while the tab is visible and the stage not over; a reconnect (the tab
  // shown again) asks for the lines after the last one it has.
  useEffect(() => {
    if (ended) return;
    if (!visible) {
      setState("paused");
      return;
    }
    // Lines come in bursts; batch them into one render per frame.
    let pending: RenderedLine[] = [];
    let frame = 0;
    const flush = () => {
      frame = 0;
      if (pending.length === 0) return;
      const batch = pending;
      pending = [];
      setLines((old) => old.concat(batch));
    };
    const after = lastSeq.current;
    const es = new EventSource(logsURL(runId, stage) + (after ? `&after=${after}` : ""));
    es.onopen = () => setState("live");
    es.onmessage = (m) => {
      const l = JSON.parse(m.data) as { seq: number; text: string; time?: string };
      if (l.seq <= lastSeq.current) return;
      lastSeq.current = l.seq;
      pending.push(renderer.current!.render(l.seq, l.text, l.time));
      if (!frame) frame = requestAnimationFrame(flush);
    };
    es.addEventListener("end", (m) => {
      // Closed by us: EventSource would otherwise reconnect to a finished stream forever.
      es.close();
      if (frame) cancelAnimationFrame(frame);
      flush();
      try {
        setEndStatus((JSON.parse((m as MessageEvent).data) as { status: string }).status);
      } catch {
        setEndStatus("");
      }
      setState("ended");
    });
    es.onerror = () => {
      // CONNECTING: the browser retries with Last-Event-ID; CLOSED: the server refused.
      setState(es.readyState === EventSource.CLOSED ? "error" : "connecting");
    };
    return () => {
      es.close();
      if (frame) cancelAnimationFrame(frame);
      flush();
    };
  }, [runId, stage, visible, ended]);

  const shown = useMemo(() => lines.filter((l) => matches(l, query)), [lines, query]);

  // Follow the tail: after new lines, scroll to the bottom unless the reader scrolled away.
  useLayoutEffect(() => {
    const el = box.current;
    if (el && follow && target === undefined) el.scrollTop = el.scrollHeight;
  }, [shown, follow, target]);

  // A #L12 link: scroll to the line once it has arrived.
  const scrolledTo = useRef<number | undefined>(undefined);
  useEffect(() => {
    if (target === undefined || scrolledTo.current === target) return;
    const el = document.getElementById(`L${target}`);
    if (el) {
      scrolledTo.current = target;
      setFollow(false);
      el.scrollIntoView({ block: "center" });
    }
  }, [target, lines]);

  const onScroll = useCallback(() => {
    const el = box.current;
    if (!el) return;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
    setFollow(atBottom);
  }, []);

  const status =
    state === "ended"
      ? `Stage ${endStatus || "over"}; ${lines.length} lines`
      : state === "live"
        ? `Streaming; ${lines.length} lines`
        : state === "paused"
          ? `Paused while the tab is hidden; ${lines.length} lines`
          : state === "error"
          ? "The log stream closed; reload the page to try again"
          : "Connecting…";

  return (
    <section className="log" aria-labelledby="log-title">
      <div className="log-bar">
        <h3 id="log-title">
          Log of <code>{stage}</code>
        </h3>
        <label className="log-search">
          <span className="visually-hidden">Search the log</span>
          <input
            type="search"
            placeholder="Search the log"
            value={query}
            onChange={(e) => setQuery(e.target.value)}
          />
        </label>
        <label className="log-follow">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Follow
        </label>
      </div>
      <p className="log-status" role="status" data-state={state}>
        {status}
        {query ? ` · ${shown.length} match${shown.length === 1 ? "" : "es"}` : ""}
      </p>
      <div
        className="log-lines"
        ref={box}
        onScroll={onScroll}
        tabIndex={0}
        role="log"
        aria-label={`Log of stage ${stage}`}
        aria-live="off"
      >
        {shown.length === 0 && (
          <p className="log-empty">{query ? "No line matches." : state === "ended" ? "No output." : "No output yet."}</p>
        )}
        {shown.map((l) => (
          <div key={l.seq} id={`L${l.seq}`} className={`log-line${l.seq === target ? " target" : ""}`}>
            {/* Out of the tab order: a long log would otherwise be thousands of stops. */}
            <a
              className="ln"
              href={`#L${l.seq}`}
              aria-label={`Line ${l.seq}`}
              tabIndex={-1}
              title={l.time ? new Date(l.time).toLocaleTimeString() : undefined}
            >
              {l.seq}
            </a>
            {query ? (
              <span className="lt">
                {highlight(l.text, query).map((p, i) => (p.hit ? <mark key={i}>{p.text}</mark> : p.text))}
              </span>
            ) : (
              <span className="lt" dangerouslySetInnerHTML={{ __html: l.html }} />
            )}
          </div>
        ))}
      </div>
    </section>
  );
}
