// End-to-end test of the UI in real headless Chromium (Debian's chromium driven by
// playwright-core; no browser is downloaded) against a real `paved server` binary on
// 127.0.0.1 with a real git repository. Run by `make ui-e2e` (node --test); screenshots of
// every page at 1280x800 and 390x844 land in web/test-output/screenshots.
//
// Environment: PAVED_BIN (a built paved; default: go build into a temp dir), CHROMIUM
// (default /usr/bin/chromium), UI_OUT (default web/test-output).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { createHmac } from "node:crypto";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const webDir = resolve(here, "..");
const out = process.env.UI_OUT || join(webDir, "test-output");
const shots = join(out, "screenshots");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const require = createRequire(import.meta.url);

const pipeline = `name: ui-e2e
stages:
  prepare:
    steps:
      - name: fetch
        run: |
          echo "preparing the workspace"
          sleep 4
  build:
    needs: [prepare]
    steps:
      - name: compile
        run: |
          printf '\\033[32mcompiled\\033[0m ok\\n'
          for i in 1 2 3 4 5 6 7 8; do echo "build line $i"; sleep 0.4; done
  test:
    needs: [prepare]
    steps:
      - name: unit
        run: |
          echo "testing"
          sleep 1.5
          printf '<testsuite name="pkg"><testcase classname="pkg" name="TestA" time="0.2"/><testcase classname="pkg" name="TestB" time="0.1"><skipped/></testcase></testsuite>' > unit.xml
          echo "tests passed"
    reports: {junit: unit.xml}
  package:
    needs: [build, test]
    steps:
      - name: pack
        run: mkdir -p out && echo app > out/app && echo packaged
    artifacts: [out/app]
`;

// A pipeline that fails: check exits 3, so deploy is skipped and lint runs on.
const failing = `name: ui-e2e-fails
stages:
  check:
    steps:
      - name: vet
        run: |
          printf '\\033[31merror:\\033[0m something is wrong\\n'
          exit 3
  lint:
    steps:
      - run: echo fine
  deploy:
    needs: [check, lint]
    steps:
      - run: echo never
`;

let tmp, bin, server, base, browser;

// Every server starts with this server-admin token (PAVED_BOOTSTRAP_TOKEN), which the test's
// own API calls send; the browser logs in as a user with a password (docs/access.md).
const rootToken = "pvd_ui-e2e-root-token-0123456789";
const passwords = { uiadmin: "ui-admin-password", ana: "ana-password", bo: "bo-password" };
const serverLog = [];
const extraServers = [];

/** startServer starts `paved server` on a free port with args and answers its URL. */
async function startServer(args) {
  const dataDir = mkdtempSync(join(tmp, "data-"));
  const proc = spawn(bin, ["server", "--data", dataDir, "--addr", "127.0.0.1:0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PAVED_BOOTSTRAP_TOKEN: rootToken },
  });
  let timer;
  const url = await new Promise((resolveURL, reject) => {
    const onData = (b) => {
      const s = b.toString();
      serverLog.push(s);
      const m = /paved server listening"? url=(\S+)/.exec(s);
      if (m) resolveURL(m[1]);
    };
    proc.stderr.on("data", onData);
    proc.stdout.on("data", (b) => serverLog.push(b.toString()));
    proc.on("exit", (code) => reject(new Error(`paved server exited with ${code}:\n${serverLog.join("")}`)));
    timer = setTimeout(() => reject(new Error(`paved server did not listen in 20 s:\n${serverLog.join("")}`)), 20000);
  });
  clearTimeout(timer);
  // The UI's user: a server admin, who sees every team.
  await apiAt(url, "POST", "/api/v1/users", { name: "uiadmin", password: passwords.uiadmin, admin: true });
  return { proc, url };
}

/** member adds user (with a password) to team as role, making both when missing. */
async function member(url, team, user, role) {
  await apiAt(url, "POST", "/api/v1/teams", { name: team }).catch(() => {});
  await apiAt(url, "POST", "/api/v1/users", { name: user, password: passwords[user] }).catch(() => {});
  await apiAt(url, "PUT", `/api/v1/teams/${team}/members/${user}`, { role });
}

async function stopServer(proc) {
  if (proc && proc.exitCode === null) {
    const exited = new Promise((r) => proc.on("exit", r));
    proc.kill("SIGTERM");
    await exited;
  }
}

function git(dir, ...args) {
  execFileSync("git", ["-c", "user.name=e2e", "-c", "user.email=e2e@paved.invalid", ...args], { cwd: dir, stdio: "pipe" });
}

const api = (method, path, body) => apiAt(base, method, path, body);

