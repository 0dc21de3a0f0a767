import { renderToStaticMarkup } from "react-dom/server";
import { MemoryRouter } from "react-router";
import { describe, expect, it } from "vitest";
import type { Freight, Promotion } from "../api";
import { BoardCell } from "./Promotion";

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

const p = (state: string, reason?: string): Promotion => ({
  id: "prm-1",
  freight: f.id,
  environment: "prod",
  state,
  reason,
  risk: "high",
  required_approvals: 2,
  decisions: [{ by: "bo", approved: true, at: "2026-12-01T10:00:00Z" }],
  requested_by: "ana",
  created_at: "2026-12-01T10:00:00Z",
  updated_at: "2026-12-01T10:00:00Z",
});

const render = (c: Parameters<typeof BoardCell>[0]["c"], user = "bo") =>
  renderToStaticMarkup(
    <MemoryRouter>
      <table>
        <tbody>
          <tr>
            <BoardCell freight={f} env="prod" c={c} user={user} onPromote={() => {}} />
          </tr>
        </tbody>
      </table>
    </MemoryRouter>,
  );

describe("BoardCell", () => {
  it("says which rule blocks a promotion and offers no second one", () => {
    const html = render({ deployed: false, current: false, promotion: p("blocked", "soak: f-abc has run 4m0s of the 10m0s prod requires in staging") });
    expect(html).toContain("blocked");
    expect(html).toContain("soak: f-abc has run 4m0s of the 10m0s prod requires in staging");
    expect(html).not.toContain("<button");
  });
  it("links a pending promotion to its approval with the approvals given", () => {
    const html = render({ deployed: false, current: false, promotion: p("pending") });
    expect(html).toContain('href="/approvals/prm-1"');
    expect(html).toContain("high risk: 1/2 approvals");
  });
  it("offers Promote where nothing is open, once a name is given", () => {
    expect(render({ deployed: false, current: false, promotion: p("rejected", "bo: no") })).toContain('aria-label="Promote f-abc to prod"');
    expect(render({ deployed: false, current: false }, "")).toContain("give your name to promote");
    const here = render({ deployed: true, current: true, promotion: p("succeeded") });
    expect(here).toContain("running here");
    expect(here).not.toContain("<button");
  });
});
