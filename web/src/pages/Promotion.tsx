// Promotion board: freight × environments, Kargo-style. Each cell says whether the freight
// ran there (verified), runs there now, or how its promotion stands and why it is blocked,
// with a Promote button where a promotion can be asked for. The server decides: a request it
// refuses, or a promotion a rule blocks, is shown with the server's reason.
import { useCallback, useEffect, useState } from "react";
import { Link } from "react-router";
import {
  ApiError,
  listDeployments,
  listEnvironments,
  listFreight,
  listPromotions,
  promote,
  type Deployment,
  type EnvironmentStatus,
  type Freight,
  type Promotion as PromotionT,
} from "../api";
import { UserBox } from "../components/UserBox";
import { ago, shortSha } from "../lib/format";
import { useTitle, useVisible } from "../lib/hooks";
import { canPromote, cell, openStates, orderEnvironments, stateClass, type Cell } from "../lib/promote";
import { useUser } from "../lib/user";

interface Board {
  freight: Freight[];
  promotions: PromotionT[];
  envs: string[];
  history: Record<string, Deployment[]>;
  stable: Record<string, Deployment | undefined>;
}

export function Promotion() {
  useTitle("Promotion");
  const user = useUser();
  const [board, setBoard] = useState<Board>();
  const [disabled, setDisabled] = useState(false);
  const [error, setError] = useState<string>();
  const [notice, setNotice] = useState<{ ok: boolean; text: string }>();
  const [busy, setBusy] = useState<string>();
  const [tick, setTick] = useState(0);
  const visible = useVisible();

  const load = useCallback(async (signal: AbortSignal) => {
    try {
      const [freight, promotions, envList] = await Promise.all([listFreight(signal), listPromotions(signal), listEnvironments(signal)]);
      const envs = orderEnvironments(
        envList.map((e: EnvironmentStatus) => e.name),
        promotions,
      );
      const history: Record<string, Deployment[]> = {};
      await Promise.all(
        envs.map(async (e) => {
          history[e] = await listDeployments(e, 100, signal).catch(() => []);
        }),
      );
      const stable: Record<string, Deployment | undefined> = {};
      for (const e of envList) stable[e.name] = e.stable;
      setBoard({ freight, promotions, envs, history, stable });
      setDisabled(false);
      setError(undefined);
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof ApiError && e.status === 404) setDisabled(true);
      else setError(e instanceof ApiError ? e.message : `cannot reach the server: ${e}`);
    }
  }, []);

  useEffect(() => {
    const ac = new AbortController();
    void load(ac.signal);
    return () => ac.abort();
  }, [load, tick]);

  // Fast while a promotion deploys; a blocked or pending one can wait for hours (soak, people).
  const moving = !!board?.promotions.some((p) => p.state === "approved" || p.state === "deploying");
  const open = !!board?.promotions.some((p) => openStates.has(p.state));
  useEffect(() => {
    if (!visible || disabled) return;
    const t = setTimeout(() => setTick((n) => n + 1), moving ? 1000 : open ? 3000 : 10000);
    return () => clearTimeout(t);
  }, [visible, disabled, moving, open, board]);

  const doPromote = async (f: Freight, env: string) => {
    setBusy(`${f.id}/${env}`);
    setNotice(undefined);
    try {
      const p = await promote(f.id, env);
      setNotice({
        ok: p.state !== "blocked" && p.state !== "failed",
        text: `Promotion of ${f.alias} to ${env}: ${p.state}${p.reason ? ` (${p.reason})` : ""}.`,
      });
    } catch (e) {
      setNotice({ ok: false, text: `Promotion of ${f.alias} to ${env} refused: ${e instanceof Error ? e.message : e}` });
    } finally {
      setBusy(undefined);
      setTick((n) => n + 1);
    }
  };

  return (
    <div className="page promotion">
      <h1>Promotion</h1>
      {disabled ? (
        <div className="empty" role="status">
          <p>Promotion is not enabled on this server.</p>
          <p className="muted">
            Start it with <code>paved server --environments environments.yml</code> (or <code>PAVED_ENVIRONMENTS</code>)
            listing the environments in promotion order; see docs/promote.md. Deployments still show under{" "}
            <Link to="/deployments">Deployments</Link>.
          </p>
        </div>
      ) : (
        <>
          <UserBox />
          {error && (
            <p className="error" role="alert">
              {error}
            </p>
          )}
          {notice && (
            <p className={notice.ok ? "notice" : "error"} role="alert">
              {notice.text}
            </p>
          )}
          {board && board.freight.length === 0 && (
            <p className="muted">No freight yet: a run that deploys successfully records its freight.</p>
          )}
          {board && board.freight.length > 0 && (
            <div className="table-wrap">
              <table className="board">
                <caption className="visually-hidden">Freight by environment</caption>
                <thead>
                  <tr>
                    <th scope="col">Freight</th>
                    {board.envs.map((e) => (
                      <th scope="col" key={e}>
                        <Link to={`/deployments/${encodeURIComponent(e)}`}>{e}</Link>
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {board.freight.map((f) => (
                    <tr key={f.id} data-freight={f.alias}>
                      <th scope="row">
                        <code title={f.id}>{f.alias}</code>
                        <div className="muted small">
                          {f.repo} {shortSha(f.sha)}
                          {f.author ? ` by ${f.author}` : ""} · <Link to={`/runs/${encodeURIComponent(f.run_id)}`}>run</Link> ·{" "}
                          <span title={f.created_at}>{ago(f.created_at)}</span>
                        </div>
                        {user && <PromoteTo freight={f} envs={board.envs} busy={busy !== undefined} onPromote={doPromote} />}
                      </th>
                      {board.envs.map((e) => (
                        <BoardCell
                          key={e}
                          freight={f}
                          env={e}
                          c={cell(f, e, board.history[e] ?? [], board.stable[e], board.promotions)}
                          user={user}
                          busy={busy}
                          onPromote={doPromote}
                        />
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </div>
  );
}

/** PromoteTo asks for a promotion into any environment by name: the API lists only the
 * environments something was deployed to, not the promotion config's, so an environment
 * nothing has reached yet has no column until its first promotion. */
function PromoteTo({
  freight,
  envs,
  busy,
  onPromote,
}: {
  freight: Freight;
  envs: string[];
  busy: boolean;
  onPromote: (f: Freight, env: string) => void;
}) {
  const [env, setEnv] = useState("");
  const list = `envs-${freight.alias}`;
  return (
    <form
      className="promote-to"
      onSubmit={(e) => {
        e.preventDefault();
        if (env.trim()) onPromote(freight, env.trim());
      }}
    >
      <input
        aria-label={`Environment to promote ${freight.alias} to`}
        placeholder="environment"
        list={list}
        value={env}
        onChange={(e) => setEnv(e.target.value)}
        size={10}
      />
      <datalist id={list}>
        {envs.map((e) => (
          <option key={e} value={e} />
        ))}
      </datalist>{" "}
      <button type="submit" disabled={busy || !env.trim()}>
        Promote to…
      </button>
    </form>
  );
}

/** BoardCell is one freight in one environment: where it stands and what can be done. */
export function BoardCell({
  freight: f,
  env: e,
  c,
  user,
  busy,
  onPromote,
}: {
  freight: Freight;
  env: string;
  c: Cell;
  user: string;
  busy?: string;
  onPromote: (f: Freight, env: string) => void;
}) {
  const p = c.promotion;
  return (
    <td data-env={e} data-label={e} className={c.current ? "current" : c.deployed ? "deployed" : undefined}>
      {c.current && <span className="badge ok">running here</span>}
      {c.deployed && <span className="badge ok">verified</span>}
      {p && !(c.deployed && p.state === "succeeded") && (
        <div className="promo">
          <span className={`badge ${stateClass(p.state)}`}>{p.state}</span>
          {p.state === "pending" && (
            <>
              {" "}
              <Link to={`/approvals/${encodeURIComponent(p.id)}`}>
                {p.risk} risk: {(p.decisions ?? []).filter((d) => d.approved).length}/{p.required_approvals} approvals
              </Link>
            </>
          )}
          {p.reason && p.state !== "pending" && <p className="reason">{p.reason}</p>}
        </div>
      )}
      {!c.deployed && !p && <span className="muted small">not here</span>}
      {canPromote(c) &&
        (user ? (
          <button type="button" onClick={() => onPromote(f, e)} disabled={busy !== undefined} aria-label={`Promote ${f.alias} to ${e}`}>
            {busy === `${f.id}/${e}` ? "Promoting…" : "Promote"}
          </button>
        ) : (
          <span className="muted small">give your name to promote</span>
        ))}
    </td>
  );
}
