import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { LiveView } from "./Deployments";

describe("LiveView", () => {
  it("draws each track's weight and the analysis against thresholds", () => {
    const html = renderToStaticMarkup(
      <LiveView
        inProgress
        live={{
          id: "dep-1",
          environment: "prod",
          strategy: "canary",
          version: "abc123",
          step: 2,
          steps: 3,
          phase: "progressing",
          weights: { stable: 50, canary: 50 },
          analysis: {
            step: 2,
            measurement: 1,
            outcome: "fail",
            reason: "error_rate above threshold",
            metrics: [
              { name: "error_rate", value: 0.2, threshold: 0.05, baseline: 0.01, outcome: "fail" },
              { name: "p99_latency_ms", value: 12, threshold: 60, baseline: 10, outcome: "pass" },
            ],
          },
        }}
      />,
    );
    expect(html).toContain("In progress");
    expect(html).toContain("step 2 of 3");
    expect(html).toContain('style="width:50%"');
    expect(html).toContain("20.0%");
    expect(html).toContain("5.0%");
    expect(html).toContain("12 ms");
    expect(html).toMatch(/badge bad">fail/);
    expect(html).toMatch(/badge ok">pass/);
  });
});
