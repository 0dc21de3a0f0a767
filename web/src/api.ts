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
  attempt?: number;
  tests?: TestReport;
}

/** TestReport is a TestsReported event's `tests`: what a stage's JUnit reports said. */
export interface TestReport {
  files?: string[] | null;
  total: number;
  passed: number;
  failed: number;
  errored: number;
  skipped: number;
  duration_ms?: number;
  cases?: { id: string; status: string; ms?: number }[] | null;
  quarantined?: string[] | null;
  note?: string;
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

// ---- Access (docs/access.md) ----

/** Listeners told when the API answers 401: the session ended, so the UI shows its login. */
const unauthorizedListeners = new Set<() => void>();

export function onUnauthorized(fn: () => void): () => void {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

/**
 * request calls the API with the session cookie (same origin) and the CSRF header the
 * server requires of cookie-authenticated writes; a cross-site page cannot set it.
 */
async function request<T>(path: string, init?: RequestInit): Promise<T> {
  const res = await fetch(path, {
    credentials: "same-origin",
    ...init,
    headers: { Accept: "application/json", "X-Paved-CSRF": "1", ...init?.headers },
  });
  if (res.status === 401 && path !== "/api/v1/login") unauthorizedListeners.forEach((fn) => fn());
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

// ---- Deployments (docs/deploy.md) ----

export interface MetricValue {
  name: string;
  value: number;
  threshold: number;
  baseline: number;
  outcome: string;
}

export interface Analysis {
  step?: number;
  measurement: number;
  outcome: string;
  reason?: string;
  metrics?: MetricValue[];
}

/** LiveDeployment is where a deployment stands, as its events carry it. */
export interface LiveDeployment {
  id: string;
  environment: string;
  strategy: string;
  artifact?: string;
  version?: string;
  url?: string;
  step?: number;
  steps?: number;
  weights?: Record<string, number>;
  phase?: string;
  analysis?: Analysis;
  outcome?: string;
  reason?: string;
  rollback_ms?: number;
}

/** Deployment is one recorded deployment of the history. */
export interface Deployment {
  id: string;
  environment: string;
  strategy: string;
  artifact: string;
  version: string;
  config_hash?: string;
  run_id?: string;
  stage?: string;
  repo?: string;
  sha?: string;
  triggered_by: string;
  rollback_of?: string;
  outcome: string;
  reason?: string;
  started_at: string;
  finished_at?: string;
}

export interface TrafficSummary {
  requests: number;
  errors: number;
  error_rate: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
}

export interface Replica {
  id: string;
  version: string;
  state: string;
  addr?: string;
  pid?: number;
  restarts?: number;
  rss_bytes?: number;
  last_exit?: string;
}

export interface EnvironmentStatus {
  name: string;
  url: string;
  stable?: Deployment;
  pools: { name: string; weight: number; replicas: Replica[] | null }[] | null;
  deploying: boolean;
  live?: LiveDeployment;
  metrics?: Record<string, TrafficSummary> | null;
  versions?: Record<string, TrafficSummary> | null;
  warm?: string;
}

const env = (name: string) => `/api/v1/environments/${encodeURIComponent(name)}`;

export const listEnvironments = (signal?: AbortSignal) =>
  request<EnvironmentStatus[] | null>("/api/v1/environments", { signal }).then((r) => r ?? []);

export const getEnvironment = (name: string, signal?: AbortSignal) => request<EnvironmentStatus>(env(name), { signal });

export const listDeployments = (name: string, limit = 50, signal?: AbortSignal) =>
  request<Deployment[] | null>(`${env(name)}/deployments?limit=${limit}`, { signal }).then((r) => r ?? []);

export const getDeployment = (id: string, signal?: AbortSignal) =>
  request<Deployment>(`/api/v1/deployments/${encodeURIComponent(id)}`, { signal });

export const rollback = (name: string, to: string) =>
  request<Deployment>(`${env(name)}/rollback`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ to, by: "ui" }),
  });

/** runEvents is a run's recorded events, for what the run view does not fold (deployments). */
export const runEvents = (id: string, signal?: AbortSignal) =>
  request<{ events: (RunEvent & { deployment?: LiveDeployment })[] } | (RunEvent & { deployment?: LiveDeployment })[]>(
    `/api/v1/runs/${encodeURIComponent(id)}/events`,
    { signal },
  ).then((r) => (Array.isArray(r) ? r : (r?.events ?? [])));

