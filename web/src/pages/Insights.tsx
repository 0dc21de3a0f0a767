// Insights: run and stage durations (P50/P95/P99), queue wait, failure rate and failures by
// cause over a window (docs/insights.md), with the alerts firing now as a banner; then the
// DORA keys of one environment, the flakiest tests and the cost per team and pipeline. The
// charts are plain SVG bars: a few dozen numbers do not need a chart library.
import { useEffect, useState } from "react";
import { useSearchParams } from "react-router";
import {
  ApiError,
  getAlerts,
  getCost,
  getDora,
  getInsights,
  getTestInsights,
  listEnvironments,
  type Alert,
  type CostReport,
  type Dist,
  type Dora,
  type FlakyTest,
  type InsightReport,
  type TestHistory,
} from "../api";
import { cpu, duration, gbs, money } from "../lib/format";
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

  const env = params.get("environment") ?? "";
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
      <DoraSection since={sinceOf[win]} env={env} setEnv={(v) => set("environment", v)} />
      <TestsSection repo={repo} pipeline={pipeline} />
      <CostSection since={sinceOf[win]} repo={repo} pipeline={pipeline} />
    </div>
  );
}

const errText = (e: unknown) => (e instanceof ApiError ? e.message : `cannot reach the server: ${e}`);

/** DoraSection is the four keys of one environment over the page's window. */
function DoraSection({ since, env, setEnv }: { since: string; env: string; setEnv: (v: string) => void }) {
  const [envs, setEnvs] = useState<string[]>([]);
  const [d, setD] = useState<Dora>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    const ac = new AbortController();
    listEnvironments(ac.signal)
      .then((es) => setEnvs(es.map((e) => e.name)))
      .catch(() => {
        // a server without environments has no DORA keys: the section says so below
      });
    return () => ac.abort();
  }, []);
  const shown = env || envs[0] || "";
  useEffect(() => {
    setD(undefined);
    if (!shown) return;
    const ac = new AbortController();
    getDora(shown, since, ac.signal)
      .then((r) => {
        setD(r);
        setError(undefined);
      })
      .catch((e) => !ac.signal.aborted && setError(errText(e)));
    return () => ac.abort();
  }, [shown, since]);
  const reasons = Object.entries(d?.rollbacks_by_reason ?? {}).sort((a, b) => b[1] - a[1]);
  return (
    <section aria-labelledby="dora">
      <h2 id="dora">DORA keys</h2>
      {envs.length === 0 ? (
        <p className="muted">No environments: the DORA keys come from deployments.</p>
      ) : (
        <label>
          Environment{" "}
          <select value={shown} onChange={(e) => setEnv(e.target.value)}>
            {envs.map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>
        </label>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {d && (
        <>
          <dl className="facts kpis" aria-label="DORA keys">
            <div>
              <dt>Deployments / day</dt>
              <dd>{d.deployments_per_day.toFixed(d.deployments_per_day < 10 ? 2 : 0)}</dd>
            </div>
            <div>
              <dt>Deployments</dt>
              <dd>
                {d.deployments} ({d.succeeded} ok, {d.failed} failed, {d.rolled_back} rolled back)
              </dd>
            </div>
            <div>
              <dt>Lead time P50</dt>
              <dd>{d.lead_time_ms.count ? duration(d.lead_time_ms.p50) : "–"}</dd>
            </div>
            <div>
              <dt>Change failure rate</dt>
              <dd>{pct(d.change_failure_rate)}</dd>
            </div>
            <div>
              <dt>Time to restore P50</dt>
              <dd>{d.time_to_restore_ms.count ? duration(d.time_to_restore_ms.p50) : "–"}</dd>
            </div>
            <div>
              <dt>Rollbacks</dt>
              <dd>{d.rollbacks}</dd>
            </div>
          </dl>
          {d.failing_since && <p className="notice">Failing since {new Date(d.failing_since).toLocaleString()}.</p>}
          {reasons.length > 0 && <h3>Rollbacks by reason</h3>}
          {reasons.length > 0 && (
            <Bars label="Rollbacks by reason" rows={reasons.map(([r, n]) => ({ name: r, values: [n] }))} legend={["rollbacks"]} fmt={String} />
          )}
        </>
      )}
    </section>
  );
}

/** TestsSection is the flakiest tests (newest 7 days: the API's own window) and the quarantined ones. */
function TestsSection({ repo, pipeline }: { repo: string; pipeline: string }) {
  const [t, setT] = useState<{ tests: TestHistory[]; flaky: FlakyTest[] }>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    const ac = new AbortController();
    getTestInsights({ repo, pipeline }, ac.signal)
      .then((r) => {
        setT(r);
        setError(undefined);
      })
      .catch((e) => !ac.signal.aborted && setError(errText(e)));
    return () => ac.abort();
  }, [repo, pipeline]);
  const quarantined = new Set((t?.tests ?? []).filter((h) => h.quarantined).map((h) => `${h.repo} ${h.pipeline} ${h.stage} ${h.test}`));
  const flaky = [...(t?.flaky ?? [])].sort((a, b) => b.flake_rate - a.flake_rate || b.wasted_ms - a.wasted_ms).slice(0, 20);
  return (
    <section aria-labelledby="flaky">
      <h2 id="flaky">Flaky tests (last 7 days)</h2>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {t && flaky.length === 0 && <p className="muted">No flaky tests.</p>}
      {flaky.length > 0 && (
        <>
          <Bars label="Flake rate of the flakiest tests" rows={flaky.map((f) => ({ name: f.test, values: [f.flake_rate] }))} legend={["flake rate"]} fmt={pct} />
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Test</th>
                  <th scope="col">Where</th>
                  <th scope="col">Flake rate</th>
                  <th scope="col">Failures / runs</th>
                  <th scope="col">Wasted</th>
                  <th scope="col">Quarantined</th>
                  <th scope="col">Why</th>
                </tr>
              </thead>
              <tbody>
                {flaky.map((f) => (
                  <tr key={`${f.repo} ${f.pipeline} ${f.stage} ${f.test}`}>
                    <td>
                      <code>{f.test}</code>
                    </td>
                    <td>
                      {f.repo} {f.pipeline}/{f.stage}
                    </td>
                    <td>{pct(f.flake_rate)}</td>
                    <td>
                      {f.failures} / {f.runs}
                    </td>
                    <td>{duration(f.wasted_ms)}</td>
                    <td>{quarantined.has(`${f.repo} ${f.pipeline} ${f.stage} ${f.test}`) || !t?.tests.length ? "yes" : "no"}</td>
                    <td>{f.reason}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}

/** CostSection is CPU time, memory and their price per team and pipeline over the page's window. */
function CostSection({ since, repo, pipeline }: { since: string; repo: string; pipeline: string }) {
  const [c, setC] = useState<CostReport>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    const ac = new AbortController();
    getCost({ since, repo, pipeline }, ac.signal)
      .then((r) => {
        setC(r);
        setError(undefined);
      })
      .catch((e) => !ac.signal.aborted && setError(errText(e)));
    return () => ac.abort();
  }, [since, repo, pipeline]);
  const teams = c?.teams ?? [];
  const pipes = c?.pipelines ?? [];
  return (
    <section aria-labelledby="cost">
      <h2 id="cost">Cost</h2>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {c && (
        <>
          <p>
            {c.total.runs} runs used {cpu(c.total.cpu_seconds)}
            {c.total.memory_gb_seconds != null ? ` and ${gbs(c.total.memory_gb_seconds)} of memory` : ""}: cost {money(c.total.cost)} at {c.cpu_hour_price} per
            CPU-hour.
          </p>
          {c.truncated && <p className="notice">Too many runs in this window: the newest are counted. Narrow it.</p>}
          {teams.length > 0 && (
            <Bars label="CPU time by team" rows={teams.slice(0, 15).map((t) => ({ name: t.team || "(no team)", values: [t.cpu_seconds] }))} legend={["CPU time"]} fmt={cpu} />
          )}
          {pipes.length > 0 && (
            <div className="table-wrap">
              <table aria-label="Cost by pipeline">
                <thead>
                  <tr>
                    <th scope="col">Team</th>
                    <th scope="col">Pipeline</th>
                    <th scope="col">Runs</th>
                    <th scope="col">CPU</th>
                    <th scope="col">Memory</th>
                    <th scope="col">Cost</th>
                  </tr>
                </thead>
                <tbody>
                  {pipes.map((p) => (
                    <tr key={`${p.team} ${p.repo} ${p.pipeline}`}>
                      <td>{p.team}</td>
                      <td>
                        {p.repo} {p.pipeline}
                      </td>
                      <td>{p.runs}</td>
                      <td>{cpu(p.cpu_seconds)}</td>
                      <td>{gbs(p.memory_gb_seconds)}</td>
                      <td>{money(p.cost)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </section>
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
