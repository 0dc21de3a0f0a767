// A run: its header, the DAG of its stages, the selected stage's live log and the run's
// artifacts. The run view is the fold of its events on the server; the page refetches it when
// the event stream says something happened, and polls slowly besides, because a queued
// stage's position changes without an event of its run.
import { useCallback, useEffect, useRef, useState } from "react";
import { Link, useLocation, useParams, useSearchParams } from "react-router";
import { ApiError, cancelRun, eventsURL, getRun, runEvents, terminalPhases, type LiveDeployment, type RunView, type Stage } from "../api";
import { Findings } from "../components/Findings";
import { deploymentsByStage, testsByStage, type TestSummary } from "../lib/deploy";
import { Dag } from "../components/Dag";
import { LogView } from "../components/LogView";
import { PhaseBadge } from "../components/StatusBadge";
import { ago, branch, bytes, duration, shortId, shortSha, since } from "../lib/format";
import { useNow, useTitle, useVisible, useWidth } from "../lib/hooks";

const pollMs = 3000;

function useRun(id: string) {
  const [run, setRun] = useState<RunView>();
  const [error, setError] = useState<string>();
  const [live, setLive] = useState(false);
  const inflight = useRef<AbortController | null>(null);
  const again = useRef(false);
  const lastSeq = useRef(0); // the last event seen, to resume the event stream after it

  const refresh = useCallback(async () => {
    // One fetch at a time; a burst of events while one is out becomes one more fetch.
    if (inflight.current) {
      again.current = true;
      return;
    }
    const ac = new AbortController();
    inflight.current = ac;
    try {
      const r = await getRun(id, ac.signal);
      setRun(r);
      setError(undefined);
    } catch (e) {
      if (!ac.signal.aborted) setError(e instanceof ApiError ? e.message : `cannot reach the server: ${e}`);
    } finally {
      if (inflight.current === ac) inflight.current = null;
      if (again.current && !ac.signal.aborted) {
        again.current = false;
        void refresh();
      }
    }
  }, [id]);

  const done = run ? terminalPhases.has(run.phase) : false;

  useEffect(() => {
    setRun(undefined);
    lastSeq.current = 0;
    void refresh();
    return () => {
      inflight.current?.abort();
      inflight.current = null;
      again.current = false;
    };
  }, [refresh]);

  const loaded = run !== undefined;
  const visible = useVisible();
  useEffect(() => {
    // Only once the run is known to be in progress (a finished run has nothing to follow),
    // and only while the tab is visible.
    if (!loaded || done || !visible) return;
    const after = lastSeq.current;
    if (after) void refresh(); // shown again: catch up with what happened meanwhile
    const es = new EventSource(eventsURL(id) + (after ? `?after=${after}` : ""));
    es.onopen = () => setLive(true);
    es.onmessage = (m) => {
      void refresh();
      try {
        const e = JSON.parse(m.data) as { type: string; seq: number };
        lastSeq.current = Math.max(lastSeq.current, e.seq);
        if (e.type === "RunFinished") {
          es.close(); // the server ends the stream here; do not let the browser reconnect
          setLive(false);
        }
      } catch {
        // not an event: ignore
      }
    };
    es.onerror = () => setLive(false);
    const t = setInterval(() => void refresh(), pollMs);
    return () => {
      es.close();
      setLive(false);
      clearInterval(t);
    };
  }, [id, loaded, done, visible, refresh]);

  return { run, error, live, refresh };
}

/** defaultStage is the stage whose log a reader most likely wants: a failure, else what runs. */
function defaultStage(stages: Stage[]): string | undefined {
  return (
    stages.find((s) => s.status === "failed")?.name ??
    stages.find((s) => s.status === "running")?.name ??
    stages[0]?.name
  );
}