// ---- Findings (docs/gates.md) ----

export interface Finding {
  rule: string;
  severity: string;
  file?: string;
  line?: number;
  match?: string;
  message?: string;
  object?: string;
  package?: string;
  version?: string;
  fixed?: string;
}

export interface GateResult {
  stage: string;
  attempt: number;
  status: string;
  kind: string;
  decision: string;
  reason?: string;
  environment?: string;
  environment_from?: string;
  policy?: string;
  block_at?: string;
  warn_at?: string;
  counts?: Record<string, number>;
  findings?: Finding[] | null;
}

export interface Findings {
  run_id: string;
  decision?: string;
  counts?: Record<string, number>;
  gates: GateResult[] | null;
}

export const getFindings = (id: string, signal?: AbortSignal) =>
  request<Findings>(`/api/v1/runs/${encodeURIComponent(id)}/findings`, { signal });

// ---- Insights (docs/insights.md) ----

export interface Dist {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface StageInsight {
  name: string;
  runs: number;
  failed: number;
  failure_rate: number;
  causes?: Record<string, number> | null;
  duration_ms: Dist;
  queue_wait_ms: Dist;
}

export interface InsightReport {
  window: { since: string; until: string };
  truncated: boolean;
  report: {
    runs: { total: number; finished: number; by_phase?: Record<string, number> | null; failure_rate: number; duration_ms: Dist };
    stages: StageInsight[] | null;
    queue_wait_ms: Dist;
    failures_by_cause?: Record<string, number> | null;
  };
}

export interface InsightFilter {
  since: string;
  repo?: string;
  pipeline?: string;
  branch?: string;
}

export function getInsights(f: InsightFilter, signal?: AbortSignal): Promise<InsightReport> {
  const q = new URLSearchParams({ since: f.since });
  if (f.repo) q.set("repo", f.repo);
  if (f.pipeline) q.set("pipeline", f.pipeline);
  if (f.branch) q.set("branch", f.branch);
  return request<InsightReport>(`/api/v1/insights/runs?${q}`, { signal });
}

export interface Alert {
  rule: string;
  subject?: string;
  summary: string;
  value: number;
  baseline: number;
  threshold: number;
}

export const getAlerts = (signal?: AbortSignal) =>
  request<{ alerts: Alert[] | null }>("/api/v1/insights/alerts", { signal }).then((r) => r.alerts ?? []);

const query = (f: Record<string, string | undefined>) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
  return q.toString();
};

/** Dora is GET /api/v1/insights/dora: the four keys of one environment (docs/insights.md). */
export interface Dora {
  deployments: number;
  succeeded: number;
  failed: number;
  rolled_back: number;
  deployments_per_day: number;
  lead_time_ms: Dist;
  change_failure_rate: number;
  time_to_restore_ms: Dist;
  failing_since?: string;
  rollbacks: number;
  rollbacks_by_reason?: Record<string, number> | null;
}

export const getDora = (environment: string, since: string, signal?: AbortSignal) =>
  request<Dora>(`/api/v1/insights/dora?${query({ environment, since })}`, { signal });

export interface FlakyTest {
  repo: string;
  pipeline: string;
  stage: string;
  test: string;
  reason: string;
  runs: number;
  failures: number;
  flake_rate: number;
  wasted_ms: number;
  last_failure?: string;
}

export interface TestHistory {
  repo: string;
  pipeline: string;
  stage: string;
  test: string;
  runs: number;
  passed: number;
  failed: number;
  skipped: number;
  quarantined?: boolean;
}

export const getTestInsights = (f: { repo?: string; pipeline?: string }, signal?: AbortSignal) =>
  request<{ tests: TestHistory[] | null; flaky: FlakyTest[] | null }>(`/api/v1/insights/tests?${query(f)}`, { signal }).then((r) => ({
    tests: r?.tests ?? [],
    flaky: r?.flaky ?? [],
  }));

export interface CostRow {
  team?: string;
  repo?: string;
  pipeline?: string;
  runs: number;
  cpu_seconds: number;
  memory_gb_seconds?: number;
  max_rss_bytes: number;
  cost: number;
}

