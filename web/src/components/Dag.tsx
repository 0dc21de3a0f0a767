// The run's DAG: one node per stage, one edge per need, laid out by lib/dag and drawn with
// React Flow. It is a diagram, not an editor: nothing drags or zooms under the page's scroll,
// and each stage is a real button so the keyboard reaches it.
import { memo, useMemo } from "react";
import { Handle, Position, ReactFlow, type Edge, type Node, type NodeProps } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import type { Stage } from "../api";
import { layout } from "../lib/dag";
import { duration, since } from "../lib/format";
import { stageSymbol } from "../lib/status";

const nodeWidth = 196;
const nodeHeight = 96;

type StageNodeData = {
  stage: Stage;
  selected: boolean;
  now: number;
  vertical: boolean;
  onSelect: (name: string) => void;
};

type StageNode = Node<StageNodeData, "stage">;

/** stageTiming is how long a stage ran, has been running, or has been queued. */
export function stageTiming(s: Stage, now: number): string {
  if (s.status === "running") return duration(since(s.started_at, undefined, now));
  if (s.duration_ms != null && s.started_at) return duration(s.duration_ms);
  if (s.status === "queued") return duration(since(s.queued_at, undefined, now));
  return "";
}

function waitingText(s: Stage): string {
  if (!s.waiting) return "";
  // The position first: it is what changes, and the reason may be cut on a small node.
  const pos = s.waiting.position ? `#${s.waiting.position} in queue · ` : "";
  return pos + s.waiting.reason;
}

const StageNodeView = memo(function StageNodeView({ data }: NodeProps<StageNode>) {
  const { stage: s, selected, now, vertical, onSelect } = data;
  const timing = stageTiming(s, now);
  const wait = waitingText(s);
  const queueWait = s.queue_wait_ms != null ? `waited ${duration(s.queue_wait_ms)}` : "";
  return (
    <>
      <Handle type="target" position={vertical ? Position.Top : Position.Left} isConnectable={false} />
      <button
        type="button"
        className={`stage-node s-${s.status}${selected ? " selected" : ""}`}
        style={{ width: nodeWidth, height: nodeHeight }}
        aria-pressed={selected}
        data-stage={s.name}
        data-status={s.status}
        onClick={() => onSelect(s.name)}
        title={[wait, s.reason].filter(Boolean).join("\n") || undefined}
      >
        <span className="stage-head">
          <span className="stage-symbol" aria-hidden="true">
            {stageSymbol[s.status]}
          </span>
          <span className="stage-name">{s.name}</span>
        </span>
        <span className="stage-meta">
          {[s.status, timing, s.attempt > 1 ? `attempt ${s.attempt}` : ""].filter(Boolean).join(" · ")}
        </span>
        {wait ? (
          <span className="stage-why">{wait}</span>
        ) : s.reason ? (
          <span className="stage-why">{s.reason}</span>
        ) : queueWait && (s.queue_wait_ms ?? 0) >= 1000 ? (
          <span className="stage-why">{queueWait} in queue</span>
        ) : s.step_name && s.status === "running" ? (
          <span className="stage-why">step {s.step}: {s.step_name}</span>
        ) : null}
      </button>
      <Handle type="source" position={vertical ? Position.Bottom : Position.Right} isConnectable={false} />
    </>
  );
});

const nodeTypes = { stage: StageNodeView };

export interface DagProps {
  stages: Stage[];
  selected?: string;
  onSelect: (name: string) => void;
  now: number;
  /** vertical lays layers out top to bottom, for narrow screens. */
  vertical: boolean;
  /** width of the space the DAG gets, to size its height to the zoom that fits it. */
  width: number;
}

export function Dag({ stages, selected, onSelect, now, vertical, width }: DagProps) {
  const shape = useMemo(
    () =>
      layout(stages, {
        direction: vertical ? "TB" : "LR",
        nodeWidth,
        nodeHeight,
        gapX: vertical ? 16 : 56,
        gapY: vertical ? 40 : 20,
      }),
    // The shape depends on names and needs only; statuses change without moving nodes.
    [stages.map((s) => s.name + ":" + s.needs.join(",")).join(";"), vertical],
  );
  const byName = new Map(stages.map((s) => [s.name, s]));
  const nodes: StageNode[] = shape.nodes.map((p) => ({
    id: p.name,
    type: "stage",
    position: { x: p.x, y: p.y },
    data: { stage: byName.get(p.name)!, selected: p.name === selected, now, vertical, onSelect },
    width: nodeWidth,
    height: nodeHeight,
    // Sizes and handle places given, not measured: React Flow drops what it measured whenever
    // it gets new node objects (every update here), and edges then vanish until it measures
    // again, which a node whose size did not change may never trigger.
    measured: { width: nodeWidth, height: nodeHeight },
    handles: vertical
      ? [
          { type: "target", position: Position.Top, x: nodeWidth / 2, y: 0, width: 1, height: 1 },
          { type: "source", position: Position.Bottom, x: nodeWidth / 2, y: nodeHeight - 1, width: 1, height: 1 },
        ]
      : [
          { type: "target", position: Position.Left, x: 0, y: nodeHeight / 2, width: 1, height: 1 },
          { type: "source", position: Position.Right, x: nodeWidth - 1, y: nodeHeight / 2, width: 1, height: 1 },
        ],
    draggable: false,
    selectable: false,
    focusable: false,
  }));
  const edges: Edge[] = shape.edges.map((e) => {
    const from = byName.get(e.from)!;
    const to = byName.get(e.to)!;
    return {
      id: `${e.from}->${e.to}`,
      source: e.from,
      target: e.to,
      type: "smoothstep",
      animated: to.status === "running" || to.status === "queued",
      className: `edge-${from.status}`,
      focusable: false,
    };
  });
  const pad = 24;
  // fitView zooms out until the widest layer fits; give the canvas the height that zoom needs.
  const scale = Math.max(0.3, Math.min(1, (width - pad * 2) / Math.max(shape.width, 1)));
  const height = Math.min(shape.height * scale + pad * 2, vertical ? 1400 : 520);
  return (
    <figure className="dag" aria-label="Stages of the run and what each needs">
      <div style={{ height }} className="dag-canvas">
        <ReactFlow
          key={vertical ? "tb" : "lr"}
          nodes={nodes}
          edges={edges}
          nodeTypes={nodeTypes}
          fitView
          fitViewOptions={{ padding: 0.06, maxZoom: 1 }}
          minZoom={0.3}
          maxZoom={1}
          nodesDraggable={false}
          nodesConnectable={false}
          nodesFocusable={false}
          edgesFocusable={false}
          elementsSelectable={false}
          panOnDrag={false}
          panOnScroll={false}
          zoomOnScroll={false}
          zoomOnPinch={false}
          zoomOnDoubleClick={false}
          preventScrolling={false}
        />
      </div>
      <figcaption className="visually-hidden">
        {stages.map((s) => `${s.name}: ${s.status}${s.needs.length ? `, needs ${s.needs.join(", ")}` : ""}`).join("; ")}
      </figcaption>
    </figure>
  );
}
