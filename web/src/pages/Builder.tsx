// The visual pipeline builder (docs/ui.md): stages on a canvas, needs drawn as edges, the
// selected stage edited in a side panel, and the .paved.yml it compiles to shown live and
// checked by the server (POST /api/v1/pipelines/validate) as you go.
import { Handle, Position, ReactFlow, type Connection, type Edge, type Node, type NodeProps } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { useEffect, useMemo, useRef, useState } from "react";
import { compile, freeName, open, stageLines, stageOf, type BStage, type Model } from "../lib/builder";
import { layout } from "../lib/dag";
import { writeHeaders } from "../api";
import { useTitle, useWidth } from "../lib/hooks";

interface Problem {
  line: number;
  col: number;
  message: string;
}

interface Check {
  valid: boolean;
  errors: Problem[];
  stages: number;
}

const nodeWidth = 180;
const nodeHeight = 64;

type BNode = Node<{ stage: BStage; selected: boolean; errors: number; onSelect: (n: string) => void }, "bstage">;

function StageBox({ data }: NodeProps<BNode>) {
  const s = data.stage;
  const what = s.uses ? s.uses : `${s.steps.length} step${s.steps.length === 1 ? "" : "s"}`;
  return (
    <div className={`bnode${data.selected ? " selected" : ""}${data.errors ? " has-errors" : ""}`} data-stage={s.name}>
      <Handle type="target" position={Position.Left} id="in" />
      <button type="button" className="bnode-name" onClick={() => data.onSelect(s.name)}>
        {s.name}
      </button>
      <span className="bnode-meta">
        {what}
        {data.errors ? <span className="bnode-err"> · {data.errors} error{data.errors === 1 ? "" : "s"}</span> : null}
      </span>
      <Handle type="source" position={Position.Right} id="out" />
    </div>
  );
}

const nodeTypes = { bstage: StageBox };

// The gate kinds paved builds in (cmd/paved/kinds_gate.go), offered as you type `uses:`.
const gateKinds = ["gate/secrets", "gate/sbom", "gate/vulns", "gate/sarif", "gate/policy"];

const start = `name: my-pipeline
stages:
  build:
    steps:
      - name: compile
        run: make
`;

