// Insights: run and stage durations (P50/P95/P99), queue wait, failure rate and failures by
// cause over a window (docs/insights.md), with the alerts firing now as a banner. The charts
// are plain SVG bars: a few dozen numbers do not need a chart library.
import { useEffect, useState } from "react";
import { useSearchParams } from "react-router";
import { ApiError, getAlerts, getInsights, type Alert, type Dist, type InsightReport } from "../api";
import { duration } from "../lib/format";
import { scale } from "../lib/deploy";
import { useTitle } from "../lib/hooks";

const windows = ["24h", "7d", "30d"];
const sinceOf: Record<string, string> = { "24h": "24h", "7d": "168h", "30d": "720h" };

export function Insights() {
  useTitle("Insights");
  const [params, setParams] = useSearchParams();
  const win = windows.includes(params.get("window") ?? "") ? params.get("window")! : "7d";
  const repo = params.get("repo") ?? "";
  const pipeline = params.get("pipeline") ?? "";
  const branch = params.get("branch") ?? "";
  const [data, setData] = useState<InsightReport>();
  const [alerts, setAlerts] = useState<Alert[]>([]);
  const [error, setError] = useState<string>();

  useEffect(() => {
    const ac = new AbortController();
    getInsights({ since: sinceOf[win], repo, pipeline, branch }, ac.signal)
      .then((d) => {
        setData(d);
        setError(undefined);
      })
      .catch((e) => !ac.signal.aborted && setError(e instanceof ApiError ? e.message : `cannot reach the server: ${e}`));
    getAlerts(ac.signal)
      .then(setAlerts)
      .catch(() => {
        // alerts are a courtesy banner: a server without them shows none
      });
    return () => ac.abort();
  }, [win, repo, pipeline, branch]);

  const set = (k: string, v: string) => {
    const p = new URLSearchParams(params);
    if (v) p.set(k, v);
    else p.delete(k);
    setParams(p, { replace: true });
  };

  const r = data?.report;
  const stages = r?.stages ?? [];
  const causes = Object.entries(r?.failures_by_cause ?? {}).sort((a, b) => b[1] - a[1]);
  return (
    <div className="page insights">
      <h1>Insights</h1>
      {alerts.length > 0 && (
        <div className="banner" role="alert">
          <strong>
            {alerts.length} alert{alerts.length > 1 ? "s" : ""} firing
          </strong>
          <ul>
            {alerts.map((a) => (
              <li key={a.rule + a.subject}>
                <code>{a.rule}</code> {a.subject ? `(${a.subject}) ` : ""}
                {a.summary}
              </li>
            ))}
          </ul>
        </div>
      )}
      <form className="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
        <div role="group" aria-label="Window" className="tabs">
          {windows.map((w) => (
            <button key={w} type="button" className="tab" aria-pressed={w === win} onClick={() => set("window", w === "7d" ? "" : w)}>
              {w}
            </button>
          ))}
        </div>
        <FilterInput label="Repository" value={repo} placeholder="acme/app" onChange={(v) => set("repo", v)} />
        <FilterInput label="Pipeline" value={pipeline} onChange={(v) => set("pipeline", v)} />
        <FilterInput label="Branch" value={branch} placeholder="main" onChange={(v) => set("branch", v)} />
      </form>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {data?.truncated && <p className="notice">More than 10,000 runs in this window: the newest 10,000 are shown. Narrow it.</p>}
      {r && (
        <>
          <dl className="facts kpis">
            <div>
              <dt>Runs</dt>
              <dd>{r.runs.total}</dd>
            </div>
            <div>
              <dt>Finished</dt>
              <dd>{r.runs.finished}</dd>
            </div>
            <div>
              <dt>Failure rate</dt>
              <dd>{pct(r.runs.failure_rate)}</dd>
            </div>
            <div>
              <dt>Run P50</dt>
              <dd>{duration(r.runs.duration_ms.p50)}</dd>
            </div>
            <div>
              <dt>Run P95</dt>
              <dd>{duration(r.runs.duration_ms.p95)}</dd>
            </div>
            <div>
              <dt>Run P99</dt>
              <dd>{duration(r.runs.duration_ms.p99)}</dd>
            </div>
            <div>
              <dt>Queue wait P95</dt>
              <dd>{duration(r.queue_wait_ms.p95)}</dd>
            </div>
          </dl>
          {r.runs.total === 0 ? (
            <p className="muted">No runs in this window.</p>
          ) : (
            <>
              <section aria-labelledby="stage-durations">
                <h2 id="stage-durations">Stage durations</h2>
                <Bars
                  label="Stage durations, P50, P95 and P99"
                  rows={stages.map((s) => ({ name: s.name, values: [s.duration_ms.p50, s.duration_ms.p95, s.duration_ms.p99] }))}
                  legend={["P50", "P95", "P99"]}
                  fmt={duration}
                />
              </section>
              <section aria-labelledby="stage-table">
                <h2 id="stage-table">By stage</h2>
                <div className="table-wrap">
                  <table>
                    <thead>
                      <tr>
                        <th scope="col">Stage</th>
                        <th scope="col">Runs</th>
                        <th scope="col">Failure rate</th>
                        <th scope="col">P50</th>
                        <th scope="col">P95</th>
                        <th scope="col">P99</th>
                        <th scope="col">Queue wait P50</th>
                        <th scope="col">Queue wait P95</th>
                      </tr>
                    </thead>
                    <tbody>
                      {stages.map((s) => (
                        <tr key={s.name}>
                          <td>{s.name}</td>
                          <td>{s.runs}</td>
                          <td>{pct(s.failure_rate)}</td>
                          <Td d={s.duration_ms} k="p50" />
                          <Td d={s.duration_ms} k="p95" />
                          <Td d={s.duration_ms} k="p99" />
                          <Td d={s.queue_wait_ms} k="p50" />
                          <Td d={s.queue_wait_ms} k="p95" />
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              </section>
              <section aria-labelledby="causes">
                <h2 id="causes">Failures by cause</h2>
                {causes.length ? (
                  <Bars label="Failures by cause" rows={causes.map(([c, n]) => ({ name: c, values: [n] }))} legend={["failures"]} fmt={String} />
                ) : (
                  <p className="muted">No failures in this window.</p>
                )}
              </section>
            </>
          )}
        </>
      )}
    </div>
  );
}

const pct = (v: number) => `${(v * 100).toFixed(v > 0 && v < 0.1 ? 1 : 0)}%`;

function Td({ d, k }: { d: Dist; k: "p50" | "p95" | "p99" }) {
  return <td>{d.count ? duration(d[k]) : ""}</td>;
}

function FilterInput({ label, value, placeholder, onChange }: { label: string; value: string; placeholder?: string; onChange: (v: string) => void }) {
  const [v, setV] = useState(value);
  useEffect(() => setV(value), [value]);
  return (
    <label>
      {label}{" "}
      <input
        value={v}
        placeholder={placeholder}
        onChange={(e) => setV(e.target.value)}
        onBlur={() => onChange(v.trim())}
        onKeyDown={(e) => e.key === "Enter" && onChange(v.trim())}
      />
    </label>
  );
}

/** Bars is a horizontal bar chart: one row per name, one bar per value, scaled to the largest. */
function Bars({ label, rows, legend, fmt }: { label: string; rows: { name: string; values: number[] }[]; legend: string[]; fmt: (v: number) => string }) {
  const max = Math.max(0, ...rows.flatMap((r) => r.values));
  const barH = 12;
  const rowH = legend.length * (barH + 2) + 10;
  const labelW = 120;
  const width = 600;
  const plotW = width - labelW - 70;
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${width} ${rows.length * rowH + 4}`} role="img" aria-label={label} width="100%">
        {rows.map((r, i) => (
          <g key={r.name} transform={`translate(0 ${i * rowH + 2})`}>
            <text x={labelW - 6} y={rowH / 2} textAnchor="end" dominantBaseline="middle" className="chart-label">
              {r.name.length > 18 ? r.name.slice(0, 17) + "…" : r.name}
            </text>
            {r.values.map((v, j) => (
              <g key={j}>
                <rect x={labelW} y={j * (barH + 2) + 4} width={(plotW * scale(v, max)) / 100} height={barH} className={`bar-${j}`}>
                  <title>{`${r.name} ${legend[j]}: ${fmt(v)}`}</title>
                </rect>
                <text x={labelW + (plotW * scale(v, max)) / 100 + 4} y={j * (barH + 2) + 4 + barH / 2} dominantBaseline="middle" className="chart-value">
                  {fmt(v)}
                </text>
              </g>
            ))}
          </g>
        ))}
      </svg>
      {legend.length > 1 && (
        <figcaption>
          {legend.map((l, j) => (
            <span key={l} className="legend">
              <svg width="10" height="10" aria-hidden="true">
                <rect width="10" height="10" className={`bar-${j}`} />
              </svg>{" "}
              {l}
            </span>
          ))}
        </figcaption>
      )}
    </figure>
  );
}
