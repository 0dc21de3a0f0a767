// The builder's model of a .paved.yml and its round trip through the `yaml` package. The
// builder edits only the keys it shows (name, stages, needs, steps, uses, artifacts, timeout);
// it writes them into the YAML document it was opened from, so every other key (env, with:,
// matrix, a step's other keys, comments) stays as it was.
import { Document, LineCounter, Pair, YAMLMap, YAMLSeq, isMap, isScalar, isSeq, parseDocument } from "yaml";

export interface Step {
  name: string;
  run: string;
}

export interface BStage {
  name: string;
  /** The stage's key in the document it came from, so a rename moves its other keys along. */
  orig?: string;
  needs: string[];
  steps: Step[];
  uses: string;
  artifacts: string[];
  timeout: string;
}

export interface Model {
  name: string;
  stages: BStage[];
}

export interface Opened {
  model: Model;
  doc: Document;
}

const str = (v: unknown) => (v === undefined || v === null ? "" : String(v));

/** open parses a file; it throws with the parser's message when the YAML is malformed. */
export function open(text: string): Opened {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new Error(doc.errors[0].message);
  const js = (doc.toJS() ?? {}) as Record<string, unknown>;
  if (typeof js !== "object" || Array.isArray(js)) throw new Error("the file is not a map of keys (name:, stages:)");
  if (js.stages !== undefined && js.stages !== null && (typeof js.stages !== "object" || Array.isArray(js.stages)))
    throw new Error("stages: must be a map from stage name to stage (see docs/pipeline.md)");
  const stages: BStage[] = [];
  const raw = (js.stages ?? {}) as Record<string, Record<string, unknown> | null>;
  for (const [name, s0] of Object.entries(raw)) {
    const s = s0 ?? {};
    const needs = s.needs;
    stages.push({
      name,
      orig: name,
      needs: Array.isArray(needs) ? needs.map(str) : needs ? [str(needs)] : [],
      steps: Array.isArray(s.steps)
        ? s.steps.map((st: unknown) => {
            const o = (st ?? {}) as Record<string, unknown>;
            return { name: str(o.name), run: str(o.run) };
          })
        : [],
      uses: str(s.uses),
      artifacts: Array.isArray(s.artifacts) ? s.artifacts.map(str) : [],
      timeout: str(s.timeout),
    });
  }
  return { model: { name: str(js.name), stages }, doc };
}

export function emptyDoc(): Document {
  return new Document({});
}

/** compile writes the model into a copy of base and prints it. */
export function compile(model: Model, base: Document): string {
  const doc = base.clone();
  if (!isMap(doc.contents)) doc.contents = doc.createNode({}) as never;
  if (model.name) doc.set("name", model.name);
  else doc.delete("name");
  let stages = doc.get("stages", true);
  if (!isMap(stages)) {
    stages = new YAMLMap();
    doc.set("stages", stages);
  }
  const map = stages as YAMLMap;
  // Pairs are found by the name each stage had when opened, all before any is renamed, so
  // that swapping two names, or reusing a removed stage's name, moves no keys between stages.
  const keyOf = (p: Pair) => (isScalar(p.key) ? str(p.key.value) : str(p.key));
  const byOrig = new Map(map.items.map((p) => [keyOf(p), p]));
  const kept = new Set(model.stages.filter((s) => s.orig !== undefined).map((s) => s.orig!));
  map.items = map.items.filter((p) => kept.has(keyOf(p)));
  for (const s of model.stages) {
    let pair = s.orig !== undefined ? byOrig.get(s.orig) : undefined;
    if (!pair) {
      pair = new Pair(doc.createNode(s.name), new YAMLMap());
      map.items.push(pair);
    } else if (s.orig !== s.name) {
      pair.key = doc.createNode(s.name);
    }
    if (!isMap(pair.value)) pair.value = new YAMLMap();
    const st = pair.value as YAMLMap;
    const setOrDelete = (key: string, v: unknown, empty: boolean, flow = false) => {
      if (empty) st.delete(key);
      else st.set(key, doc.createNode(v, { flow }));
    };
    setOrDelete("needs", s.needs, s.needs.length === 0, true);
    setOrDelete("uses", s.uses, !s.uses);
    if (s.steps.length === 0) st.delete("steps");
    else {
      let seq: unknown = st.get("steps", true);
      if (!isSeq(seq)) {
        seq = new YAMLSeq();
        st.set("steps", seq);
      }
      const items = (seq as YAMLSeq).items;
      items.length = Math.min(items.length, s.steps.length);
      s.steps.forEach((step, i) => {
        let m = items[i];
        if (!isMap(m)) {
          m = new YAMLMap();
          items[i] = m;
        }
        const mm = m as YAMLMap;
        if (step.name) mm.set("name", step.name);
        else mm.delete("name");
        mm.set("run", step.run);
        // name first, as people write it
        mm.items.sort((a, b) => rank(a.key) - rank(b.key));
      });
    }
    setOrDelete("artifacts", s.artifacts, s.artifacts.length === 0, true);
    setOrDelete("timeout", s.timeout, !s.timeout);
  }
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

function rank(k: unknown): number {
  const v = isScalar(k) ? str(k.value) : str(k);
  return v === "name" ? 0 : v === "run" ? 1 : 2;
}

/** stageLines answers the line of each stage's key in text (1-based), in file order. */
export function stageLines(text: string): { name: string; line: number }[] {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  const stages = doc.get("stages", true);
  if (!isMap(stages)) return [];
  return stages.items.map((p) => ({
    name: isScalar(p.key) ? str(p.key.value) : str(p.key),
    line: isScalar(p.key) && p.key.range ? lc.linePos(p.key.range[0]).line : 0,
  }));
}

/** stageOf names the stage an error at line belongs to, or "" for the file as a whole. */
export function stageOf(lines: { name: string; line: number }[], line: number): string {
  let found = "";
  for (const l of lines) if (l.line > 0 && l.line <= line) found = l.name;
  return found;
}

/** freeName answers a stage name not yet taken: stage-1, stage-2... */
export function freeName(model: Model): string {
  const taken = new Set(model.stages.map((s) => s.name));
  for (let i = 1; ; i++) if (!taken.has(`stage-${i}`)) return `stage-${i}`;
}
