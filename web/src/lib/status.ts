// How statuses read: a word and a symbol next to the colour, so no state is told by colour alone.
import type { StageStatus } from "../api";

export const stageSymbol: Record<StageStatus, string> = {
  pending: "○",
  queued: "◷",
  running: "◔",
  succeeded: "✓",
  failed: "✗",
  skipped: "↷",
  cancelled: "⊘",
};

/** phaseTone maps a run phase to the colour family of the stage statuses. */
export function phaseTone(phase: string): StageStatus {
  switch (phase) {
    case "SUCCEEDED":
      return "succeeded";
    case "FAILED":
    case "ROLLED_BACK":
      return "failed";
    case "CANCELLED":
      return "cancelled";
    case "PENDING":
      return "pending";
    default:
      return "running";
  }
}
