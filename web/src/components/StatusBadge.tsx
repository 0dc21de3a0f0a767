import type { StageStatus } from "../api";
import { phaseTone, stageSymbol } from "../lib/status";

export function StageBadge({ status }: { status: StageStatus }) {
  return (
    <span className={`badge s-${status}`}>
      <span aria-hidden="true">{stageSymbol[status] ?? "?"}</span> {status}
    </span>
  );
}

export function PhaseBadge({ phase }: { phase: string }) {
  const tone = phaseTone(phase);
  return (
    <span className={`badge s-${tone}`} data-phase={phase}>
      <span aria-hidden="true">{stageSymbol[tone]}</span> {phase.toLowerCase().replace("_", " ")}
    </span>
  );
}