export function RunPage() {
  const { id = "" } = useParams();
  const location = useLocation();
  const [params, setParams] = useSearchParams();
  const { run, error, live, refresh } = useRun(id);
  const done = run ? terminalPhases.has(run.phase) : false;
  // The tick drives live durations between updates; an update itself renders with the time now.
  const now = Math.max(useNow(1000, !!run && !done), Date.now());
  const [main, setMain] = useState<HTMLElement | null>(null);
  const width = useWidth(main);
  const [cancelError, setCancelError] = useState<string>();
  useTitle(run ? `${run.repo} run ${shortId(run.id)}` : `run ${shortId(id)}`);

  const stage = params.get("stage") ?? (run ? defaultStage(run.stages) : undefined);
  const current = run?.stages.find((s) => s.name === stage);
  // Deployments and test results are not in the run view: they are read from the run's
  // events whenever a stage has moved on.
  const stages = run?.stages ?? [];
  const { deployments, tests } = useStageEvents(
    id,
    stages.map((s) => `${s.name}:${s.status}:${s.attempt}`).join(","),
    stages.some((s) => s.status !== "pending" && s.status !== "skipped"),
  );
  const select = useCallback(
    (name: string) => {
      const p = new URLSearchParams(params);
      p.set("stage", name);
      setParams(p, { replace: true, preventScrollReset: true });
    },
    [params, setParams],
  );

  if (error && !run) {
    return (
      <div className="page">
        <h1>Run {shortId(id)}</h1>
        <p className="error" role="alert">
          {error}
        </p>
        <Link to="/runs">All runs</Link>
      </div>
    );
  }
  if (!run) return <p className="page loading">Loading run…</p>;

  const total = since(run.created_at, run.finished_at, now);
  const cancel = async () => {
    setCancelError(undefined);
    try {
      await cancelRun(run.id);
      await refresh();
    } catch (e) {
      setCancelError(e instanceof Error ? e.message : String(e));
    }
  };

  return (
    <div className="page run-page" ref={setMain}>
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/runs">Runs</Link> <span aria-hidden="true">/</span>{" "}
        <Link to={`/runs?repo=${encodeURIComponent(run.repo)}`}>{run.repo}</Link>
      </nav>
      <header className="run-head">
        <h1>
          Run <code title={run.id}>{shortId(run.id)}</code> <PhaseBadge phase={run.phase} />
        </h1>
        <dl className="facts">
          <div>
            <dt>Repo</dt>
            <dd>{run.repo}</dd>
          </div>
          <div>
            <dt>Ref</dt>
            <dd>
              {branch(run.ref) || "default branch"} <code title={run.sha}>{shortSha(run.sha)}</code>
            </dd>
          </div>
          {run.trigger && (
            <div>
              <dt>Trigger</dt>
              <dd>{run.trigger}</dd>
            </div>
          )}
          {run.team && (
            <div>
              <dt>Team</dt>
              <dd>{run.team}</dd>
            </div>
          )}
          <div>
            <dt>Started</dt>
            <dd title={run.created_at}>{ago(run.created_at, now)}</dd>
          </div>
          <div>
            <dt>{done ? "Took" : "Running for"}</dt>
            <dd>{duration(total)}</dd>
          </div>
          {run.priority && (
            <div>
              <dt>Priority</dt>
              <dd>{run.priority}</dd>
            </div>
          )}
          {run.group && (
            <div>
              <dt>Group</dt>
              <dd>{run.group}</dd>
            </div>
          )}
        </dl>
        {run.reason && <p className="reason">{run.reason}</p>}
        <div className="run-actions">
          <span className={`live ${live && !done ? "on" : ""}`} role="status">
            {done ? "Finished" : live ? "Live" : "Updating every 3 s"}
          </span>
          {!done && (
            <button type="button" className="danger" onClick={cancel} disabled={run.cancel_requested}>
              {run.cancel_requested ? "Cancelling…" : "Cancel run"}
            </button>
          )}
        </div>
        {cancelError && (
          <p className="error" role="alert">
            {cancelError}
          </p>
        )}
      </header>

      <section aria-labelledby="dag-title">
        <h2 id="dag-title">Stages</h2>
        <Dag stages={run.stages} selected={stage} onSelect={select} now={now} vertical={width < 640} width={width} />
      </section>

      <section aria-labelledby="logs-title" className="logs">
        <h2 id="logs-title">Logs</h2>
        <div className="tabs" role="group" aria-label="Stage whose log is shown">
          {run.stages.map((s) => (
            <button
              key={s.name}
              type="button"
              className={`tab s-${s.status}`}
              aria-pressed={s.name === stage}
              onClick={() => select(s.name)}
            >
              {s.name}
            </button>
          ))}
        </div>
        {current && <StageFacts stage={current} now={now} />}
        {current && deployments.get(current.name) && <DeployLink d={deployments.get(current.name)!} />}
        {current && tests.get(current.name) && <TestResults t={tests.get(current.name)!} />}
        {current ? (
          <LogView key={current.name} runId={run.id} stage={current.name} hash={location.hash} />
        ) : (
          <p>No stage {stage ? <code>{stage}</code> : ""} in this run.</p>
        )}
      </section>

      <Findings runId={run.id} version={`${run.last_seq ?? 0}/${run.phase}`} />

      <section aria-labelledby="artifacts-title">
        <h2 id="artifacts-title">Artifacts</h2>
        {run.artifacts?.length ? (
          <div className="table-wrap">
            <table className="artifacts">
              <thead>
                <tr>
                  <th scope="col">Path</th>
                  <th scope="col">Stage</th>
                  <th scope="col">Size</th>
                  <th scope="col">Digest</th>
                </tr>
              </thead>
              <tbody>
                {run.artifacts.map((a) => (
                  <tr key={`${a.stage}/${a.path}`}>
                    <td>
                      <code>{a.path}</code>
                      {a.type === "symlink" ? ` → ${a.link}` : a.type === "dir" ? "/" : ""}
                    </td>
                    <td>{a.stage}</td>
                    <td>{a.type === "file" ? bytes(a.size) : a.type}</td>
                    <td>
                      {a.digest ? (
                        <code title={a.digest}>{a.digest.replace(/^sha256:/, "").slice(0, 12)}</code>
                      ) : (
                        ""
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <p className="muted">{done ? "This run stored no artifacts." : "None yet: a stage's artifacts appear when it succeeds."}</p>
        )}
      </section>
    </div>
  );
}

/** useStageEvents maps the run's stages to their deployments and test results, which the run
 * view does not carry: they are read from the run's events whenever a stage has moved on. */
function useStageEvents(id: string, version: string, any: boolean) {
  const [m, setM] = useState<{ deployments: Map<string, LiveDeployment>; tests: Map<string, TestSummary> }>({
    deployments: new Map(),
    tests: new Map(),
  });
  useEffect(() => {
    if (!any) return;
    const ac = new AbortController();
    runEvents(id, ac.signal)
      .then((ev) => setM({ deployments: deploymentsByStage(ev), tests: testsByStage(ev) }))
      .catch(() => {
        // links and test results are a convenience: without events the stage shows none
      });
    return () => ac.abort();
  }, [id, version, any]);
  return m;
}

/** TestResults is a stage's TestsReported: counts, then the tests a reader must look at. */
function TestResults({ t }: { t: TestSummary }) {
  const r = t.report;
  return (
    <section className="test-results" aria-label="Test results">
      <p>
        <strong>Tests</strong>: {r.total} total, {r.passed} passed, {r.failed} failed, {r.errored} errored, {r.skipped} skipped
        {r.duration_ms ? ` in ${duration(r.duration_ms)}` : ""}
        {r.note ? ` (${r.note})` : ""}
      </p>
      {t.failed.length > 0 && (
        <p>
          Failed:{" "}
          {t.failed.map((n, i) => (
            <span key={n}>
              {i > 0 && ", "}
              <code>{n}</code>
            </span>
          ))}
        </p>
      )}
      {t.quarantined.length > 0 && (
        <p>
          Quarantined (flaky, failure excused):{" "}
          {t.quarantined.map((n, i) => (
            <span key={n}>
              {i > 0 && ", "}
              <code>{n}</code>
            </span>
          ))}
        </p>
      )}
    </section>
  );
}

function DeployLink({ d }: { d: LiveDeployment }) {
  return (
    <p className="deploy-link">
      Deployment{" "}
      <Link to={`/deployments/${encodeURIComponent(d.environment)}#d-${d.id}`}>
        {d.version ?? shortId(d.id)} to {d.environment}
      </Link>
      {d.outcome ? `: ${d.outcome}` : d.phase ? `: ${d.phase}` : ""}
    </p>
  );
}

/** StageFacts is what a reader checks first about a stage next to its log. */
function StageFacts({ stage: s, now }: { stage: Stage; now: number }) {
  const facts: [string, string][] = [["Status", s.status]];
  if (s.started_at) facts.push([s.finished_at ? "Ran" : "Running for", duration(s.duration_ms ?? since(s.started_at, undefined, now))]);
  else if (s.queued_at) facts.push(["Queued for", duration(since(s.queued_at, undefined, now))]);
  if (s.queue_wait_ms != null) facts.push(["Queue wait", duration(s.queue_wait_ms)]);
  if (s.waiting) facts.push(["Waiting", s.waiting.reason + (s.waiting.position ? ` (#${s.waiting.position} in queue)` : "")]);
  if (s.step) facts.push(["Step", `${s.step}${s.step_name ? `: ${s.step_name}` : ""}`]);
  if (s.exit_code != null) facts.push(["Exit code", String(s.exit_code)]);
  if (s.attempt > 1) facts.push(["Attempt", String(s.attempt)]);
  if (s.sandbox) facts.push(["Sandbox", s.sandbox]);
  if (s.reason) facts.push(["Reason", s.reason]);
  return (
    <dl className="facts stage-facts" aria-label={`Stage ${s.name}`}>
      {facts.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}
