import { describe, expect, it } from "vitest";
import { atOrAbove, deploymentsByStage, metricValue, outcomeClass, scale, testsByStage, where } from "./deploy";

describe("deploy formatting", () => {
  it("renders metrics in their unit", () => {
    expect(metricValue("error_rate", 0.05)).toBe("5.0%");
    expect(metricValue("error_rate", 0.001)).toBe("0.10%");
    expect(metricValue("p99_latency_ms", 123.4)).toBe("123 ms");
    expect(metricValue("memory_bytes", 10 * 1048576)).toBe("10.0 MiB");
    expect(metricValue("restarts", 2)).toBe("2");
  });
  it("colours outcomes", () => {
    expect(outcomeClass("pass")).toBe("ok");
    expect(outcomeClass("rolled_back")).toBe("bad");
    expect(outcomeClass("inconclusive")).toBe("warn");
    expect(outcomeClass("in_progress")).toBe("info");
  });
  it("maps stages to their last deployment", () => {
    const m = deploymentsByStage([
      { run_id: "r", seq: 1, type: "StageStarted", time: "", stage: "deploy" },
      { run_id: "r", seq: 2, type: "DeploymentStarted", time: "", stage: "deploy", deployment: { id: "d1", environment: "prod", strategy: "canary" } },
      { run_id: "r", seq: 3, type: "DeploymentFinished", time: "", stage: "deploy", deployment: { id: "d2", environment: "prod", strategy: "canary" } },
    ]);
    expect(m.get("deploy")?.id).toBe("d2");
    expect(m.size).toBe(1);
  });
});

describe("findings", () => {
  const fs = [
    { rule: "a", severity: "CRITICAL", file: "x.env", line: 3 },
    { rule: "b", severity: "LOW", package: "left-pad", version: "1.0.0" },
    { rule: "c", severity: "medium" },
  ];
  it("filters at or above a severity", () => {
    expect(atOrAbove(fs, "").length).toBe(3);
    expect(atOrAbove(fs, "HIGH").map((f) => f.rule)).toEqual(["a"]);
    expect(atOrAbove(fs, "MEDIUM").map((f) => f.rule)).toEqual(["a", "c"]);
  });
  it("says where", () => {
    expect(where(fs[0])).toBe("x.env:3");
    expect(where(fs[1])).toBe("left-pad@1.0.0");
    expect(where(fs[2])).toBe("");
  });
});

describe("scale", () => {
  it("is a share of the largest, safe on zero", () => {
    expect(scale(5, 10)).toBe(50);
    expect(scale(5, 0)).toBe(0);
    expect(scale(20, 10)).toBe(100);
  });
});

describe("test results", () => {
  it("keeps each stage's newest report and names the failed and quarantined tests", () => {
    const t = (failed: number, cases: { id: string; status: string }[], quarantined?: string[]) => ({
      total: cases.length, passed: cases.length - failed, failed, errored: 0, skipped: 0, cases, quarantined,
    });
    const m = testsByStage([
      { run_id: "r", seq: 1, type: "TestsReported", time: "", stage: "test", attempt: 1, tests: t(1, [{ id: "a.A", status: "failed" }]) },
      { run_id: "r", seq: 2, type: "StageFinished", time: "", stage: "test" },
      {
        run_id: "r", seq: 3, type: "TestsReported", time: "", stage: "test", attempt: 2,
        tests: t(2, [{ id: "a.A", status: "passed" }, { id: "a.B", status: "failed" }, { id: "a.C", status: "errored" }], ["a.B"]),
      },
    ]);
    expect(m.size).toBe(1);
    expect(m.get("test")?.failed).toEqual(["a.C"]);
    expect(m.get("test")?.quarantined).toEqual(["a.B"]);
    expect(m.get("test")?.report.total).toBe(3);
  });
});
