// Formatting of deployment, gate and insight figures, kept pure so vitest checks them.
import type { Finding, LiveDeployment, RunEvent, TestReport } from "../api";

/** outcomeClass maps an outcome, phase or decision to the badge colour class. */
export function outcomeClass(o: string | undefined): string {
  switch (o) {
    case "succeeded":
    case "pass":
    case "done":
      return "ok";
    case "failed":
    case "fail":
    case "block":
    case "error":
    case "rolled_back":
    case "rolling_back":
    case "interrupted":
      return "bad";
    case "inconclusive":
    case "warn":
    case "paused":
      return "warn";
    default:
      return "info";
  }
}

const metricNames: Record<string, string> = {
  error_rate: "Error rate",
  p99_latency_ms: "P99 latency",
  restarts: "Restarts",
  memory_bytes: "Memory",
  requests: "Requests",
};

export const metricLabel = (name: string) => metricNames[name] ?? name;

/** metricValue renders a metric in its unit: rates as percent, latency in ms, memory in MiB. */
export function metricValue(name: string, v: number): string {
  if (!Number.isFinite(v)) return "";
  if (name === "error_rate" || name.endsWith("_rate")) return `${(v * 100).toFixed(v < 0.01 && v > 0 ? 2 : 1)}%`;
  if (name.endsWith("_ms")) return `${v.toFixed(v < 10 ? 1 : 0)} ms`;
  if (name.endsWith("_bytes")) return `${(v / (1 << 20)).toFixed(1)} MiB`;
  return String(Math.round(v * 100) / 100);
}

/** deploymentsByStage is the last deployment each stage's events carry, for links from a run. */
export function deploymentsByStage(events: (RunEvent & { deployment?: LiveDeployment })[]): Map<string, LiveDeployment> {
  const m = new Map<string, LiveDeployment>();
  for (const e of events) if (e.stage && e.deployment?.id) m.set(e.stage, e.deployment);
  return m;
}

export const severities = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"];

/** atOrAbove keeps the findings at or above a severity ("" keeps all). */
export function atOrAbove(findings: Finding[], min: string): Finding[] {
  const i = severities.indexOf(min);
  if (i < 0) return findings;
  return findings.filter((f) => {
    const j = severities.indexOf(f.severity.toUpperCase());
    return j >= 0 && j <= i;
  });
}

/** where renders a finding's place: file:line, or the object/package it is about. */
export function where(f: Finding): string {
  if (f.file) return f.line ? `${f.file}:${f.line}` : f.file;
  if (f.package) return f.version ? `${f.package}@${f.version}` : f.package;
  return f.object ?? "";
}

/** scale is the bar length in percent of the largest value (0 when all are 0). */
export function scale(v: number, max: number): number {
  if (!(max > 0) || !(v > 0)) return 0;
  return Math.min(100, (v / max) * 100);
}

/** TestSummary is what the run page shows of a stage's TestsReported: counts and the names
 * that need a look (failed or errored, and the quarantined ones that were excused). */
export interface TestSummary {
  report: TestReport;
  failed: string[];
  quarantined: string[];
}

/** testsByStage is the newest TestsReported of each stage (a retry's report replaces the last). */
export function testsByStage(events: RunEvent[]): Map<string, TestSummary> {
  const m = new Map<string, TestSummary>();
  for (const e of events) {
    if (e.type !== "TestsReported" || !e.stage || !e.tests) continue;
    const q = e.tests.quarantined ?? [];
    const failed = (e.tests.cases ?? []).filter((c) => (c.status === "failed" || c.status === "errored") && !q.includes(c.id)).map((c) => c.id);
    m.set(e.stage, { report: e.tests, failed, quarantined: q });
  }
  return m;
}