export interface CostReport {
  cpu_hour_price: number;
  total: CostRow;
  teams: CostRow[] | null;
  pipelines: CostRow[] | null;
  truncated?: boolean;
}

export const getCost = (f: { since: string; repo?: string; pipeline?: string }, signal?: AbortSignal) =>
  request<CostReport>(`/api/v1/insights/cost?${query(f)}`, { signal });

// ---- Freight, promotions and approvals (docs/promote.md) ----

export interface Gate {
  kind: string;
  decision: string;
  reason?: string;
  environment?: string;
  policy?: string;
  counts?: Record<string, number>;
}

export interface Freight {
  id: string;
  alias: string;
  artifacts: Record<string, string>;
  repo: string;
  sha: string;
  config_hash: string;
  run_id: string;
  author?: string;
  gates?: Gate[] | null;
  created_at: string;
}

export interface Decision {
  by: string;
  approved: boolean;
  reason?: string;
  at: string;
}

export interface Promotion {
  id: string;
  freight: string;
  environment: string;
  state: string;
  reason?: string;
  risk: string;
  risk_reason?: string;
  files?: string[] | null;
  required_approvals: number;
  decisions?: Decision[] | null;
  author?: string;
  requested_by: string;
  deployment?: string;
  created_at: string;
  updated_at: string;
}

export interface Approval {
  promotion: Promotion;
  freight: Freight;
  approvers: string[] | null;
  gates: Gate[] | null;
  current?: Deployment;
  rollback: string;
  recent_deployments: Deployment[] | null;
}

const jsonHeaders = { "Content-Type": "application/json" };

export const listFreight = (signal?: AbortSignal) =>
  request<Freight[] | null>("/api/v1/freight?limit=50", { signal }).then((r) => r ?? []);

export const listPromotions = (signal?: AbortSignal) =>
  request<Promotion[] | null>("/api/v1/promotions?limit=200", { signal }).then((r) => r ?? []);

/** promote asks for a promotion as the signed-in user. */
export const promote = (freight: string, environment: string) =>
  request<Promotion>("/api/v1/promotions", {
    method: "POST",
    headers: jsonHeaders,
    body: JSON.stringify({ freight, environment }),
  });

/** listApprovals lists what waits for approvals; with user, only those user may give. */
export const listApprovals = (user: string, signal?: AbortSignal) =>
  request<Approval[] | null>(`/api/v1/approvals${user ? `?user=${encodeURIComponent(user)}` : ""}`, { signal }).then((r) => r ?? []);

export const getApproval = (id: string, signal?: AbortSignal) =>
  request<Approval>(`/api/v1/approvals/${encodeURIComponent(id)}`, { signal });

/** decide approves or rejects as the signed-in user. */
export const decide = (id: string, approve: boolean, reason: string) =>
  request<Promotion>(`/api/v1/approvals/${encodeURIComponent(id)}/${approve ? "approve" : "reject"}`, {
    method: "POST",
    headers: jsonHeaders,
    body: JSON.stringify({ reason }),
  });

/** Me is who the session is: GET /api/v1/me. */
export interface Me {
  user: string;
  admin: boolean;
  session: boolean;
  teams: { team: string; role: string }[];
}

export const getMe = (signal?: AbortSignal) => request<Me>("/api/v1/me", { signal });

/** login starts a session: the server sets an HttpOnly cookie the UI never reads. */
export const login = (user: string, password: string) =>
  request<{ user: string; expires_at: string }>("/api/v1/login", {
    method: "POST",
    headers: jsonHeaders,
    body: JSON.stringify({ user, password }),
  });

/** loginOptions says how one may sign in: SSO is offered when the server has an OIDC issuer. */
export const loginOptions = (signal?: AbortSignal) =>
  request<{ password: boolean; oidc: boolean }>("/api/v1/login/options", { signal });

/** oidcLoginURL starts an SSO login: a full-page navigation to the identity provider and back. */
export const oidcLoginURL = "/api/v1/login/oidc";

export const logout = () => request<unknown>("/api/v1/logout", { method: "POST" });

/** writeHeaders are the headers of a write made with fetch directly (not request). */
export const writeHeaders = { "X-Paved-CSRF": "1" };
