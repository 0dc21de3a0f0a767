import { describe, expect, it } from "vitest";
import { atOrAbove, deploymentsByStage, metricValue, outcomeClass, scale, where } from "./deploy";

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