async function apiAt(url, method, path, body, headers = {}) {
  const res = await fetch(url + path, {
    method,
    headers: { Authorization: `Bearer ${rootToken}`, ...(body ? { "Content-Type": "application/json" } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** waitFor polls fn until it returns a truthy value or the deadline passes. */
async function waitFor(what, fn, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "paved-ui-e2e-"));
  mkdirSync(shots, { recursive: true });
  bin = process.env.PAVED_BIN;
  if (!bin) {
    bin = join(tmp, "paved");
    execFileSync("go", ["build", "-o", bin, "./cmd/paved"], { cwd: resolve(webDir, ".."), stdio: "inherit" });
  }
  const repo = join(tmp, "repo");
  mkdirSync(repo);
  writeFileSync(join(repo, ".paved.yml"), pipeline);
  writeFileSync(join(repo, "README.md"), "ui e2e\n");
  git(repo, "init", "--quiet", "--initial-branch=main");
  git(repo, "add", "-A");
  git(repo, "commit", "--quiet", "-m", "init");
  const failRepo = join(tmp, "fails");
  mkdirSync(failRepo);
  writeFileSync(join(failRepo, ".paved.yml"), failing);
  git(failRepo, "init", "--quiet", "--initial-branch=main");
  git(failRepo, "add", "-A");
  git(failRepo, "commit", "--quiet", "-m", "init");

  // One running stage per team at a time: build and test, ready together, take turns, so
  // the page shows a queued stage with its reason and position.
  ({ proc: server, url: base } = await startServer(["--team-quota", "web=1"]));
  await api("POST", "/api/v1/repos", { full_name: "e2e/ui-demo", clone_url: repo, team: "web" });
  await api("POST", "/api/v1/repos", { full_name: "e2e/ui-fails", clone_url: failRepo, team: "ops" });

  // playwright gives every launch a fresh, temporary --user-data-dir of its own (it refuses
  // one in args), so no profile state leaks between runs.
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
  await Promise.all([server, ...extraServers].map(stopServer));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const viewports = {
  desktop: { width: 1280, height: 800 },
  phone: { width: 390, height: 844 },
};

// Pages of the running test, screenshotted when it fails so the failure can be seen.
let openPages = [];

/** showingFailures wraps a test body: on failure, every page it opened is screenshotted. */
const showingFailures = (fn) => async (t) => {
  openPages = [];
  try {
    await fn(t);
  } catch (err) {
    for (const [i, p] of openPages.entries()) {
      await p.screenshot({ path: join(shots, `FAILED-${t.name.replace(/\W+/g, "-")}-${i}.png`), fullPage: true }).catch(() => {});
    }
    throw err;
  } finally {
    await Promise.all(openPages.map((p) => p.context().close().catch(() => {})));
  }
};

/**
 * newPage opens a page logged in as `as` on the server at `at` (its session cookie, as the
 * login page would get it); as null, logged in as nobody.
 */
async function newPage(kind, colorScheme = "light", { as = "uiadmin", at = base } = {}) {
  const ctx = await browser.newContext({ viewport: viewports[kind], deviceScaleFactor: 1, reducedMotion: "reduce", colorScheme });
  if (as) {
    const res = await fetch(at + "/api/v1/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ user: as, password: passwords[as] }) });
    const text = await res.text();
    assert.equal(res.status, 200, `login as ${as}: ${text}`);
    const { token } = JSON.parse(text);
    await ctx.addCookies([{ name: "paved_session", value: token, url: at, httpOnly: true, sameSite: "Strict" }]);
  }
  ctx.setDefaultTimeout(10000);
  const page = await ctx.newPage();
  openPages.push(page);
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  return { page, problems };
}

const shot = (page, name, kind) => page.screenshot({ path: join(shots, `${name}-${kind}.png`), fullPage: true });

/** axe runs axe-core in the page and returns the serious and critical violations. */
async function axe(page) {
  await page.addScriptTag({ path: require.resolve("axe-core/axe.min.js") });
  const res = await page.evaluate(async () => {
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  });
  return res;
}

test("a run's DAG appears, its stages turn green live and its logs stream", showingFailures(async () => {
  const { page, problems } = await newPage("desktop");
  const { id } = await api("POST", "/api/v1/runs", { repo: "e2e/ui-demo", ref: "main" });
  // build's log, chosen before build starts: its lines can only arrive over the live stream.
  await page.goto(`${base}/runs/${id}?stage=build`);

  // The DAG: one node per stage.
  for (const s of ["prepare", "build", "test", "package"]) {
    await page.locator(`.dag [data-stage="${s}"]`).waitFor();
  }
  // React Flow draws edges once it has measured the nodes, a frame or two later.
  await page.locator(".dag .react-flow__edge").nth(3).waitFor();
  assert.equal(await page.locator(".dag .react-flow__edge").count(), 4, "one edge per need");
  // Seen before it finished, then green without a reload: the page follows live.
  const early = await page.locator('.dag [data-stage="package"]').getAttribute("data-status");
  assert.notEqual(early, "succeeded", "package was already done when the page opened; the test cannot see it change");
  await shot(page, "run-starting", "desktop");

  // Why a queued stage waits, and where it stands.
  const why = page.locator('.dag [data-status="queued"] .stage-why', { hasText: /#1 in queue · team quota: 1\/1 stages of team "web" running/ });
  await why.waitFor({ timeout: 15000 });
  await shot(page, "run-queued", "desktop");

  // build's lines arrive while its stream is live, before the stage ends.
  await page.locator(".log-line", { hasText: "build line 1" }).waitFor({ timeout: 15000 });
  const streamState = await page.locator(".log-status").getAttribute("data-state");
  assert.equal(streamState, "live", "the first line arrived while the stream was live");
  assert.equal(await page.locator(".log-line .ansi-green-fg", { hasText: "compiled" }).count(), 1, "ANSI green rendered");
  await shot(page, "run-live", "desktop");

  // A hidden tab lets go of its streams; shown again, it resumes after the last line it had.
  const setVisibility = (state) =>
    page.evaluate((st) => {
      Object.defineProperty(document, "visibilityState", { value: st, configurable: true });
      document.dispatchEvent(new Event("visibilitychange"));
    }, state);
  await setVisibility("hidden");
  await page.locator('.log-status[data-state="paused"]').waitFor();
  await new Promise((r) => setTimeout(r, 800)); // lines go on being written meanwhile
  await setVisibility("visible");

  for (const s of ["prepare", "build", "test", "package"]) {
    await page.locator(`.dag [data-stage="${s}"][data-status="succeeded"]`).waitFor({ timeout: 20000 });
  }
  await page.locator('.badge[data-phase="SUCCEEDED"]').waitFor({ timeout: 10000 });
  await page.locator(".log-line", { hasText: "build line 8" }).waitFor();
  await page.locator('.log-status[data-state="ended"]').waitFor();
  const logged = await page.locator(".log-line .lt").allInnerTexts();
  assert.deepEqual(logged, ["$ compile", "compiled ok", ...[1, 2, 3, 4, 5, 6, 7, 8].map((i) => `build line ${i}`)], "every line once, in order");
  // Durations show on finished stages.
  assert.match(await page.locator('.dag [data-stage="build"] .stage-meta').innerText(), /succeeded · [\d.]+s/);
  // Artifacts of the run.
  await page.locator("table.artifacts td", { hasText: "out/app" }).waitFor();
  await shot(page, "run-succeeded", "desktop");

  // Keyboard: a stage is a button; Enter on it shows its log.
  await page.locator('.dag [data-stage="test"]').focus();
  await page.keyboard.press("Enter");
  await page.locator("#log-title", { hasText: "test" }).waitFor();
  await page.locator(".log-line", { hasText: "tests passed" }).waitFor();
  // Its JUnit report's counts, from the stage's TestsReported event.
  await page.locator(".test-results", { hasText: "2 total, 1 passed, 0 failed, 0 errored, 1 skipped" }).waitFor();
  await shot(page, "run-test-results", "desktop");

  // Search, then a line link that survives a reload.
  await page.locator('.dag [data-stage="build"]').click();
  await page.locator(".log-line", { hasText: "build line 8" }).waitFor();
  await page.getByLabel("Search the log").fill("line 3");
  await page.locator(".log-status", { hasText: "1 match" }).waitFor();
  assert.equal(await page.locator(".log-line mark").innerText(), "line 3");
  await shot(page, "run-log-search", "desktop");
  await page.getByLabel("Search the log").fill("");
  await page.getByRole("link", { name: "Line 3", exact: true }).click();
  assert.match(page.url(), /\?stage=build#L3$/);
  await page.reload();
  await page.locator("#L3.target").waitFor();

  const violations = await axe(page);
  assert.deepEqual(violations, [], "accessibility violations on the run page");
  assert.deepEqual(problems, [], "browser errors");

  // Phone width: the same run, DAG top to bottom.
  const phone = await newPage("phone");
  await phone.page.goto(`${base}/runs/${id}?stage=build`);
  await phone.page.locator('.dag [data-stage="package"][data-status="succeeded"]').waitFor();
  await phone.page.locator(".log-line", { hasText: "build line 8" }).waitFor();
  const [top, bottom] = await Promise.all(
    ["prepare", "package"].map((s) => phone.page.locator(`.dag [data-stage="${s}"]`).boundingBox()),
  );
  assert.ok(bottom.y > top.y + 100, `on a phone the DAG runs top to bottom (prepare y=${top.y}, package y=${bottom.y})`);
  const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`);
  await shot(phone.page, "run-succeeded", "phone");
  assert.deepEqual(phone.problems, [], "browser errors on the phone");
}));

test("a failed run shows what failed, what it skipped and the failing log", showingFailures(async () => {
  const { id } = await api("POST", "/api/v1/runs", { repo: "e2e/ui-fails", ref: "main" });
  await waitFor(`run ${id} to finish`, async () => (await api("GET", `/api/v1/runs/${id}`)).finished_at);
  for (const [kind, scheme] of [["desktop", "light"], ["phone", "dark"]]) {
    const { page, problems } = await newPage(kind, scheme);
    await page.goto(`${base}/runs/${id}`);
    await page.locator('.badge[data-phase="FAILED"]').waitFor();
    await page.locator('.dag [data-stage="check"][data-status="failed"]').waitFor();
    await page.locator('.dag [data-stage="lint"][data-status="succeeded"]').waitFor();
    await page.locator('.dag [data-stage="deploy"][data-status="skipped"] .stage-why', { hasText: "check" }).waitFor();
    // The failed stage's log opens by itself, its error in red.
    await page.locator("#log-title", { hasText: "check" }).waitFor();
    await page.locator(".log-line .ansi-red-fg", { hasText: "error:" }).waitFor();
    await page.locator(".stage-facts dd", { hasText: /^3$/ }).waitFor(); // the exit code
    await shot(page, `run-failed${scheme === "dark" ? "-dark" : ""}`, kind);
    assert.deepEqual(problems, [], "browser errors");
  }
}));

test("the runs list filters by URL query and updates live", showingFailures(async () => {
  for (const kind of ["desktop", "phone"]) {
    const { page, problems } = await newPage(kind);
    await page.goto(`${base}/runs`);
    await page.locator("table.runs, .empty").first().waitFor();
    const before = await page.locator("tr[data-run]").count();
    // A run started behind the page's back shows up without a reload.
    const { id } = await api("POST", "/api/v1/runs", { repo: "e2e/ui-demo", ref: "main" });
    await page.locator(`tr[data-run="${id}"]`).waitFor({ timeout: 10000 });
    assert.equal(await page.locator("tr[data-run]").count(), before + 1);
    await shot(page, "runs", kind);

    await page.getByLabel("Repo", { exact: true }).selectOption("e2e/ui-demo");
    await page.getByLabel("Status").selectOption("FAILED");
    await page.waitForURL(/repo=e2e%2Fui-demo&phase=FAILED/);
    await page.locator(".empty", { hasText: "No run matches" }).waitFor();
    await page.getByRole("button", { name: "Clear filters" }).click();
    await page.locator(`tr[data-run="${id}"]`).waitFor();
    // The failed run of the earlier test is team ops's only run.
    await page.getByLabel("Team").selectOption("ops");
    await page.waitForURL(/team=ops/);
    await waitFor("only ops's runs", async () => (await page.locator("tr[data-run]").count()) === 1);
    assert.equal(await page.locator("tr[data-run] td", { hasText: "e2e/ui-fails" }).count(), 1);
    await page.getByRole("button", { name: "Clear filters" }).click();

    await page.goto(`${base}/runs?repo=e2e%2Fui-demo&branch=main&team=web`);
    await page.locator(`tr[data-run="${id}"]`).waitFor();
    assert.equal(await page.getByLabel("Repo", { exact: true }).inputValue(), "e2e/ui-demo");
    await page.goto(`${base}/runs?branch=release`);
    await page.locator(".empty", { hasText: "No run matches" }).waitFor();
    await shot(page, "runs-filtered", kind);

    if (kind === "desktop") {
      await page.goto(`${base}/runs`);
      await page.locator(`tr[data-run="${id}"]`).waitFor();
      assert.deepEqual(await axe(page), [], "accessibility violations on the runs list");
      // A run started from the page opens its run page.
      await page.getByRole("button", { name: "Start a run" }).click();
      await page.getByLabel("Repo to run").selectOption("e2e/ui-demo");
      await page.getByLabel("Ref").fill("main");
      await page.getByRole("button", { name: "Start", exact: true }).click();
      await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
      const started = page.url().split("/").pop();
      await page.locator('.dag [data-stage="prepare"]').waitFor();
      await api("POST", `/api/v1/runs/${started}/cancel`).catch(() => {});
      await page.locator('.badge[data-phase="CANCELLED"]').waitFor();
    }
    // End this run before the next viewport or the server's shutdown.
    await api("POST", `/api/v1/runs/${id}/cancel`).catch(() => {}); // 409 if it is over already
    await waitFor(`run ${id} to finish`, async () => (await api("GET", `/api/v1/runs/${id}`)).finished_at);
    assert.deepEqual(problems, [], "browser errors");
  }
}));

test("every section has its place in the navigation", showingFailures(async () => {
  for (const kind of ["desktop", "phone"]) {
    const { page, problems } = await newPage(kind);
    await page.goto(`${base}/`);
    await page.waitForURL(/\/runs$/);
    for (const [name, path] of [
      ["Approvals", "approvals"],
      ["Promotion", "promotion"],
      ["Deployments", "deployments"],
      ["Insights", "insights"],
      ["Builder", "builder"],
    ]) {
      await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name }).click();
      await page.waitForURL(new RegExp(`/${path}$`));
      await page.getByRole("heading", { level: 1, name }).waitFor();
      if (path === "promotion" || path === "approvals") {
        // This server runs without --environments: the routes answer 404 and the page says how
        // to enable promotion. Chromium logs each 404 as a console error; those are expected.
        await page.getByText(/not enabled on this server/).waitFor();
      }
      await shot(page, path, kind);
    }
    problems.splice(0, problems.length, ...problems.filter((p) => !/status of 404/.test(p)));
    await page.goto(`${base}/no/such/page`);
    await page.getByRole("heading", { level: 1, name: "Not found" }).waitFor();
    assert.deepEqual(problems, [], "browser errors");
  }
}));

// The deployed service: a tiny HTTP server the pipeline builds from service.sh by stamping
// VERSION into it. It is python3 rather than Go because a Go build inside the stage's sandbox
// cannot use the host's build cache and takes minutes on a busy 2-core machine; the deploy
// path (artifact, readiness, smoke, history, rollback) is the same for any binary.
const service = `#!/bin/sh
# version @VERSION@
exec python3 -c '
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok" if self.path == "/healthz" else b"hello @VERSION@\\n"
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
'
`;

const servicePipeline = `name: svc
stages:
  build:
    steps:
      - name: stamp
        run: mkdir -p out && sed "s/@VERSION@/$(cat VERSION)/g" service.sh > out/svc && chmod +x out/svc
    artifacts: [out/svc]
  deploy:
    needs: [build]
    deploy:
      environment: e2e-web
      artifact: out/svc
      readiness: {path: /healthz, period: 200ms}
      smoke: [{path: /healthz, body: ok}]
`;

// A repository with a planted fake AWS key (split so this file trips no scanner) and a
// secrets gate, which blocks on it.
const leakyPipeline = `name: leaky
stages:
  secrets: {uses: gate/secrets}
`;

async function runToEnd(repo) {
  const { id } = await api("POST", "/api/v1/runs", { repo, ref: "main" });
  const r = await waitFor(`run ${id} of ${repo} to finish`, async () => {
    const v = await api("GET", `/api/v1/runs/${id}`);
    return v.finished_at ? v : undefined;
  }, 60000);
  return r;
}

test("findings, deployments with a rollback and insights", showingFailures(async () => {
  const svc = join(tmp, "svc");
  mkdirSync(svc);
  writeFileSync(join(svc, ".paved.yml"), servicePipeline);
  writeFileSync(join(svc, "service.sh"), service);
  writeFileSync(join(svc, "VERSION"), "v1\n");
  git(svc, "init", "--quiet", "--initial-branch=main");
  git(svc, "add", "-A");
  git(svc, "commit", "--quiet", "-m", "v1");
  const leaky = join(tmp, "leaky");
  mkdirSync(join(leaky, "config"), { recursive: true });
  writeFileSync(join(leaky, ".paved.yml"), leakyPipeline);
  writeFileSync(join(leaky, "config", "prod.env"), "# production\nREGION=eu-west-1\naws_access_key_id = " + "AKIA" + "QYLPMN5HZ3TRWX7B" + "\n");
  git(leaky, "init", "--quiet", "--initial-branch=main");
  git(leaky, "add", "-A");
  git(leaky, "commit", "--quiet", "-m", "oops");
  await api("POST", "/api/v1/repos", { full_name: "e2e/svc", clone_url: svc, team: "svc" });
  await api("POST", "/api/v1/repos", { full_name: "e2e/leaky", clone_url: leaky, team: "sec" });

  const [leakRun, v1] = await Promise.all([runToEnd("e2e/leaky"), runToEnd("e2e/svc")]);
  assert.equal(v1.phase, "SUCCEEDED", `the first deployment's run: ${JSON.stringify(v1.stages.map((s) => [s.name, s.status, s.reason]))}`);
  writeFileSync(join(svc, "VERSION"), "v2\n");
  git(svc, "commit", "--quiet", "-am", "v2");
  const v2 = await runToEnd("e2e/svc");
  assert.equal(v2.phase, "SUCCEEDED");
  const history = await api("GET", "/api/v1/environments/e2e-web/deployments");
  assert.equal(history.length, 2, "two deployments recorded");
  const [d2, d1] = history;

  // Findings on the run page: the gate's decision and the redacted finding, filtered.
  for (const kind of ["desktop", "phone"]) {
    const { page, problems } = await newPage(kind);
    await page.goto(`${base}/runs/${leakRun.id}`);
    const table = page.locator("table.findings-table");
    await table.locator("td", { hasText: "config/prod.env:3" }).waitFor();
    assert.equal(await table.locator("td", { hasText: "aws-access-token" }).count(), 1);
    assert.equal(await page.locator(".findings").getByText("QYLPMN5HZ3TRWX7B").count(), 0, "the secret is redacted");
    await page.locator(".findings h3 .badge", { hasText: /block|warn|pass/ }).waitFor();
    await page.getByLabel("Minimum severity").selectOption("CRITICAL");
    await shot(page, "run-findings", kind);
    if (kind === "desktop") assert.deepEqual(await axe(page), [], "accessibility violations with findings");
    assert.deepEqual(problems, [], "browser errors");
  }

  // From the deploy stage to its deployment, then a rollback to the first one.
  {
    const { page, problems } = await newPage("desktop");
    await page.goto(`${base}/runs/${v2.id}?stage=deploy`);
    await page.locator(".deploy-link a", { hasText: "e2e-web" }).click();
    await page.waitForURL(new RegExp(`/deployments/e2e-web#d-${d2.id}$`));
    await page.locator(`tr#d-${d2.id}.selected`).waitFor();
    await page.locator(`tr#d-${d1.id}`).waitFor();
    const envState = await api("GET", "/api/v1/environments/e2e-web");
    await page.locator(".facts a", { hasText: envState.url }).waitFor();
    await page.locator(".facts dd", { hasText: d2.version }).first().waitFor();
    await shot(page, "deployments-history", "desktop");
    page.once("dialog", (d) => d.accept());
    await page.locator(`tr#d-${d1.id} button`).click();
    await page.locator(".notice", { hasText: /Rollback to .*: succeeded/ }).waitFor({ timeout: 60000 });
    await waitFor("three deployments in the table", async () => (await page.locator("table.history tbody tr").count()) === 3);
    const body = await (await fetch(envState.url + "/")).text();
    assert.match(body, /hello v1/, "the environment serves v1 again");
    await shot(page, "deployments-rolled-back", "desktop");
    assert.deepEqual(await axe(page), [], "accessibility violations on deployments");
    assert.deepEqual(problems, [], "browser errors");
  }
  {
    const { page, problems } = await newPage("phone");
    await page.goto(`${base}/deployments`);
    await page.locator("table.history tbody tr").nth(2).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the deployments page is ${overflow}px wider than a phone`);
    await shot(page, "deployments-history", "phone");
    assert.deepEqual(problems, [], "browser errors");
  }

  // Insights: the window's numbers and charts.
  for (const kind of ["desktop", "phone"]) {
    const { page, problems } = await newPage(kind);
    await page.goto(`${base}/insights?window=24h`);
    const runs = Number(await page.locator(".kpis div", { hasText: /^Runs/ }).locator("dd").innerText());
    assert.ok(runs >= 3, `insights count ${runs} runs`);
    await page.locator("table td", { hasText: /^build$/ }).first().waitFor();
    await page.locator('svg[aria-label="Failures by cause"]').waitFor();
    await page.getByLabel("Repository").fill("e2e/svc");
    await page.getByLabel("Repository").press("Enter");
    await page.waitForURL(/repo=e2e%2Fsvc/);
    await page.locator(".kpis dd", { hasText: /^2$/ }).first().waitFor();
    // DORA keys of the only environment (two deployments and the rollback's redeploy), and cost.
    await page.getByLabel("Environment").locator("option", { hasText: "e2e-web" }).waitFor({ state: "attached" });
    await page.locator('dl[aria-label="DORA keys"] dd', { hasText: /^2 \(2 ok/ }).waitFor();
    await page.locator("#cost ~ p", { hasText: /runs used .* CPU-/ }).waitFor();
    await page.locator("#flaky ~ p", { hasText: "No flaky tests." }).waitFor();
    await shot(page, "insights-numbers", kind);
    if (kind === "desktop") assert.deepEqual(await axe(page), [], "accessibility violations on insights");
    assert.deepEqual(problems, [], "browser errors");
  }
}));

// Promotion: dev, then staging, which needs one approval (the first deployment there is
// medium risk) from anyone but the change's author.
const promoEnvironments = `tick: 200ms
environments:
  - name: dev
  - name: staging
`;

const promoPipeline = servicePipeline.replace("environment: e2e-web", "environment: dev");

test("the promotion board promotes freight and an approval is given through the UI", showingFailures(async () => {
  const dir = join(tmp, "promo");
  mkdirSync(dir);
  writeFileSync(join(dir, ".paved.yml"), promoPipeline);
  writeFileSync(join(dir, "service.sh"), service);
  writeFileSync(join(dir, "VERSION"), "v1\n");
  git(dir, "init", "--quiet", "--initial-branch=main");
  git(dir, "add", "-A");
  git(dir, "commit", "--quiet", "-m", "v1");
  const cfg = join(tmp, "environments.yml");
  writeFileSync(cfg, promoEnvironments);
  const { proc, url } = await startServer(["--environments", cfg]);
  extraServers.push(proc);
  const secret = "e2e-secret";
  await apiAt(url, "POST", "/api/v1/repos", { full_name: "e2e/promo", clone_url: dir, team: "promo", provider: "local", webhook_secret: secret });
  // ana (who pushes) and bo are developers of team promo who may approve into its staging.
  for (const u of ["ana", "bo"]) {
    await member(url, "promo", u, "developer");
    await apiAt(url, "PUT", `/api/v1/teams/promo/approvers/staging/${u}`);
  }

  // A push, as a signed generic webhook naming its author: ana may not approve it.
  const push = async (n) => {
    const sha = execFileSync("git", ["rev-parse", "HEAD"], { cwd: dir }).toString().trim();
    const body = JSON.stringify({ repo: "e2e/promo", ref: "refs/heads/main", sha, kind: "push", author: { login: "ana", name: "Ana" } });
    const sig = "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
    const res = await fetch(url + "/hooks/generic", { method: "POST", headers: { "Content-Type": "application/json", "X-Paved-Signature-256": sig }, body });
    assert.ok(res.ok, `push webhook: ${res.status} ${await res.text()}`);
    return (await waitFor(`the push's freight`, async () => {
      const l = await apiAt(url, "GET", "/api/v1/freight");
      return l?.length === n ? l : undefined;
    }, 60000))[0];
  };
  const freight = await push(1);

  const { page, problems } = await newPage("desktop", "light", { as: "ana", at: url });
  await page.goto(`${url}/promotion`);
  await page.getByRole("heading", { level: 1, name: "Promotion" }).waitFor();
  await page.locator(".userbox", { hasText: "Acting as ana" }).waitFor();
  const row = page.locator(`tr[data-freight="${freight.alias}"]`);
  await row.locator('td[data-env="dev"]', { hasText: "running here" }).waitFor({ timeout: 30000 }); // the board polls; a deploy under load takes a while
  await shot(page, "promotion-board", "desktop");
  assert.deepEqual(await axe(page), [], "accessibility violations on the promotion board");
  // staging has no column yet: the API lists the environments deployed to, not the config's.
  await page.getByLabel(`Environment to promote ${freight.alias} to`).fill("staging");
  await page.getByRole("button", { name: "Promote to…" }).click();
  await page.getByRole("alert").filter({ hasText: `Promotion of ${freight.alias} to staging: pending` }).waitFor();
  await row.locator('td[data-env="staging"]', { hasText: "0/1 approvals" }).waitFor();
  await shot(page, "promotion-pending", "desktop");

  // The inbox has it; the author's approval is refused with the server's reason.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Approvals" }).click();
  await page.getByRole("link", { name: `${freight.alias} to staging` }).waitFor();
  await shot(page, "approvals-inbox", "desktop");
  // ana wrote the change: the inbox of what she may approve is empty.
  await page.getByLabel("Only those ana may approve").check();
  await page.getByText("Nothing waits for ana's approval.").waitFor();
  await page.getByLabel("Only those ana may approve").uncheck();
  await page.getByRole("link", { name: `${freight.alias} to staging` }).click();
  await page.getByRole("heading", { level: 1, name: `${freight.alias} to staging` }).waitFor();
  await page.getByRole("heading", { name: "Changed files (0)" }).waitFor();
  await page.getByText(/Rollback plan/).waitFor();
  await page.getByRole("button", { name: "Approve" }).click();
  const refusal = page.getByRole("alert").filter({ hasText: /^Refused: / });
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /author/i, "the refusal says the author cannot approve");
  await shot(page, "approval-refused", "desktop");

  // Another user's approval deploys it: ana logs out, bo logs in on the same page.
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByRole("heading", { level: 1, name: "Log in to paved" }).waitFor();
  await page.getByLabel("User").fill("bo");
  await page.getByLabel("Password").fill(passwords.bo);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { level: 1, name: `${freight.alias} to staging` }).waitFor();
  await page.getByLabel("Reason (needed to reject)").fill("looks good");
  await page.getByRole("button", { name: "Approve" }).click();
  await page.getByRole("alert").filter({ hasText: /^Approved as bo/ }).waitFor();
  await page.getByRole("status").filter({ hasText: /^succeeded$/ }).waitFor({ timeout: 30000 });
  await page.locator(".decisions li", { hasText: "bo" }).waitFor();
  await shot(page, "approval-approved", "desktop");
  assert.deepEqual(await axe(page), [], "accessibility violations on the approval page");

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Promotion" }).click();
  await row.locator('td[data-env="staging"]', { hasText: "running here" }).waitFor({ timeout: 30000 }); // the board polls; a deploy under load takes a while
  await shot(page, "promotion-promoted", "desktop");

  // A second change, promoted from its cell and rejected with a reason (required).
  writeFileSync(join(dir, "VERSION"), "v2\n");
  git(dir, "commit", "--quiet", "-am", "v2");
  const f2 = await push(2);
  const row2 = page.locator(`tr[data-freight="${f2.alias}"]`);
  await row2.locator('td[data-env="dev"]', { hasText: "running here" }).waitFor({ timeout: 30000 }); // the board polls; a deploy under load takes a while
  await page.getByRole("button", { name: `Promote ${f2.alias} to staging` }).click();
  await row2.locator('td[data-env="staging"]').getByRole("link", { name: /0\/1 approvals/ }).click();
  await page.getByRole("heading", { level: 1, name: `${f2.alias} to staging` }).waitFor();
  await page.locator(".files li", { hasText: "VERSION" }).waitFor();
  await page.getByRole("button", { name: "Reject" }).click();
  await page.getByRole("alert").filter({ hasText: "Give a reason to reject" }).waitFor();
  await page.getByLabel("Reason (needed to reject)").fill("not before the release");
  await page.getByRole("button", { name: "Reject" }).click();
  await page.getByRole("alert").filter({ hasText: /^Rejected as bo/ }).waitFor();
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Promotion" }).click();
  await row2.locator('td[data-env="staging"]', { hasText: "rejected" }).waitFor();
  await row2.locator('td[data-env="staging"]', { hasText: "not before the release" }).waitFor();
  await shot(page, "promotion-rejected", "desktop");
  // The refused approval is a 403, which Chromium logs as a console error: expected once.
  // A poll in flight when ana logged out may come back 401 (the login page then shows).
  assert.deepEqual(problems.filter((p) => !/status of (403|401)/.test(p)), [], "browser errors");
  assert.equal(problems.filter((p) => /status of 403/.test(p)).length, 1, "one refused request");

  const promotionID = (await apiAt(url, "GET", "/api/v1/promotions"))[1].id;
  for (const [path, name] of [["promotion", "promotion-board"], ["approvals", "approvals-inbox"], [`approvals/${promotionID}`, "approval-page"]]) {
    const { page: ph, problems: pp } = await newPage("phone", "light", { at: url });
    await ph.goto(`${url}/${path}`);
    await ph.getByRole("heading", { level: 1 }).waitFor();
    await ph.locator(".page > *:nth-child(2)").waitFor();
    const overflow = await ph.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `${path} is ${overflow}px wider than a phone`);
    await shot(ph, name, "phone");
    assert.deepEqual(pp, [], "browser errors");
  }
}));

if (!existsSync(chromiumPath)) {
  throw new Error(`no chromium at ${chromiumPath}: apt-get install -y chromium, or set CHROMIUM`);
}

test("the builder makes a two-stage pipeline that paved validate accepts and opens it again", showingFailures(async () => {
  const { page, problems } = await newPage("desktop");
  await page.goto(`${base}/builder`);
  await page.getByRole("heading", { level: 1, name: "Pipeline builder" }).waitFor();
  const validity = page.getByTestId("validity");
  await validity.filter({ hasText: "Valid: 1 stage" }).waitFor();

  // A new stage has no steps yet: the server's check says so, on the stage and in the panel.
  await page.getByRole("button", { name: "Add stage" }).click();
  await page.locator('.bnode.has-errors[data-stage="stage-1"]').waitFor();
  await page.getByRole("list", { name: "Problems in stage stage-1" }).getByText(/stage-1/).waitFor();
  await validity.filter({ hasText: /problem/ }).waitFor();

  const name = page.getByRole("textbox", { name: "Name", exact: true });
  await name.fill("build");
  await name.press("Enter");
  await page.getByRole("alert").filter({ hasText: "already a stage called build" }).waitFor();
  await name.fill("test");
  await name.press("Enter");
  await page.locator('.bnode[data-stage="test"]').waitFor();

  // Drag from build's right handle to test's left handle: test now needs build.
  const from = await page.locator('.react-flow__node[data-id="build"] .react-flow__handle.source').boundingBox();
  const to = await page.locator('.react-flow__node[data-id="test"] .react-flow__handle.target').boundingBox();
  await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
  await page.mouse.down();
  await page.mouse.move(to.x + to.width / 2, to.y + to.height / 2, { steps: 8 });
  await page.mouse.up();
  const yaml = page.getByTestId("yaml");
  await yaml.filter({ hasText: "needs: [build]" }).waitFor();

  // Fixing it: a step in the panel, typed with the keyboard.
  await page.getByRole("button", { name: "Add step" }).click();
  await page.getByRole("textbox", { name: "Step 1 name" }).fill("unit");
  await page.getByRole("textbox", { name: "Step 1 run" }).pressSequentially("go test ./...");
  await validity.filter({ hasText: "Valid: 2 stages" }).waitFor();
  assert.equal(await page.locator(".bnode.has-errors").count(), 0);
  assert.deepEqual(await axe(page), [], "accessibility violations on the builder");
  await shot(page, "builder-built", "desktop");

  // Export, and the real CLI agrees the file is valid.
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download" }).click()]);
  const file = join(tmp, "built.paved.yml");
  await download.saveAs(file);
  const text = readFileSync(file, "utf8");
  assert.equal(text, await yaml.textContent());
  assert.match(text, /test:\n {4}needs: \[build\]\n {4}steps:\n {6}- name: unit\n {8}run: go test \.\/\.\.\.\n/);
  execFileSync(bin, ["validate", file], { stdio: "pipe" });

  // Pasted into a fresh builder, it opens as the same graph and prints as the same file.
  for (const kind of ["desktop", "phone"]) {
    const { page: p2, problems: pr2 } = await newPage(kind);
    await p2.goto(`${base}/builder`);
    await p2.getByText("Open an existing .paved.yml").click();
    await p2.getByRole("textbox", { name: "Paste the file" }).fill(text);
    await p2.getByRole("button", { name: "Open in the builder" }).click();
    await p2.locator('.bnode[data-stage="test"]').waitFor();
    assert.equal(await p2.locator(".bnode").count(), 2);
    await p2.locator('.react-flow__edge[aria-label="test needs build"]').waitFor({ state: "attached" });
    assert.equal(await p2.getByTestId("yaml").textContent(), text);
    await p2.getByTestId("validity").filter({ hasText: "Valid: 2 stages" }).waitFor();
    await shot(p2, "builder-opened", kind);
    assert.deepEqual(pr2, [], "browser errors");
  }
  assert.deepEqual(problems, [], "browser errors");
}));

test("without a session the UI shows its login page, and the app once logged in", showingFailures(async () => {
  for (const kind of ["desktop", "phone"]) {
    const { page, problems } = await newPage(kind, "light", { as: null });
    await page.goto(`${base}/runs`);
    await page.getByRole("heading", { level: 1, name: "Log in to paved" }).waitFor();
    await shot(page, "login", kind);
    if (kind === "desktop") assert.deepEqual(await axe(page), [], "accessibility violations on the login page");
    await page.getByLabel("User").fill("uiadmin");
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("alert").filter({ hasText: "Wrong user name or password." }).waitFor();
    await page.getByLabel("Password").fill(passwords.uiadmin);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("heading", { level: 1, name: "Runs" }).waitFor();
    await page.locator(".signed-in", { hasText: "uiadmin" }).waitFor();
    // The session is an HttpOnly cookie: the page's script cannot read it.
    assert.equal(await page.evaluate(() => document.cookie), "", "the session cookie is visible to scripts");
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("heading", { level: 1, name: "Log in to paved" }).waitFor();
    // The first /api/v1/me and the wrong password are 401s, which Chromium logs.
    assert.deepEqual(problems.filter((p) => !/status of 401/.test(p)), [], "browser errors");
  }
}));
