import { describe, expect, it } from "vitest";
import type { Deployment, Freight, Promotion } from "../api";
import { canPromote, cell, orderEnvironments, stateClass } from "./promote";

const f: Freight = {
  id: "sha256:abc",
  alias: "f-abc",
  artifacts: { deploy: "sha256:d1" },
  repo: "acme/web",
  sha: "0123456789",
  config_hash: "h",
  run_id: "r1",
  created_at: "2026-12-01T10:00:00Z",
};

const dep = (env: string, artifact: string, outcome = "succeeded"): Deployment =>
  ({ id: `${env}-${artifact}`, environment: env, strategy: "rolling", artifact, version: "v", triggered_by: "x", outcome, started_at: "2026-12-01T10:00:00Z" }) as Deployment;

const promo = (env: string, state: string, freight = f.id, created = "2026-12-01T11:00:00Z"): Promotion => ({
  id: `p-${env}-${state}`,
  freight,
  environment: env,
  state,
  risk: "medium",
  required_approvals: 1,
  requested_by: "ana",
  created_at: created,
  updated_at: created,
});

describe("cell", () => {
  it("is deployed and current where the digest succeeded and runs", () => {
    const d = dep("dev", "sha256:d1");
    const c = cell(f, "dev", [d], d, []);
    expect(c).toMatchObject({ deployed: true, current: true });
    expect(canPromote(c)).toBe(false);
  });
  it("ignores failed deployments and other digests", () => {
    const c = cell(f, "dev", [dep("dev", "sha256:d1", "failed"), dep("dev", "sha256:other")], dep("dev", "sha256:other"), []);
    expect(c).toMatchObject({ deployed: false, current: false });
    expect(canPromote(c)).toBe(true);
  });
  it("takes the newest promotion, by id or alias, and an open one forbids another", () => {
    const ps = [promo("prod", "pending", "f-abc"), promo("prod", "rejected")];
    const c = cell(f, "prod", [], undefined, ps);
    expect(c.promotion?.state).toBe("pending");
    expect(canPromote(c)).toBe(false);
    expect(canPromote(cell(f, "prod", [], undefined, [promo("prod", "rejected")]))).toBe(true);
  });
});

describe("orderEnvironments", () => {
  it("puts environments runs deploy to first, then by first promotion", () => {
    const ps = [promo("prod", "pending", f.id, "2026-12-01T12:00:00Z"), promo("staging", "succeeded", f.id, "2026-12-01T11:00:00Z")];
    expect(orderEnvironments(["prod", "dev", "staging"], ps)).toEqual(["dev", "staging", "prod"]);
    expect(orderEnvironments(["b", "a"], [])).toEqual(["a", "b"]);
    expect(orderEnvironments([], [promo("qa", "blocked")])).toEqual(["qa"]);
  });
});

it("stateClass colours states and risks", () => {
  expect(stateClass("blocked")).toBe("bad");
  expect(stateClass("low")).toBe("ok");
  expect(stateClass("pending")).toBe("warn");
  expect(stateClass("whatever")).toBe("info");
});
