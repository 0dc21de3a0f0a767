// Small formatters shared by the views.

/** duration renders milliseconds the way a CI user reads them: 850ms, 12.3s, 4m05s, 1h02m. */
export function duration(ms: number | undefined | null): string {
  if (ms == null || !Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** since is the milliseconds between two timestamps (the second defaults to now). */
export function since(from: string | undefined, to?: string, now = Date.now()): number | undefined {
  if (!from) return undefined;
  const a = Date.parse(from);
  const b = to ? Date.parse(to) : now;
  if (Number.isNaN(a) || Number.isNaN(b)) return undefined;
  return Math.max(0, b - a);
}

/** ago renders a past timestamp relative to now: "just now", "5 min ago", "3 h ago", else the date. */
export function ago(ts: string | undefined, now = Date.now()): string {
  if (!ts) return "";
  const t = Date.parse(ts);
  if (Number.isNaN(t)) return "";
  const s = Math.round((now - t) / 1000);
  if (s < 10) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t).toISOString().slice(0, 10);
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export const shortSha = (sha?: string) => (sha ? sha.slice(0, 8) : "");
/** shortId names a run in lists. Run ids are UUIDv7: the first half is a timestamp shared by
 * runs started close together, the end is random, so the end tells runs apart. */
export const shortId = (id: string) =>
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id) ? id.slice(-8) : id;

/** branch is a ref without refs/heads/ (tags keep their refs/tags/ so they read as tags). */
export const branch = (ref?: string) => (ref ?? "").replace(/^refs\/heads\//, "");

/** cpu renders CPU-seconds as hours, minutes or seconds, whichever reads best. */
export function cpu(s: number): string {
  if (!(s > 0)) return "0 s";
  if (s >= 3600) return `${(s / 3600).toFixed(s >= 36000 ? 0 : 1)} CPU-h`;
  if (s >= 60) return `${(s / 60).toFixed(s >= 600 ? 0 : 1)} CPU-min`;
  return `${s < 1 ? Number(s.toPrecision(2)) : s.toFixed(s < 10 ? 1 : 0)} CPU-s`;
}

/** gbs renders memory use in GiB-seconds ("" when the server did not measure it). */
export const gbs = (v?: number) => (v == null ? "" : `${v.toFixed(v < 10 ? 2 : 0)} GiB·s`);

/** money renders a cost with enough digits to tell small costs apart (no currency: the
 * price's unit is whatever the operator chose). */
export const money = (v: number) => (v >= 1 ? v.toFixed(2) : v.toPrecision(2).replace(/^0\.?0*$/, "0"));
