// Deployments: every environment the server serves, what it serves now, the deployment in
// progress (traffic weights and the latest analysis) and its history with a rollback to any
// recorded deployment. The page polls while a deployment is in progress: the environment's
// status has no event stream of its own.
import { useCallback, useEffect, useState } from "react";
import { Link, useLocation, useParams } from "react-router";
import {
  ApiError,
  getEnvironment,
  listDeployments,
  listEnvironments,
  rollback,
  type Deployment,
  type EnvironmentStatus,
  type LiveDeployment,
} from "../api";
import { ago, duration, shortId, shortSha, since } from "../lib/format";
import { metricLabel, metricValue, outcomeClass } from "../lib/deploy";
import { useNow, useTitle, useVisible } from "../lib/hooks";

const livePollMs = 1000;
const idlePollMs = 10000;

export function Deployments() {
  const { env } = useParams();
  const [envs, setEnvs] = useState<EnvironmentStatus[]>();
  const [error, setError] = useState<string>();
  useTitle(env ? `Deployments · ${env}` : "Deployments");

  useEffect(() => {
    const ac = new AbortController();
    listEnvironments(ac.signal)
      .then((l) => {
        setEnvs(l.sort((a, b) => a.name.localeCompare(b.name)));
        setError(undefined);
      })
      .catch((e) => !ac.signal.aborted && setError(e instanceof ApiError ? e.message : `cannot reach the server: ${e}`));
    return () => ac.abort();
  }, [env]);

  const current = env ?? envs?.[0]?.name;
  return (
    <div className="page deployments">
      <h1>Deployments</h1>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {envs && envs.length === 0 && (
        <p className="muted">
          No environments yet. A pipeline stage with <code>deploy:</code> creates its environment on its first deployment
          (docs/deploy.md).
        </p>
      )}
      {envs && envs.length > 0 && (
        <nav className="tabs" aria-label="Environments">
          {envs.map((e) => (
            <Link key={e.name} to={`/deployments/${encodeURIComponent(e.name)}`} className="tab" aria-current={e.name === current ? "page" : undefined}>
              {e.name}
              {e.deploying ? " ●" : ""}
            </Link>
          ))}
        </nav>
      )}
      {current && <EnvironmentView key={current} name={current} />}
    </div>
  );
}

function EnvironmentView({ name }: { name: string }) {
  const [st, setSt] = useState<EnvironmentStatus>();
  const [history, setHistory] = useState<Deployment[]>();
  const [error, setError] = useState<string>();
  const [tick, setTick] = useState(0);
  const visible = useVisible();
  const location = useLocation();
  const now = useNow(1000, !!st?.deploying);

  const load = useCallback(
    async (signal: AbortSignal) => {
      try {
        const [s, h] = await Promise.all([getEnvironment(name, signal), listDeployments(name, 50, signal)]);
        setSt(s);
        setHistory(h);
        setError(undefined);
      } catch (e) {
        if (!signal.aborted) setError(e instanceof ApiError ? e.message : `cannot reach the server: ${e}`);
      }
    },
    [name],
  );

  useEffect(() => {
    const ac = new AbortController();
    void load(ac.signal);
    return () => ac.abort();
  }, [load, tick]);

  const deploying = !!st?.deploying || !!history?.some((d) => d.outcome === "in_progress");
  useEffect(() => {
    if (!visible) return;
    const t = setTimeout(() => setTick((n) => n + 1), deploying ? livePollMs : idlePollMs);
    return () => clearTimeout(t);
  }, [deploying, visible, st, history]);

  const highlight = location.hash.startsWith("#d-") ? location.hash.slice(3) : undefined;

  return (
    <section aria-labelledby="env-title" className="environment">
      <h2 id="env-title">{name}</h2>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {st && (
        <dl className="facts">
          <div>
            <dt>URL</dt>
            <dd>
              <a href={st.url}>{st.url}</a>
            </dd>
          </div>
          <div>
            <dt>Serves</dt>
            <dd>{st.stable ? `${st.stable.version} (${shortId(st.stable.id)})` : "nothing yet"}</dd>
          </div>
          {st.stable && (
            <div>
              <dt>Since</dt>
              <dd title={st.stable.finished_at ?? st.stable.started_at}>{ago(st.stable.finished_at ?? st.stable.started_at, now)}</dd>
            </div>
          )}
          {st.warm && (
            <div>
              <dt>Kept warm</dt>
              <dd>{st.warm}</dd>
            </div>
          )}
          <div>
            <dt>Status</dt>
            <dd>
              <span role="status">{st.deploying ? "Deploying (live)" : "Idle"}</span>
            </dd>
          </div>
        </dl>
      )}
      {st?.live && <LiveView live={st.live} inProgress={st.deploying} />}
      <h3>History</h3>
      {history && <History env={name} history={history} highlight={highlight} onRolledBack={() => setTick((n) => n + 1)} />}
    </section>
  );
}

