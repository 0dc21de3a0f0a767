// The run's gate decisions and their findings (docs/gates.md), with a severity filter. Loaded
// once the gate stages have ended: a decision is recorded when its stage finishes.
import { useEffect, useState } from "react";
import { ApiError, getFindings, type Findings as FindingsT } from "../api";
import { atOrAbove, outcomeClass, severities, where } from "../lib/deploy";

export function Findings({ runId, version }: { runId: string; version: string }) {
  const [data, setData] = useState<FindingsT>();
  const [error, setError] = useState<string>();
  const [min, setMin] = useState("");

  useEffect(() => {
    const ac = new AbortController();
    getFindings(runId, ac.signal)
      .then((d) => {
        setData(d);
        setError(undefined);
      })
      .catch((e) => !ac.signal.aborted && setError(e instanceof ApiError ? e.message : `cannot reach the server: ${e}`));
    return () => ac.abort();
  }, [runId, version]);

  const gates = data?.gates ?? [];
  if (!error && gates.length === 0) return null;
  return (
    <section aria-labelledby="findings-title" className="findings">
      <h2 id="findings-title">
        Findings {data?.decision && <span className={`badge ${outcomeClass(data.decision)}`}>{data.decision}</span>}
      </h2>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <label className="filter">
        Severity{" "}
        <select value={min} onChange={(e) => setMin(e.target.value)} aria-label="Minimum severity">
          <option value="">all</option>
          {severities.map((s) => (
            <option key={s} value={s}>
              {s} and above
            </option>
          ))}
        </select>
      </label>
      {gates.map((g) => {
        const shown = atOrAbove(g.findings ?? [], min);
        return (
          <div key={`${g.stage}/${g.kind}`} className="gate">
            <h3>
              {g.stage} <span className="muted">({g.kind})</span> <span className={`badge ${outcomeClass(g.decision)}`}>{g.decision}</span>
            </h3>
            <dl className="facts">
              {g.environment && (
                <div>
                  <dt>Environment</dt>
                  <dd>
                    {g.environment}
                    {g.environment_from ? ` (${g.environment_from})` : ""}
                  </dd>
                </div>
              )}
              {g.policy && (
                <div>
                  <dt>Policy</dt>
                  <dd>{g.policy}</dd>
                </div>
              )}
              {g.block_at && (
                <div>
                  <dt>Blocks at</dt>
                  <dd>{g.block_at}</dd>
                </div>
              )}
            </dl>
            {g.reason && <p className="reason">{g.reason}</p>}
            {shown.length ? (
              <div className="table-wrap">
                <table className="findings-table">
                  <thead>
                    <tr>
                      <th scope="col">Severity</th>
                      <th scope="col">Rule</th>
                      <th scope="col">Where</th>
                      <th scope="col">Match</th>
                    </tr>
                  </thead>
                  <tbody>
                    {shown.map((f, i) => (
                      <tr key={i}>
                        <td>
                          <span className={`badge sev-${f.severity.toLowerCase()}`}>{f.severity}</span>
                        </td>
                        <td>{f.rule}</td>
                        <td>
                          <code>{where(f)}</code>
                        </td>
                        <td>
                          <code>{f.match ?? f.message ?? ""}</code>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            ) : (
              <p className="muted">{g.findings?.length ? "No findings at this severity." : "No findings."}</p>
            )}
          </div>
        );
      })}
    </section>
  );
}
