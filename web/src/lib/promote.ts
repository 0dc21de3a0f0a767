// The promotion board's model: which freight is where, from the freight, the promotions and
// each environment's deployment history (docs/promote.md).
import type { Deployment, Freight, Promotion } from "../api";

export interface Cell {
  /** deployed: a succeeded deployment of the freight's digest ran here (verified). */
  deployed: boolean;
  /** current: the environment serves this freight now. */
  current: boolean;
  /** promotion: the newest promotion of the freight into the environment, if any. */
  promotion?: Promotion;
}

export const openStates = new Set(["blocked", "pending", "approved", "deploying"]);

const digests = (f: Freight) => new Set(Object.values(f.artifacts ?? {}));

/** cell is where freight f stands in environment env. */
export function cell(f: Freight, env: string, history: Deployment[], stable: Deployment | undefined, promotions: Promotion[]): Cell {
  const ds = digests(f);
  const deployed = history.some((d) => d.outcome === "succeeded" && ds.has(d.artifact));
  const current = !!stable && ds.has(stable.artifact);
  // promotions come newest first
  const promotion = promotions.find((p) => (p.freight === f.id || p.freight === f.alias) && p.environment === env);
  return { deployed, current, promotion };
}

/** canPromote: a promotion may be asked for when the freight is not there and none is open. */
export const canPromote = (c: Cell) => !c.deployed && !(c.promotion && openStates.has(c.promotion.state));

/** orderEnvironments puts environments in promotion order as far as the API tells it: the
 * configured order is not served, so environments nothing was promoted into (where runs
 * deploy) come first, then by their first promotion, then by name. */
export function orderEnvironments(envs: string[], promotions: Promotion[]): string[] {
  const first = new Map<string, number>();
  for (const p of promotions) {
    const t = Date.parse(p.created_at);
    const cur = first.get(p.environment);
    if (cur === undefined || t < cur) first.set(p.environment, t);
  }
  const all = [...new Set([...envs, ...promotions.map((p) => p.environment)])];
  return all.sort((a, b) => {
    const ta = first.get(a) ?? -Infinity;
    const tb = first.get(b) ?? -Infinity;
    if (ta !== tb) return ta < tb ? -1 : 1;
    return a.localeCompare(b);
  });
}

/** stateClass maps a promotion's state or a risk to the badge colour class. */
export function stateClass(s: string | undefined): string {
  switch (s) {
    case "succeeded":
    case "low":
    case "pass":
      return "ok";
    case "failed":
    case "rejected":
    case "blocked":
    case "high":
    case "block":
      return "bad";
    case "pending":
    case "approved":
    case "deploying":
    case "medium":
    case "warn":
      return "warn";
  }
  return "info";
}
