// Approvals: the inbox of promotions waiting for approvals, and a page per approval with the
// context the API gives (changed files and their risk, gate results, the environment, the
// rollback plan, recent deployments) and Approve / Reject. The server decides who may: its
// refusal (the author, or not an approver: 403) is shown as it says it.
import { useCallback, useEffect, useState } from "react";
import { Link, useParams } from "react-router";
import { ApiError, decide, getApproval, listApprovals, type Approval } from "../api";
import { UserBox } from "../components/UserBox";
import { ago, shortId, shortSha } from "../lib/format";
import { outcomeClass } from "../lib/deploy";
import { useTitle, useVisible } from "../lib/hooks";
import { stateClass } from "../lib/promote";
import { useUser } from "../lib/user";

const errText = (e: unknown) => (e instanceof ApiError ? e.message : `cannot reach the server: ${e}`);

function Disabled() {
  return (
    <div className="empty" role="status">
      <p>Approvals are not enabled on this server.</p>
      <p className="muted">
        Start it with <code>paved server --environments environments.yml</code>; promotions into an environment then need
        approvals by the changeset's risk (docs/promote.md).
      </p>
    </div>
  );
}

export function Approvals() {
  const { id } = useParams();
  return id ? <ApprovalPage key={id} id={id} /> : <Inbox />;
}

function Inbox() {
  useTitle("Approvals");
  const user = useUser();
  const [list, setList] = useState<Approval[]>();
  const [disabled, setDisabled] = useState(false);
  const [error, setError] = useState<string>();
  const [tick, setTick] = useState(0);
  const [onlyMine, setOnlyMine] = useState(false);
  const visible = useVisible();
  const forUser = onlyMine ? user : "";

  useEffect(() => {
    const ac = new AbortController();
    listApprovals(forUser, ac.signal)
      .then((l) => {
        setList(l);
        setError(undefined);
      })
      .catch((e) => {
        if (ac.signal.aborted) return;
        if (e instanceof ApiError && e.status === 404) setDisabled(true);
        else setError(errText(e));
      });
    return () => ac.abort();
  }, [tick, forUser]);

  useEffect(() => {
    if (!visible || disabled) return;
    const t = setTimeout(() => setTick((n) => n + 1), 3000);
    return () => clearTimeout(t);
  }, [visible, disabled, list]);

  return (
    <div className="page approvals">
      <h1>Approvals</h1>
      {disabled ? (
        <Disabled />
      ) : (
        <>
          <UserBox />
          {user && (
            <p>
              <label>
                <input type="checkbox" checked={onlyMine} onChange={(e) => setOnlyMine(e.target.checked)} /> Only those {user} may
                approve
              </label>
            </p>
          )}
          {error && (
            <p className="error" role="alert">
              {error}
            </p>
          )}
          {list && list.length === 0 && <p className="muted">Nothing waits for {forUser ? `${forUser}'s` : "an"} approval.</p>}
          {list && list.length > 0 && (
            <ul className="inbox">
              {list.map((a) => {
                const p = a.promotion;
                const mine = !!user && (user === p.author || (!!a.approvers?.length && !a.approvers.includes(user)));
                return (
                  <li key={p.id} data-promotion={p.id}>
                    <Link to={`/approvals/${encodeURIComponent(p.id)}`}>
                      <strong>{a.freight.alias}</strong> to <strong>{p.environment}</strong>
                    </Link>{" "}
                    <span className={`badge ${stateClass(p.risk)}`}>{p.risk} risk</span>{" "}
                    <span className="muted">
                      {approvedCount(a)}/{p.required_approvals} approvals · {a.freight.repo} {shortSha(a.freight.sha)}
                      {p.author ? ` by ${p.author}` : ""} · asked by {p.requested_by} <span title={p.created_at}>{ago(p.created_at)}</span>
                      {mine ? " · you cannot approve this one" : ""}
                    </span>
                    {p.state === "blocked" && p.reason && <p className="reason">blocked: {p.reason}</p>}
                  </li>
                );
              })}
            </ul>
          )}
        </>
      )}
    </div>
  );
}

