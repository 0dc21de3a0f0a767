// Lays out a run's stages as a layered DAG: a stage sits one layer after the deepest of its
// needs, so edges always point forward. Pipelines have tens of stages, not thousands: the
// simple longest-path layering with barycentre ordering reads well and needs no layout library.

export interface LayoutInput {
  name: string;
  needs: string[];
}

export interface Placed {
  name: string;
  layer: number;
  index: number; // position inside its layer
  x: number;
  y: number;
}

export interface Layout {
  nodes: Placed[];
  edges: { from: string; to: string }[];
  width: number;
  height: number;
}

export interface LayoutOptions {
  /** "LR": layers are columns (wide screens); "TB": layers are rows (phones). */
  direction: "LR" | "TB";
  nodeWidth: number;
  nodeHeight: number;
  gapX: number;
  gapY: number;
}

export function layers(stages: LayoutInput[]): Map<string, number> {
  const byName = new Map(stages.map((s) => [s.name, s]));
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const visit = (name: string): number => {
    const known = depth.get(name);
    if (known !== undefined) return known;
    if (visiting.has(name)) return 0; // a cycle: the compiler rejects these; do not hang on one
    visiting.add(name);
    let d = 0;
    for (const n of byName.get(name)?.needs ?? []) if (byName.has(n)) d = Math.max(d, visit(n) + 1);
    visiting.delete(name);
    depth.set(name, d);
    return d;
  };
  stages.forEach((s) => visit(s.name));
  return depth;
}

export function layout(stages: LayoutInput[], o: LayoutOptions): Layout {
  const depth = layers(stages);
  const byLayer: string[][] = [];
  for (const s of stages) (byLayer[depth.get(s.name)!] ??= []).push(s.name);
  const order = new Map<string, number>();
  byLayer.forEach((names, l) => {
    if (l > 0) {
      // Barycentre: place a stage near the average position of its needs to limit crossings.
      const needs = new Map(stages.map((s) => [s.name, s.needs]));
      const bary = (n: string) => {
        const ps = (needs.get(n) ?? []).map((x) => order.get(x)).filter((x): x is number => x !== undefined);
        return ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : 0;
      };
      names.sort((a, b) => bary(a) - bary(b));
    }
    names.forEach((n, i) => order.set(n, i));
  });
  const widest = Math.max(1, ...byLayer.map((l) => l.length));
  const nodes: Placed[] = [];
  byLayer.forEach((names, l) => {
    // Centre shorter layers against the widest one.
    const offset = (widest - names.length) / 2;
    names.forEach((name, i) => {
      const along = l;
      const across = i + offset;
      const x = o.direction === "LR" ? along * (o.nodeWidth + o.gapX) : across * (o.nodeWidth + o.gapX);
      const y = o.direction === "LR" ? across * (o.nodeHeight + o.gapY) : along * (o.nodeHeight + o.gapY);
      nodes.push({ name, layer: l, index: i, x, y });
    });
  });
  const known = new Set(stages.map((s) => s.name));
  const edges = stages.flatMap((s) => s.needs.filter((n) => known.has(n)).map((n) => ({ from: n, to: s.name })));
  const spanLayers = byLayer.length;
  const width =
    o.direction === "LR"
      ? spanLayers * o.nodeWidth + (spanLayers - 1) * o.gapX
      : widest * o.nodeWidth + (widest - 1) * o.gapX;
  const height =
    o.direction === "LR"
      ? widest * o.nodeHeight + (widest - 1) * o.gapY
      : spanLayers * o.nodeHeight + (spanLayers - 1) * o.gapY;
  return { nodes, edges, width: Math.max(width, 0), height: Math.max(height, 0) };
}
