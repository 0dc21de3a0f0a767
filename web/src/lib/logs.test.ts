import { describe, expect, it } from "vitest";
import { Renderer, highlight, lineFromHash, matches, stripAnsi } from "./logs";

describe("Renderer", () => {
  it("renders ANSI colours as classes and escapes HTML", () => {
    const r = new Renderer();
    const l = r.render(2, "\x1b[32mok\x1b[0m <b>&");
    expect(l.text).toBe("ok <b>&");
    expect(l.html).toBe('<span class="ansi-green-fg">ok</span> &lt;b&gt;&amp;');
  });

  it("carries a colour left open onto the next line", () => {
    const r = new Renderer();
    r.render(1, "\x1b[31mred starts");
    expect(r.render(2, "still red").html).toContain("ansi-red-fg");
  });
});

describe("search", () => {
  it("strips escapes, matches without case and marks every hit", () => {
    expect(stripAnsi("\x1b[1;33mWARN\x1b[0m \x1b]8;;http://x\x07link\x1b]8;;\x07")).toBe("WARN link");
    const line = { seq: 1, text: "Build line 3 of line 3", html: "" };
    expect(matches(line, "LINE 3")).toBe(true);
    expect(matches(line, "")).toBe(true);
    expect(matches(line, "nope")).toBe(false);
    expect(highlight("Build line 3 of line 3", "line 3")).toEqual([
      { text: "Build ", hit: false },
      { text: "line 3", hit: true },
      { text: " of ", hit: false },
      { text: "line 3", hit: true },
    ]);
  });

  it("reads line links", () => {
    expect(lineFromHash("#L12")).toBe(12);
    expect(lineFromHash("#L")).toBeUndefined();
    expect(lineFromHash("#top")).toBeUndefined();
  });
});