export function Builder() {
  useTitle("Builder");
  const first = useMemo(() => open(start), []);
  const [model, setModel] = useState<Model>(first.model);
  const [base, setBase] = useState(() => first.doc);
  const [selected, setSelected] = useState<string>("build");
  const [check, setCheck] = useState<Check | null>(null);
  const [paste, setPaste] = useState("");
  const [pasteError, setPasteError] = useState("");
  const [copied, setCopied] = useState(false);
  const [host, setHost] = useState<HTMLElement | null>(null);
  const width = useWidth(host);
  const narrow = width > 0 && width < 700;

  const text = useMemo(() => compile(model, base), [model, base]);
  const lines = useMemo(() => stageLines(text), [text]);

  // Validate as the file changes, a moment after the last edit; an older answer arriving late
  // must not replace a newer one.
  const seq = useRef(0);
  useEffect(() => {
    const n = ++seq.current;
    const t = setTimeout(async () => {
      try {
        const res = await fetch("/api/v1/pipelines/validate", { method: "POST", body: text, headers: { "Content-Type": "application/yaml", ...writeHeaders } });
        const body = (await res.json()) as Check & { error?: string };
        if (n !== seq.current) return;
        if (!res.ok) setCheck({ valid: false, errors: [{ line: 1, col: 1, message: body.error ?? `HTTP ${res.status}` }], stages: 0 });
        else setCheck(body);
      } catch (e) {
        if (n === seq.current) setCheck({ valid: false, errors: [{ line: 1, col: 1, message: `could not reach the server: ${e}` }], stages: 0 });
      }
    }, 250);
    return () => clearTimeout(t);
  }, [text]);

  const errorsBy = useMemo(() => {
    const m = new Map<string, Problem[]>();
    for (const e of check?.errors ?? []) {
      const k = stageOf(lines, e.line);
      m.set(k, [...(m.get(k) ?? []), e]);
    }
    return m;
  }, [check, lines]);

  const update = (name: string, f: (s: BStage) => BStage) =>
    setModel((m) => ({ ...m, stages: m.stages.map((s) => (s.name === name ? f(s) : s)) }));

  const addStage = () => {
    const name = freeName(model);
    setModel((m) => ({ ...m, stages: [...m.stages, { name, needs: [], steps: [], uses: "", artifacts: [], timeout: "" }] }));
    setSelected(name);
  };

  const removeStage = (name: string) => {
    setModel((m) => ({
      ...m,
      stages: m.stages.filter((s) => s.name !== name).map((s) => ({ ...s, needs: s.needs.filter((n) => n !== name) })),
    }));
    setSelected("");
  };

  const rename = (from: string, to: string) => {
    if (!to || from === to || model.stages.some((s) => s.name === to)) return;
    setModel((m) => ({
      ...m,
      stages: m.stages.map((s) => ({
        ...(s.name === from ? { ...s, name: to } : s),
        needs: s.needs.map((n) => (n === from ? to : n)),
      })),
    }));
    setSelected(to);
  };

  const connect = (c: Connection) => {
    if (!c.source || !c.target || c.source === c.target) return;
    update(c.target, (s) => (s.needs.includes(c.source) ? s : { ...s, needs: [...s.needs, c.source] }));
  };

  const shape = useMemo(
    () =>
      layout(
        model.stages.map((s) => ({ name: s.name, needs: s.needs.filter((n) => model.stages.some((o) => o.name === n)) })),
        { direction: "LR", nodeWidth, nodeHeight, gapX: 60, gapY: 24 },
      ),
    [model],
  );
  const byName = new Map(model.stages.map((s) => [s.name, s]));
  const nodes: BNode[] = shape.nodes.map((p) => ({
    id: p.name,
    type: "bstage",
    position: { x: p.x, y: p.y },
    data: { stage: byName.get(p.name)!, selected: p.name === selected, errors: errorsBy.get(p.name)?.length ?? 0, onSelect: setSelected },
    width: nodeWidth,
    height: nodeHeight,
    measured: { width: nodeWidth, height: nodeHeight },
    draggable: false,
  }));
  const edges: Edge[] = shape.edges.map((e) => ({
    id: `${e.from}->${e.to}`,
    source: e.from,
    target: e.to,
    sourceHandle: "out",
    targetHandle: "in",
    type: "smoothstep",
    ariaLabel: `${e.to} needs ${e.from}`,
  }));

  const openPasted = () => {
    try {
      const o = open(paste);
      setModel(o.model);
      setBase(o.doc);
      setSelected(o.model.stages[0]?.name ?? "");
      setPasteError("");
    } catch (e) {
      setPasteError(`The file could not be read: ${(e as Error).message}`);
    }
  };

  const download = () => {
    const url = URL.createObjectURL(new Blob([text], { type: "application/yaml" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = ".paved.yml";
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  const copy = async () => {
    await navigator.clipboard?.writeText(text).catch(() => {});
    setCopied(true);
    setTimeout(() => setCopied(false), 1500);
  };

  const sel = byName.get(selected);
  const fileErrors = errorsBy.get("") ?? [];

  return (
    <section className="builder" ref={setHost}>
      <h1>Pipeline builder</h1>
      <p className="muted">
        Add stages, drag from a stage's right edge to another to say the second needs the first, and edit the selected stage
        beside the canvas. The file below is what you are building.
      </p>
      <div className="builder-bar">
        <label>
          Pipeline name{" "}
          <input value={model.name} onChange={(e) => setModel((m) => ({ ...m, name: e.target.value }))} />
        </label>
        <button type="button" onClick={addStage}>
          Add stage
        </button>
        <span role="status" className={check?.valid ? "ok" : "bad"} data-testid="validity">
          {check === null ? "Checking…" : check.valid ? `Valid: ${check.stages} stage${check.stages === 1 ? "" : "s"}` : `${check.errors.length} problem${check.errors.length === 1 ? "" : "s"}`}
        </span>
      </div>
      <div className={`builder-main${narrow ? " narrow" : ""}`}>
        <div className="builder-canvas" aria-label="Stages and their needs">
          <ReactFlow
            // fitView frames the nodes once, on mount: a new set of stages or a new width mounts
            // it again so that nothing is left off screen.
            key={`${narrow}:${shape.nodes.map((n) => n.name).join(",")}`}
            nodes={nodes}
            edges={edges}
            nodeTypes={nodeTypes}
            onConnect={connect}
            onEdgesDelete={(es) =>
              es.forEach((e) => update(e.target, (s) => ({ ...s, needs: s.needs.filter((n) => n !== e.source) })))
            }
            onNodeClick={(_, n) => setSelected(n.id)}
            fitView
            fitViewOptions={{ padding: 0.15, maxZoom: 1 }}
            minZoom={0.3}
            maxZoom={1.2}
            nodesDraggable={false}
            deleteKeyCode={["Backspace", "Delete"]}
            zoomOnScroll={false}
            preventScrolling={false}
          />
        </div>
        <aside className="builder-panel" aria-label="Selected stage">
          {sel ? (
            <StagePanel
              key={sel.name}
              stage={sel}
              others={model.stages.filter((s) => s.name !== sel.name).map((s) => s.name)}
              errors={errorsBy.get(sel.name) ?? []}
              onChange={(f) => update(sel.name, f)}
              onRename={(to) => rename(sel.name, to)}
              onRemove={() => removeStage(sel.name)}
            />
          ) : (
            <p className="muted">Select a stage on the canvas to edit it.</p>
          )}
        </aside>
      </div>
      {fileErrors.length > 0 && (
        <ul className="builder-errors" aria-label="Problems in the file">
          {fileErrors.map((e, i) => (
            <li key={i}>
              {e.line}:{e.col}: {e.message}
            </li>
          ))}
        </ul>
      )}
      <div className="builder-file">
        <div className="builder-filebar">
          <h2>.paved.yml</h2>
          <button type="button" onClick={copy}>
            {copied ? "Copied" : "Copy"}
          </button>
          <button type="button" onClick={download}>
            Download
          </button>
        </div>
        <pre className="builder-yaml" data-testid="yaml">
          {text}
        </pre>
        <details className="builder-paste">
          <summary>Open an existing .paved.yml</summary>
          <label htmlFor="paste">Paste the file</label>
          <textarea id="paste" rows={8} value={paste} onChange={(e) => setPaste(e.target.value)} spellCheck={false} />
          <button type="button" onClick={openPasted} disabled={!paste.trim()}>
            Open in the builder
          </button>
          {pasteError && <p className="bad" role="alert">{pasteError}</p>}
        </details>
      </div>
    </section>
  );
}

interface PanelProps {
  stage: BStage;
  others: string[];
  errors: Problem[];
  onChange: (f: (s: BStage) => BStage) => void;
  onRename: (to: string) => void;
  onRemove: () => void;
}

function StagePanel({ stage: s, others, errors, onChange, onRename, onRemove }: PanelProps) {
  const [name, setName] = useState(s.name);
  const [nameError, setNameError] = useState("");
  const commitName = () => {
    const to = name.trim();
    if (to === s.name) return setNameError("");
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(to))
      return setNameError("A stage name starts with a letter or digit and holds only letters, digits, '.', '_' and '-'.");
    if (others.includes(to)) return setNameError(`There is already a stage called ${to}; pick another name.`);
    setNameError("");
    onRename(to);
  };
  const list = (v: string) => v.split(",").map((x) => x.trim()).filter(Boolean);
  return (
    <div className="stage-panel">
      <h2>Stage {s.name}</h2>
      {errors.length > 0 && (
        <ul className="stage-errors" aria-label={`Problems in stage ${s.name}`}>
          {errors.map((e, i) => (
            <li key={i}>
              line {e.line}: {e.message}
            </li>
          ))}
        </ul>
      )}
      <label>
        Name
        <input
          value={name}
          onChange={(e) => setName(e.target.value)}
          aria-invalid={nameError ? true : undefined}
          aria-describedby={nameError ? "stage-name-error" : undefined}
          onBlur={commitName}
          onKeyDown={(e) => e.key === "Enter" && commitName()}
        />
      </label>
      {nameError && (
        <p id="stage-name-error" className="bad" role="alert">
          {nameError}
        </p>
      )}
      <fieldset>
        <legend>Needs</legend>
        {others.length === 0 && <p className="muted">No other stages yet.</p>}
        {others.map((o) => (
          <label key={o} className="check">
            <input
              type="checkbox"
              checked={s.needs.includes(o)}
              onChange={(e) =>
                onChange((st) => ({ ...st, needs: e.target.checked ? [...st.needs, o] : st.needs.filter((n) => n !== o) }))
              }
            />{" "}
            {o}
          </label>
        ))}
      </fieldset>
      <label>
        Uses (a built-in kind, instead of steps)
        <input
          value={s.uses}
          placeholder="e.g. gate/secrets"
          list="gate-kinds"
          onChange={(e) => onChange((st) => ({ ...st, uses: e.target.value.trim() }))}
        />
      </label>
      {/* Suggestions only: the server's check says whether this build runs the kind. */}
      <datalist id="gate-kinds">
        {gateKinds.map((k) => (
          <option key={k} value={k} />
        ))}
      </datalist>
      <fieldset>
        <legend>Steps</legend>
        {s.steps.map((step, i) => (
          <div key={i} className="step-edit">
            <label>
              Step {i + 1} name
              <input
                value={step.name}
                onChange={(e) =>
                  onChange((st) => ({ ...st, steps: st.steps.map((x, j) => (j === i ? { ...x, name: e.target.value } : x)) }))
                }
              />
            </label>
            <label>
              Step {i + 1} run
              <textarea
                rows={2}
                value={step.run}
                spellCheck={false}
                onChange={(e) =>
                  onChange((st) => ({ ...st, steps: st.steps.map((x, j) => (j === i ? { ...x, run: e.target.value } : x)) }))
                }
              />
            </label>
            <button type="button" onClick={() => onChange((st) => ({ ...st, steps: st.steps.filter((_, j) => j !== i) }))}>
              Remove step {i + 1}
            </button>
          </div>
        ))}
        <button type="button" onClick={() => onChange((st) => ({ ...st, steps: [...st.steps, { name: "", run: "" }] }))}>
          Add step
        </button>
      </fieldset>
      <label>
        Artifacts (comma-separated paths)
        <input
          defaultValue={s.artifacts.join(", ")}
          onBlur={(e) => onChange((st) => ({ ...st, artifacts: list(e.target.value) }))}
        />
      </label>
      <label>
        Timeout
        <input value={s.timeout} placeholder="e.g. 10m" onChange={(e) => onChange((st) => ({ ...st, timeout: e.target.value.trim() }))} />
      </label>
      <button type="button" className="danger" onClick={onRemove}>
        Remove stage {s.name}
      </button>
    </div>
  );
}