/** LiveView is the deployment in progress, or the last one: its traffic split and analysis. */
export function LiveView({ live, inProgress }: { live: LiveDeployment; inProgress: boolean }) {
  const weights = Object.entries(live.weights ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return (
    <div className="live-deploy" aria-label={inProgress ? "Deployment in progress" : "Last deployment"}>
      <h3>
        {inProgress ? "In progress" : "Last deployment"}: {live.version ?? ""}{" "}
        <span className="muted">
          ({live.strategy}
          {live.steps ? `, step ${live.step ?? 0} of ${live.steps}` : ""})
        </span>
        {live.phase && <span className={`badge ${outcomeClass(live.phase)}`}>{live.phase}</span>}
        {live.outcome && <span className={`badge ${outcomeClass(live.outcome)}`}>{live.outcome}</span>}
      </h3>
      {live.reason && <p className="reason">{live.reason}</p>}
      {weights.length > 0 && (
        <div className="weights" role="list" aria-label="Traffic weights">
          {weights.map(([track, w]) => (
            <div key={track} className="weight" role="listitem">
              <span className="track">{track}</span>
              <span className="bar" aria-hidden="true">
                <span className={`fill t-${track}`} style={{ width: `${Math.max(0, Math.min(100, w))}%` }} />
              </span>
              <span className="pct">{w}%</span>
            </div>
          ))}
        </div>
      )}
      {live.analysis && (
        <div className="analysis">
          <p>
            Analysis{live.analysis.step ? ` of step ${live.analysis.step}` : ""}, measurement {live.analysis.measurement}:{" "}
            <span className={`badge ${outcomeClass(live.analysis.outcome)}`}>{live.analysis.outcome}</span>
            {live.analysis.reason ? ` ${live.analysis.reason}` : ""}
          </p>
          {live.analysis.metrics?.length ? (
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Metric</th>
                    <th scope="col">Value</th>
                    <th scope="col">Threshold</th>
                    <th scope="col">Baseline</th>
                    <th scope="col">Outcome</th>
                  </tr>
                </thead>
                <tbody>
                  {live.analysis.metrics.map((m) => (
                    <tr key={m.name}>
                      <td>{metricLabel(m.name)}</td>
                      <td>{metricValue(m.name, m.value)}</td>
                      <td>{metricValue(m.name, m.threshold)}</td>
                      <td>{metricValue(m.name, m.baseline)}</td>
                      <td>
                        <span className={`badge ${outcomeClass(m.outcome)}`}>{m.outcome}</span>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : null}
        </div>
      )}
    </div>
  );
}

function History({
  env,
  history,
  highlight,
  onRolledBack,
}: {
  env: string;
  history: Deployment[];
  highlight?: string;
  onRolledBack: () => void;
}) {
  const [busy, setBusy] = useState<string>();
  const [result, setResult] = useState<{ ok: boolean; text: string }>();

  const doRollback = async (d: Deployment) => {
    if (!window.confirm(`Roll ${env} back to ${d.version} (deployment ${shortId(d.id)})?`)) return;
    setBusy(d.id);
    setResult(undefined);
    try {
      const nd = await rollback(env, d.id);
      setResult({
        ok: nd.outcome === "succeeded",
        text: `Rollback to ${d.version}: ${nd.outcome}${nd.reason ? ` (${nd.reason})` : ""}, deployment ${shortId(nd.id)}.`,
      });
    } catch (e) {
      setResult({ ok: false, text: `Rollback failed: ${e instanceof Error ? e.message : e}` });
    } finally {
      setBusy(undefined);
      onRolledBack();
    }
  };

  if (history.length === 0) return <p className="muted">No deployments recorded.</p>;
  return (
    <>
      {result && (
        <p className={result.ok ? "notice" : "error"} role="alert">
          {result.text}
        </p>
      )}
      <div className="table-wrap">
        <table className="history">
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Strategy</th>
              <th scope="col">Outcome</th>
              <th scope="col">Reason</th>
              <th scope="col">Who</th>
              <th scope="col">When</th>
              <th scope="col">Took</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {history.map((d) => (
              <tr key={d.id} id={`d-${d.id}`} className={d.id === highlight ? "selected" : undefined}>
                <td>
                  <code title={d.artifact}>{d.version}</code>
                  {d.sha ? <span className="muted"> {shortSha(d.sha)}</span> : null}
                </td>
                <td>{d.strategy}</td>
                <td>
                  <span className={`badge ${outcomeClass(d.outcome)}`}>{d.outcome}</span>
                </td>
                <td>{d.rollback_of ? `rollback of ${shortId(d.rollback_of)}` : ""}{d.rollback_of && d.reason ? "; " : ""}{d.reason}</td>
                <td>
                  {d.run_id ? (
                    <Link to={`/runs/${encodeURIComponent(d.run_id)}${d.stage ? `?stage=${encodeURIComponent(d.stage)}` : ""}`}>
                      {d.triggered_by || "run"} ({d.stage})
                    </Link>
                  ) : (
                    d.triggered_by
                  )}
                </td>
                <td title={d.started_at}>{ago(d.started_at)}</td>
                <td>{d.finished_at ? duration(since(d.started_at, d.finished_at)) : ""}</td>
                <td>
                  {d.outcome !== "in_progress" && (
                    <button type="button" onClick={() => doRollback(d)} disabled={busy !== undefined} aria-label={`Roll back to this: ${d.version} (${shortId(d.id)})`}>
                      {busy === d.id ? "Rolling back…" : "Roll back to this"}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
