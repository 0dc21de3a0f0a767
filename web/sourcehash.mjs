// The hash of the UI's sources, recorded in dist/source-hash.txt at build time. web/web_test.go
// computes the same hash in Go and fails when the committed dist/ was built from other sources,
// so a change under web/ without `make ui-build` cannot land unnoticed. Keep the two in step:
// the files are the ones listed here, sorted by slash path, each hashed as
// "path\n" + byte length + "\n" + bytes.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, existsSync } from "node:fs";
import { join } from "node:path";

export const rootFiles = ["index.html", "package.json", "package-lock.json", "sourcehash.mjs", "tsconfig.json", "vite.config.ts"];
export const sourceDirs = ["src", "public"];

// Tests do not change what is built.
const isTest = (name) => /\.test\.[cm]?[jt]sx?$/.test(name);

function walk(dir, rel, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const r = rel + "/" + name;
    if (statSync(p).isDirectory()) walk(p, r, out);
    else if (!isTest(name)) out.push(r);
  }
}

export function sourceFiles(root) {
  const out = rootFiles.filter((f) => existsSync(join(root, f)));
  for (const d of sourceDirs) if (existsSync(join(root, d))) walk(join(root, d), d, out);
  return out.sort();
}

export function sourceHash(root) {
  const h = createHash("sha256");
  for (const f of sourceFiles(root)) {
    const b = readFileSync(join(root, f));
    h.update(`${f}\n${b.length}\n`);
    h.update(b);
  }
  return h.digest("hex");
}
