import { describe, expect, it } from "vitest";
import { compile, emptyDoc, freeName, open, stageLines, stageOf } from "./builder";

const file = `# the team's pipeline
name: app
env:
  GOFLAGS: -mod=mod
stages:
  build:
    steps:
      - name: compile
        run: make
        env: {CGO_ENABLED: "0"}
    artifacts: [out/app]
    timeout: 10m
  scan:
    needs: [build]
    uses: gate/secrets
    with: {severity: HIGH}
`;

describe("builder round trip", () => {
  it("prints an opened file unchanged, keeping the keys it does not show", () => {
    const { model, doc } = open(file);
    expect(model.name).toBe("app");
    expect(model.stages.map((s) => s.name)).toEqual(["build", "scan"]);
    expect(model.stages[1]).toMatchObject({ needs: ["build"], uses: "gate/secrets", steps: [] });
    expect(model.stages[0]).toMatchObject({ artifacts: ["out/app"], timeout: "10m", steps: [{ name: "compile", run: "make" }] });
    expect(compile(model, doc)).toBe(file);
  });

  it("writes edits and renames into the document", () => {
    const { model, doc } = open(file);
    model.stages[0].name = "compile";
    model.stages[1].needs = ["compile"];
    model.stages.push({ name: "deploy", needs: ["scan"], steps: [{ name: "", run: "echo hi" }], uses: "", artifacts: [], timeout: "" });
    const out = compile(model, doc);
    expect(out).toContain("  compile:\n    steps:\n      - name: compile\n        run: make\n        env:");
    expect(out).toContain("with: {severity: HIGH}");
    expect(out).toContain("  deploy:\n    needs: [scan]\n    steps:\n      - run: echo hi\n");
    const again = open(out).model;
    expect(again.stages.map((s) => [s.name, s.needs])).toEqual([["compile", []], ["scan", ["compile"]], ["deploy", ["scan"]]]);
  });

  it("builds from nothing and maps error lines to stages", () => {
    const m = { name: "x", stages: [{ name: freeName({ name: "", stages: [] }), needs: [], steps: [], uses: "", artifacts: [], timeout: "" }] };
    const out = compile(m, emptyDoc());
    expect(out).toBe("name: x\nstages:\n  stage-1: {}\n");
    const lines = stageLines(file);
    expect(stageOf(lines, 7)).toBe("build");
    expect(stageOf(lines, 16)).toBe("scan");
    expect(stageOf(lines, 2)).toBe("");
  });

  it("reports malformed YAML", () => {
    expect(() => open("stages: [\n")).toThrow();
  });
});
