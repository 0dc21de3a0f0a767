// The UI's sections, in navigation order. Sections whose capability has not landed yet keep
// their place in the navigation and the router and say what they will show (issue #10).

export interface Section {
  path: string;
  title: string;
  /** ready: the section has its real view; otherwise it names what it waits for. */
  ready: boolean;
  summary: string;
  waitsFor?: string;
}

export const sections: Section[] = [
  { path: "/runs", title: "Runs", ready: true, summary: "Every run, live: stages, logs and artifacts." },
  {
    path: "/approvals",
    title: "Approvals",
    ready: true,
    summary:
      "An inbox of approvals waiting on you, each with its whole context: the diff summary, gate results, the environment it affects, the rollback plan and recent deployments.",
    waitsFor: "approvals (promotion policies)",
  },
  {
    path: "/promotion",
    title: "Promotion",
    ready: true,
    summary:
      "The promotion board: freight by environment, which freight is where and whether it is verified, promoted with one click where policy allows.",
    waitsFor: "freight and environments",
  },
  {
    path: "/deployments",
    title: "Deployments",
    ready: true,
    summary:
      "Each environment's deployment history, the live canary (weights, analysis values against thresholds) and one-click rollback to any recorded deployment.",
    waitsFor: "deployments",
  },
  {
    path: "/insights",
    title: "Insights",
    ready: true,
    summary:
      "P50/P95/P99 durations, queue wait, failure causes, DORA keys, the flakiest tests and cost per team, charted.",
    waitsFor: "insights analytics",
  },
  {
    path: "/builder",
    title: "Builder",
    ready: true,
    summary:
      "A visual pipeline builder: stages on a canvas, needs as edges, steps and gates set inline, validation errors shown as you go, compiling to the same .paved.yml.",
    waitsFor: "the builder",
  },
];
