// The HTTP API as the UI reads it (docs/api.md). Shapes mirror internal/api's JSON.

export type Phase =
  | "PENDING" | "BUILDING" | "TESTING" | "DEPLOYING" | "VERIFYING"
  | "SUCCEEDED" | "FAILED" | "CANCELLED" | "ROLLED_BACK";

export const phases: Phase[] = [
  "PENDING", "BUILDING", "TESTING", "DEPLOYING", "VERIFYING", "SUCCEEDED", "FAILED", "CANCELLED", "ROLLED_BACK",
];

export const terminalPhases = new Set<string>(["SUCCEEDED", "FAILED", "CANCELLED", "ROLLED_BACK"]);

export type StageStatus = "pending" | "queued" | "running" | "succeeded" | "failed" | "skipped" | "cancelled";

export interface RunSummary {
  id: string;
  repo: string;
  team?: string;
  ref?: string;
  sha?: string;
  pipeline?: string;
  trigger?: string;
  phase: Phase;
  created_at: string;
  finished_at?: string;
  last_seq?: number;
}

export interface Waiting {
  reason: string;
  position?: number;
}

export interface Artifact {
  stage?: string;
  path: string;
  type: "file" | "symlink" | "dir";
  digest?: string;
  size: number;
  mode?: string;
  link?: string;
}

export interface Stage {
  name: string;
  status: StageStatus;
  phase?: string;
  needs: string[];
  attempt: number;
  queued_at?: string;
  started_at?: string;
  finished_at?: string;
  duration_ms?: number;
  queue_wait_ms?: number;
  waiting?: Waiting;
  step?: number;
  step_name?: string;
  exit_code?: number;
  reason?: string;
  sandbox?: string;
  artifacts?: Artifact[];
}

export interface RunView extends RunSummary {
  priority?: string;
  group?: string;
  reason?: string;
  cancel_requested?: boolean;
  stages: Stage[];
  artifacts?: Artifact[];
}

export interface Repo {
  full_name: string;
  clone_url?: string;
  team?: string;
  provider?: string;
}

export interface RunEvent {
  run_id: string;
  seq: number;
  type: string;
  time: string;
  stage?: string;
  status?: string;
}

export interface LogLine {
  run_id: string;
  stage: string;
  seq: number;
  time: string;
  text: string;
}

/** ApiError carries the server's own message, which says what to do. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly details: string[] = [],
  ) {
    super(message);
  }
}

async function request<T>(path: string, init?: RequestInit): Promise<T> {
  const res = await fetch(path, { ...init, headers: { Accept: "application/json", ...init?.headers } });
  const text = await res.text();
  let body: unknown = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // a proxy's HTML error page: report the status below
  }
  if (!res.ok) {
    const b = body as { error?: string; details?: string[] } | undefined;
    throw new ApiError(b?.error ?? `${res.status} ${res.statusText}`, res.status, b?.details ?? []);
  }
  return body as T;
}

export interface RunFilter {
  repo?: string;
  team?: string;
  phase?: string;
  limit?: number;
}

export function listRuns(f: RunFilter, signal?: AbortSignal): Promise<RunSummary[]> {
  const q = new URLSearchParams();
  if (f.repo) q.set("repo", f.repo);
  if (f.team) q.set("team", f.team);
  if (f.phase) q.set("phase", f.phase);
  if (f.limit) q.set("limit", String(f.limit));
  return request<{ runs: RunSummary[] }>(`/api/v1/runs?${q}`, { signal }).then((r) => r.runs);
}

export const getRun = (id: string, signal?: AbortSignal) =>
  request<RunView>(`/api/v1/runs/${encodeURIComponent(id)}`, { signal });

export const listRepos = (signal?: AbortSignal) =>
  request<{ repos: Repo[] }>("/api/v1/repos", { signal }).then((r) => r.repos);

export const cancelRun = (id: string) =>
  request<unknown>(`/api/v1/runs/${encodeURIComponent(id)}/cancel`, { method: "POST" });

export const startRun = (repo: string, ref: string) =>
  request<{ id: string; sha: string }>("/api/v1/runs", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ repo, ref }),
  });

export const eventsURL = (id: string) => `/api/v1/runs/${encodeURIComponent(id)}/events`;

export const logsURL = (id: string, stage: string) =>
  `/api/v1/runs/${encodeURIComponent(id)}/logs?stage=${encodeURIComponent(stage)}`;
