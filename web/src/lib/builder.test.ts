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

  it("keeps each stage's other keys with it when names are swapped or reused", () => {
    const { model, doc } = open(file);
    model.stages[0].name = "scan";
    model.stages[1].name = "build";
    let out = compile(model, doc);
    expect(out).toContain("  scan:\n    steps:\n      - name: compile");
    expect(out).toContain("  build:\n    needs: [build]\n    uses: gate/secrets\n    with: {severity: HIGH}");
    const again = open(file);
    again.model.stages = [again.model.stages[0], { name: "scan", needs: [], steps: [{ name: "", run: "x" }], uses: "", artifacts: [], timeout: "" }];
    out = compile(again.model, again.doc);
    expect(out).not.toContain("with:");
    expect(out).toContain("  scan:\n    steps:\n      - run: x\n");
  });

  it("reports malformed YAML and a stages: that is not a map", () => {
    expect(() => open("stages: [\n")).toThrow();
    expect(() => open("stages: [a, b]\n")).toThrow(/must be a map/);
  });
});
