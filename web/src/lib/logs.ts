// Log lines as the log view keeps them: ANSI rendered to HTML once, on arrival, in order,
// because a colour set on one line may carry over to the next.
import { AnsiUp } from "ansi_up";

export interface RenderedLine {
  seq: number;
  time?: string; // when paved stored the line

  text: string; // without ANSI escapes, for search
  html: string; // escaped HTML with colour spans
}

// CSI sequences (colours, cursor moves) and OSC sequences (titles, hyperlinks).
const ansiRE = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;

export const stripAnsi = (s: string) => s.replace(ansiRE, "");

/** Renderer turns a stream of raw lines into RenderedLines; one per log stream. */
export class Renderer {
  private au = new AnsiUp();
  constructor() {
    this.au.use_classes = true; // colours from the stylesheet, readable in light and dark
    this.au.escape_html = true;
  }
  render(seq: number, raw: string, time?: string): RenderedLine {
    return { seq, time, text: stripAnsi(raw), html: this.au.ansi_to_html(raw) };
  }
}

/** matches says whether a line contains the query, ignoring case; an empty query matches all. */
export function matches(line: RenderedLine, query: string): boolean {
  return !query || line.text.toLowerCase().includes(query.toLowerCase());
}

/** highlight splits text around each case-insensitive occurrence of query. */
export function highlight(text: string, query: string): { text: string; hit: boolean }[] {
  if (!query) return [{ text, hit: false }];
  const out: { text: string; hit: boolean }[] = [];
  const lower = text.toLowerCase();
  const q = query.toLowerCase();
  let i = 0;
  for (;;) {
    const j = lower.indexOf(q, i);
    if (j < 0) break;
    if (j > i) out.push({ text: text.slice(i, j), hit: false });
    out.push({ text: text.slice(j, j + q.length), hit: true });
    i = j + q.length;
  }
  if (i < text.length) out.push({ text: text.slice(i), hit: false });
  return out;
}

/** lineFromHash reads the line number of a #L12 link. */
export function lineFromHash(hash: string): number | undefined {
  const m = /^#L(\d+)$/.exec(hash);
  return m ? Number(m[1]) : undefined;
}
