import { describe, expect, it } from "vitest";
import { layers, layout } from "./dag";

const opts = { direction: "LR" as const, nodeWidth: 100, nodeHeight: 50, gapX: 20, gapY: 10 };

describe("layers", () => {
  it("puts a stage one layer after its deepest need", () => {
    const d = layers([
      { name: "build", needs: [] },
      { name: "lint", needs: [] },
      { name: "test", needs: ["build"] },
      { name: "package", needs: ["test", "lint"] },
    ]);
    expect(Object.fromEntries(d)).toEqual({ build: 0, lint: 0, test: 1, package: 2 });
  });

  it("ignores unknown needs and survives a cycle", () => {
    const d = layers([
      { name: "a", needs: ["b", "ghost"] },
      { name: "b", needs: ["a"] },
    ]);
    expect(d.size).toBe(2);
  });
});

describe("layout", () => {
  it("lays layers out as columns left to right", () => {
    const l = layout(
      [
        { name: "build", needs: [] },
        { name: "test", needs: ["build"] },
        { name: "lint", needs: ["build"] },
      ],
      opts,
    );
    const at = Object.fromEntries(l.nodes.map((n) => [n.name, n]));
    expect(at.build.x).toBe(0);
    expect(at.test.x).toBe(120);
    expect(at.lint.x).toBe(120);
    expect(at.test.y).not.toBe(at.lint.y);
    expect(at.build.y).toBe(30); // centred against the two-stage layer
    expect(l.edges).toEqual([
      { from: "build", to: "test" },
      { from: "build", to: "lint" },
    ]);
    expect(l.width).toBe(220);
    expect(l.height).toBe(110);
  });

  it("lays layers out as rows top to bottom on phones", () => {
    const l = layout(
      [
        { name: "a", needs: [] },
        { name: "b", needs: ["a"] },
      ],
      { ...opts, direction: "TB" },
    );
    const at = Object.fromEntries(l.nodes.map((n) => [n.name, n]));
    expect(at.a.x).toBe(at.b.x);
    expect(at.b.y).toBeGreaterThan(at.a.y);
    expect(l.width).toBe(100);
  });

  it("orders a layer by where its needs are, to limit crossings", () => {
    const l = layout(
      [
        { name: "x", needs: [] },
        { name: "y", needs: [] },
        { name: "after-y", needs: ["y"] },
        { name: "after-x", needs: ["x"] },
      ],
      opts,
    );
    const at = Object.fromEntries(l.nodes.map((n) => [n.name, n]));
    expect(at["after-x"].index).toBe(0);
    expect(at["after-y"].index).toBe(1);
  });
});
