// The runs list: newest first, filtered by repo, branch, phase and team. Filters live in the
// URL query so a filtered view can be bookmarked and shared; the list polls while visible.
import { cloneElement, useEffect, useId, useMemo, useState, type FormEvent, type ReactElement } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { ApiError, listRepos, listRuns, phases, startRun, type Repo, type RunSummary } from "../api";
import { PhaseBadge } from "../components/StatusBadge";
import { ago, branch, duration, shortId, shortSha, since } from "../lib/format";
import { useNow, useTitle } from "../lib/hooks";

const pollMs = 2000;
const filterKeys = ["repo", "branch", "phase", "team"] as const;

export function RunsList() {
  const [params, setParams] = useSearchParams();
  const repo = params.get("repo") ?? "";
  const branchFilter = params.get("branch") ?? "";
  const phase = params.get("phase") ?? "";
  const team = params.get("team") ?? "";
  const [runs, setRuns] = useState<RunSummary[]>();
  const [repos, setRepos] = useState<Repo[]>([]);
  const [error, setError] = useState<string>();
  const now = useNow(5000, true);
  useTitle("Runs");

  useEffect(() => {
    const ac = new AbortController();
    listRepos(ac.signal).then(setRepos, () => {});
    return () => ac.abort();
  }, []);

  useEffect(() => {
    let ac = new AbortController();
    const load = () => {
      ac.abort();
      ac = new AbortController();
      // The API filters by repo, team and phase; branch is matched here on the ref.
      listRuns({ repo, team, phase, limit: 200 }, ac.signal).then(
        (r) => {
          setRuns(r);
          setError(undefined);
        },
        (e) => {
          if (!ac.signal.aborted) setError(e instanceof ApiError ? e.message : `cannot reach the server: ${e}`);
        },
      );
    };
    load();
    const t = setInterval(() => {
      if (document.visibilityState === "visible") load();
    }, pollMs);
    return () => {
      clearInterval(t);
      ac.abort();
    };
  }, [repo, team, phase]);

  const shown = useMemo(
    () => (runs ?? []).filter((r) => !branchFilter || branch(r.ref).includes(branchFilter)),
    [runs, branchFilter],
  );
  const teams = useMemo(() => [...new Set(repos.map((r) => r.team).filter(Boolean) as string[])].sort(), [repos]);

  const setFilter = (key: (typeof filterKeys)[number], value: string) => {
    const p = new URLSearchParams(params);
    if (value) p.set(key, value);
    else p.delete(key);
    setParams(p, { replace: true });
  };
  const filtered = filterKeys.some((k) => params.get(k));

  return (
    <div className="page">
      <div className="page-head">
        <h1>Runs</h1>
        <StartRun repos={repos} defaultRepo={repo} />
      </div>
      <form className="filters" role="search" aria-label="Filter runs" onSubmit={(e) => e.preventDefault()}>
        <Field label="Repo">
          <select value={repo} onChange={(e) => setFilter("repo", e.target.value)}>
            <option value="">All repos</option>
            {repos.map((r) => (
              <option key={r.full_name} value={r.full_name}>
                {r.full_name}
              </option>
            ))}
            {repo && !repos.some((r) => r.full_name === repo) && <option value={repo}>{repo}</option>}
          </select>
        </Field>
        <Field label="Branch">
          <input
            type="search"
            value={branchFilter}
            placeholder="any"
            onChange={(e) => setFilter("branch", e.target.value)}
          />
        </Field>
        <Field label="Status">
          <select value={phase} onChange={(e) => setFilter("phase", e.target.value)}>
            <option value="">Any status</option>
            {phases.map((p) => (
              <option key={p} value={p}>
                {p.toLowerCase().replace("_", " ")}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Team">
          <select value={team} onChange={(e) => setFilter("team", e.target.value)}>
            <option value="">All teams</option>
            {teams.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
            {team && !teams.includes(team) && <option value={team}>{team}</option>}
          </select>
        </Field>
        {filtered && (
          <button type="button" className="link" onClick={() => setParams(new URLSearchParams(), { replace: true })}>
            Clear filters
          </button>
        )}
      </form>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {runs === undefined ? (
        <p className="loading">Loading runs…</p>
      ) : shown.length === 0 ? (
        <p className="empty">
          {filtered
            ? "No run matches these filters."
            : "No runs yet. Register a repo (POST /api/v1/repos) and start a run, or push to it."}
        </p>
      ) : (
        <div className="table-wrap">
          <table className="runs">
            <caption className="visually-hidden">
              {shown.length} runs, newest first; updates every {pollMs / 1000} seconds
            </caption>
            <thead>
              <tr>
                <th scope="col">Status</th>
                <th scope="col">Run</th>
                <th scope="col">Repo</th>
                <th scope="col">Branch</th>
                <th scope="col" className="wide-only">
                  Commit
                </th>
                <th scope="col" className="wide-only">
                  Trigger
                </th>
                <th scope="col">Started</th>
                <th scope="col">Took</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => (
                <tr key={r.id} data-run={r.id}>
                  <td>
                    <PhaseBadge phase={r.phase} />
                  </td>
                  <td>
                    <Link to={`/runs/${encodeURIComponent(r.id)}`} aria-label={`Run ${shortId(r.id)} of ${r.repo}`}>
                      <code>{shortId(r.id)}</code>
                    </Link>
                  </td>
                  <td>{r.repo}</td>
                  <td data-label="on">{branch(r.ref)}</td>
                  <td className="wide-only">
                    <code title={r.sha}>{shortSha(r.sha)}</code>
                  </td>
                  <td className="wide-only">{r.trigger}</td>
                  <td title={r.created_at} data-label="started">
                    {ago(r.created_at, now)}
                  </td>
                  <td data-label="took">{duration(since(r.created_at, r.finished_at, now))}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

/** StartRun starts a manual run of a registered repo at a ref. */
function StartRun({ repos, defaultRepo }: { repos: Repo[]; defaultRepo: string }) {
  const [open, setOpen] = useState(false);
  const [repo, setRepo] = useState(defaultRepo);
  const [ref, setRef] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const [details, setDetails] = useState<string[]>([]);
  const navigate = useNavigate();
  if (!open) {
    return (
      <button type="button" onClick={() => setOpen(true)} disabled={repos.length === 0}>
        Start a run
      </button>
    );
  }
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    setDetails([]);
    try {
      const r = await startRun(repo || repos[0]?.full_name || "", ref);
      navigate(`/runs/${encodeURIComponent(r.id)}`);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      if (err instanceof ApiError) setDetails(err.details);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="start-run" onSubmit={submit} aria-label="Start a run">
      <Field label="Repo to run">
        <select value={repo || repos[0]?.full_name} onChange={(e) => setRepo(e.target.value)}>
          {repos.map((r) => (
            <option key={r.full_name}>{r.full_name}</option>
          ))}
        </select>
      </Field>
      <Field label="Ref">
        <input value={ref} onChange={(e) => setRef(e.target.value)} placeholder="default branch" />
      </Field>
      <button type="submit" disabled={busy}>
        {busy ? "Starting…" : "Start"}
      </button>
      <button type="button" className="link" onClick={() => setOpen(false)}>
        Close
      </button>
      {error && (
        <div className="error" role="alert">
          <p>{error}</p>
          {details.length > 0 && (
            <ul>
              {details.map((d) => (
                <li key={d}>
                  <code>{d}</code>
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </form>
  );
}

/** Field labels one control with a label outside it, so the control's name is the label alone. */
function Field({ label, children }: { label: string; children: ReactElement<{ id?: string }> }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {cloneElement(children, { id })}
    </div>
  );
}
