import { describe, expect, it } from "vitest";
import { ago, branch, bytes, cpu, duration, gbs, money, shortId, since } from "./format";

describe("duration", () => {
  it.each([
    [undefined, ""],
    [-1, ""],
    [0, "0ms"],
    [850, "850ms"],
    [1234, "1.2s"],
    [12345, "12s"],
    [245000, "4m05s"],
    [3720000, "1h02m"],
  ])("%s ms reads %s", (ms, want) => expect(duration(ms as number | undefined)).toBe(want));
});

describe("since", () => {
  it("measures between two stamps, or to now", () => {
    expect(since("2026-01-01T00:00:00Z", "2026-01-01T00:00:02.5Z")).toBe(2500);
    expect(since("2026-01-01T00:00:00Z", undefined, Date.parse("2026-01-01T00:01:00Z"))).toBe(60000);
    expect(since(undefined)).toBeUndefined();
    expect(since("nonsense", undefined)).toBeUndefined();
  });
});

describe("ago", () => {
  const now = Date.parse("2026-06-01T12:00:00Z");
  it.each([
    ["2026-06-01T11:59:58Z", "just now"],
    ["2026-06-01T11:59:30Z", "30 s ago"],
    ["2026-06-01T11:55:00Z", "5 min ago"],
    ["2026-06-01T09:00:00Z", "3 h ago"],
    ["2026-05-01T09:00:00Z", "2026-05-01"],
  ])("%s reads %s", (ts, want) => expect(ago(ts, now)).toBe(want));
});

describe("small formats", () => {
  it("bytes", () => {
    expect(bytes(4)).toBe("4 B");
    expect(bytes(7340032)).toBe("7.0 MiB");
    expect(bytes(230391808)).toBe("220 MiB");
  });
  it("shortId keeps the random end of a UUIDv7", () => {
    expect(shortId("01a23372-7e9b-7c4e-9a3b-4f1cc4790a5a")).toBe("c4790a5a");
    expect(shortId("run-1")).toBe("run-1");
  });
  it("branch drops refs/heads/", () => {
    expect(branch("refs/heads/release/1.2")).toBe("release/1.2");
    expect(branch("refs/tags/v1")).toBe("refs/tags/v1");
    expect(branch(undefined)).toBe("");
  });
});

describe("cost", () => {
  it("renders CPU time, memory and cost", () => {
    expect(cpu(0)).toBe("0 s");
    expect(cpu(5)).toBe("5.0 CPU-s");
    expect(cpu(0.0234)).toBe("0.023 CPU-s");
    expect(cpu(90)).toBe("1.5 CPU-min");
    expect(cpu(7200)).toBe("2.0 CPU-h");
    expect(gbs(undefined)).toBe("");
    expect(gbs(1.5)).toBe("1.50 GiB·s");
    expect(money(0.1075)).toBe("0.11");
    expect(money(12.345)).toBe("12.35");
    expect(money(0)).toBe("0");
  });
});