const approvedCount = (a: Approval) => (a.promotion.decisions ?? []).filter((d) => d.approved).length;

function ApprovalPage({ id }: { id: string }) {
  const user = useUser();
  const [a, setA] = useState<Approval>();
  const [error, setError] = useState<string>();
  const [result, setResult] = useState<{ ok: boolean; text: string }>();
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [tick, setTick] = useState(0);
  const visible = useVisible();
  useTitle(a ? `Approval · ${a.freight.alias} to ${a.promotion.environment}` : "Approval");

  const load = useCallback(
    async (signal: AbortSignal) => {
      try {
        setA(await getApproval(id, signal));
        setError(undefined);
      } catch (e) {
        if (signal.aborted) return;
        setError(e instanceof ApiError && e.status === 404 ? `${e.message}: no such promotion here (or this server runs without --environments)` : errText(e));
      }
    },
    [id],
  );
  useEffect(() => {
    const ac = new AbortController();
    void load(ac.signal);
    return () => ac.abort();
  }, [load, tick]);

  const state = a?.promotion.state;
  const moving = state === "approved" || state === "deploying";
  const waiting = state === "blocked" || state === "pending";
  useEffect(() => {
    if (!visible || !(moving || waiting)) return;
    const t = setTimeout(() => setTick((n) => n + 1), moving ? 1000 : 3000);
    return () => clearTimeout(t);
  }, [visible, moving, waiting, a]);

  const act = async (approve: boolean) => {
    if (!approve && !reason.trim()) {
      setResult({ ok: false, text: "Give a reason to reject: it is kept with the decision." });
      return;
    }
    setBusy(true);
    setResult(undefined);
    try {
      const p = await decide(id, approve, reason.trim());
      setResult({ ok: true, text: `${approve ? "Approved" : "Rejected"} as ${user}: the promotion is ${p.state}${p.reason ? ` (${p.reason})` : ""}.` });
      setReason("");
    } catch (e) {
      const refused = e instanceof ApiError && e.status === 403;
      setResult({ ok: false, text: `${refused ? "Refused" : "Not recorded"}: ${errText(e)}` });
    } finally {
      setBusy(false);
      setTick((n) => n + 1);
    }
  };

  const p = a?.promotion;
  const waits = p && (p.state === "pending" || p.state === "blocked");
  return (
    <div className="page approval">
      <p className="crumbs">
        <Link to="/approvals">Approvals</Link> / {shortId(id)}
      </p>
      <h1>{a && p ? `${a.freight.alias} to ${p.environment}` : "Approval"}</h1>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {a && p && (
        <>
          <dl className="facts">
            <div>
              <dt>State</dt>
              <dd>
                <span className={`badge ${stateClass(p.state)}`} role="status">
                  {p.state}
                </span>
              </dd>
            </div>
            <div>
              <dt>Risk</dt>
              <dd>
                <span className={`badge ${stateClass(p.risk)}`}>{p.risk}</span> {p.risk_reason}
              </dd>
            </div>
            <div>
              <dt>Approvals</dt>
              <dd>
                {approvedCount(a)} of {p.required_approvals}
              </dd>
            </div>
            <div>
              <dt>Who may approve</dt>
              <dd>{a.approvers?.length ? a.approvers.join(", ") : "anyone"} but the author{p.author ? ` (${p.author})` : ""}</dd>
            </div>
            <div>
              <dt>Change</dt>
              <dd>
                {a.freight.repo} {shortSha(a.freight.sha)} ·{" "}
                <Link to={`/runs/${encodeURIComponent(a.freight.run_id)}`}>the run that built it</Link>
              </dd>
            </div>
            <div>
              <dt>Asked by</dt>
              <dd>
                {p.requested_by} <span title={p.created_at}>{ago(p.created_at)}</span>
              </dd>
            </div>
          </dl>
          {p.reason && <p className="reason">{p.reason}</p>}

          <section aria-labelledby="decide-h" className="decide">
            <h2 id="decide-h">Decide</h2>
            <UserBox />
            {result && (
              <p className={result.ok ? "notice" : "error"} role="alert">
                {result.text}
              </p>
            )}
            {waits ? (
              <form onSubmit={(e) => e.preventDefault()}>
                <label htmlFor="reason">Reason (needed to reject)</label>
                <textarea id="reason" rows={2} value={reason} onChange={(e) => setReason(e.target.value)} />
                <div className="actions">
                  <button type="button" className="primary" disabled={busy || !user} onClick={() => act(true)}>
                    Approve
                  </button>{" "}
                  <button type="button" className="danger" disabled={busy || !user} onClick={() => act(false)}>
                    Reject
                  </button>
                  {!user && <span className="muted"> sign in first</span>}
                </div>
              </form>
            ) : (
              <p className="muted">This promotion no longer waits for approvals.</p>
            )}
            {p.decisions?.length ? (
              <ul className="decisions">
                {p.decisions.map((d) => (
                  <li key={d.by + d.at}>
                    <span className={`badge ${d.approved ? "ok" : "bad"}`}>{d.approved ? "approved" : "rejected"}</span> by{" "}
                    {d.by} <span title={d.at}>{ago(d.at)}</span>
                    {d.reason ? `: ${d.reason}` : ""}
                  </li>
                ))}
              </ul>
            ) : null}
          </section>

          <section aria-labelledby="files-h">
            <h2 id="files-h">Changed files ({p.files?.length ?? 0})</h2>
            {p.files?.length ? (
              <ul className="files">
                {p.files.map((f) => (
                  <li key={f}>
                    <code>{f}</code>
                  </li>
                ))}
              </ul>
            ) : (
              <p className="muted">No changed files to show (the first deployment there, or nothing changed).</p>
            )}
          </section>

          <section aria-labelledby="gates-h">
            <h2 id="gates-h">Gate results</h2>
            {a.gates?.length ? (
              <ul className="gates">
                {a.gates.map((g) => (
                  <li key={g.kind}>
                    <span className={`badge ${stateClass(g.decision)}`}>{g.decision}</span> <code>{g.kind}</code> {g.reason}
                    {g.policy ? <span className="muted"> ({g.policy})</span> : null}
                  </li>
                ))}
              </ul>
            ) : (
              <p className="muted">The run had no gates.</p>
            )}
          </section>

          <section aria-labelledby="env-h">
            <h2 id="env-h">
              Environment: <Link to={`/deployments/${encodeURIComponent(p.environment)}`}>{p.environment}</Link>
            </h2>
            <p>
              Runs now:{" "}
              {a.current ? (
                <>
                  <code>{a.current.version}</code> ({shortId(a.current.id)}, sha {shortSha(a.current.sha)})
                </>
              ) : (
                "nothing yet"
              )}
            </p>
            <p>
              Rollback plan: <code className="wrap">{a.rollback}</code>
            </p>
            <h3>Recent deployments</h3>
            {a.recent_deployments?.length ? (
              <ul className="recent">
                {a.recent_deployments.map((d) => (
                  <li key={d.id}>
                    <Link to={`/deployments/${encodeURIComponent(d.environment)}#d-${d.id}`}>
                      <code>{d.version}</code>
                    </Link>{" "}
                    <span className={`badge ${outcomeClass(d.outcome)}`}>{d.outcome}</span> <span title={d.started_at}>{ago(d.started_at)}</span>
                  </li>
                ))}
              </ul>
            ) : (
              <p className="muted">None yet.</p>
            )}
          </section>
        </>
      )}
    </div>
  );
}
