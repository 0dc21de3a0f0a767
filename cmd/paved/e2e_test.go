package main

// End-to-end tests of the real binary: `go build` once, then real git repositories, real
// sandboxes and a real server on 127.0.0.1 that is killed with SIGKILL mid-run.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
)

var pavedBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "paved-e2e-")
	if err != nil {
		panic(err)
	}
	pavedBin = filepath.Join(dir, "paved")
	build := exec.Command("go", "build", "-o", pavedBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build paved:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// gitRepo makes a git repository with the given files committed on main.
func gitRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitIn(t, dir, "init", "--quiet", "--initial-branch=main")
	gitIn(t, dir, "add", "-A")
	gitIn(t, dir, "commit", "--quiet", "-m", "init")
	return dir
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t.invalid"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

type result struct {
	code           int
	stdout, stderr string
	events         []run.Event
}

// pavedRun runs `paved run` in dir and reads the events it wrote.
func pavedRun(t *testing.T, dir string, args ...string) result {
	t.Helper()
	evFile := filepath.Join(t.TempDir(), "events.jsonl")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pavedBin, append([]string{"run", "--events", evFile}, args...)...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(evFile); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if line == "" {
				continue
			}
			var e run.Event
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("events line %q: %v", line, err)
			}
			res.events = append(res.events, e)
		}
	}
	return res
}

func eventTime(t *testing.T, evs []run.Event, typ run.Type, stage string) time.Time {
	t.Helper()
	for _, e := range evs {
		if e.Type == typ && e.Stage == stage {
			return e.Time
		}
	}
	t.Fatalf("no %s event for %s", typ, stage)
	return time.Time{}
}

func TestRunDiamondParallel(t *testing.T) {
	t.Parallel()
	dir := gitRepo(t, map[string]string{".paved.yml": `
name: diamond
stages:
  a:
    steps: [echo a > a.txt]
    artifacts: [a.txt]
  b:
    needs: [a]
    steps: [sleep 1, cat a.txt]
  c:
    needs: [a]
    steps: [sleep 1]
  d:
    needs: [b, c]
    steps: [echo done]
`})
	res := pavedRun(t, dir)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	evs := res.events
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d: not gap-free", i, e.Seq)
		}
	}
	aDone := eventTime(t, evs, run.StageFinished, "a")
	bStart, cStart := eventTime(t, evs, run.StageStarted, "b"), eventTime(t, evs, run.StageStarted, "c")
	bDone, cDone := eventTime(t, evs, run.StageFinished, "b"), eventTime(t, evs, run.StageFinished, "c")
	dStart := eventTime(t, evs, run.StageStarted, "d")
	if dStart.Before(bDone) || dStart.Before(cDone) {
		t.Fatalf("d started at %v before b (%v) and c (%v) finished", dStart, bDone, cDone)
	}
	if bStart.Before(aDone) || cStart.Before(aDone) {
		t.Fatalf("b (%v) or c (%v) started before a finished (%v)", bStart, cStart, aDone)
	}
	// b and c ran side by side: their 1 s sleeps overlap almost wholly (run one after the
	// other they would not overlap at all). Measured on overlap, not on wall time, so a
	// loaded machine that starts stages late cannot fail it; the gap is logged.
	firstDone, lastStart := bDone, cStart
	if cDone.Before(bDone) {
		firstDone = cDone
	}
	if bStart.After(cStart) {
		lastStart = bStart
	}
	overlap := firstDone.Sub(lastStart)
	if overlap < 800*time.Millisecond {
		t.Fatalf("b (%v-%v) and c (%v-%v) overlapped %v; want about 1s (in parallel)", bStart, bDone, cStart, cDone, overlap)
	}
	t.Logf("d started %v after a finished (b and c: 1 s each, in parallel)", dStart.Sub(aDone))
	if !strings.Contains(res.stdout, "[b] a") || !strings.Contains(res.stdout, "[d] done") {
		t.Fatalf("logs not prefixed by stage, or the artifact of a did not reach b:\n%s", res.stdout)
	}
}

func TestRunFailureSkipsOnlyDependents(t *testing.T) {
	t.Parallel()
	dir := gitRepo(t, map[string]string{".paved.yml": `
stages:
  bad: {steps: ["echo failing; exit 3"]}
  after-bad: {needs: [bad], steps: [echo never]}
  good: {steps: [echo fine]}
  after-good: {needs: [good], steps: [echo also fine]}
`})
	res := pavedRun(t, dir)
	if res.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", res.code, res.stderr)
	}
	status := map[string]string{}
	for _, e := range res.events {
		if e.Type == run.StageFinished {
			status[e.Stage] = e.Status
		}
	}
	want := map[string]string{"bad": "failed", "after-bad": "skipped", "good": "succeeded", "after-good": "succeeded"}
	for s, w := range want {
		if status[s] != w {
			t.Errorf("%s: %s, want %s", s, status[s], w)
		}
	}
	if strings.Contains(res.stdout, "never") {
		t.Error("a dependent of the failed stage ran")
	}
}

func TestValidateReportsCycleAndUnknownNeed(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(file, []byte(`stages:
  a:
    needs: [c]
    steps: [true]
  b:
    needs: [a]
    steps: [true]
  c:
    needs: [b, nope]
    steps: [true]
`), 0o644)
	cmd := exec.Command(pavedBin, "validate", file)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want 2\n%s", err, out)
	}
	text := string(out)
	if !regexp.MustCompile(`bad\.yml:\d+:\d+: .*cycle.*a -> c -> b -> a|bad\.yml:\d+:\d+: .*cycle.*a -> b -> c -> a`).MatchString(text) {
		t.Errorf("no cycle naming its stages with file:line:\n%s", text)
	}
	if !regexp.MustCompile(`bad\.yml:9:\d+: .*"nope"`).MatchString(text) {
		t.Errorf("unknown need not reported at line 9:\n%s", text)
	}
	ok := filepath.Join(t.TempDir(), "ok.yml")
	os.WriteFile(ok, []byte("stages:\n  a: {steps: [true]}\n"), 0o644)
	if out, err := exec.Command(pavedBin, "validate", ok).CombinedOutput(); err != nil {
		t.Fatalf("valid file: %v\n%s", err, out)
	}
}

// A step cannot read the invoking user's home nor leave files in the host's /tmp.
func TestRunSandboxHidesHomeAndTmp(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bubblewrap not installed: make test installs it as root")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("paved-e2e-%d", time.Now().UnixNano())
	secret := filepath.Join(home, marker)
	if err := os.WriteFile(secret, []byte("private"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(secret) })
	leak := filepath.Join(os.TempDir(), marker+"-leak")
	t.Cleanup(func() { os.Remove(leak) })
	dir := gitRepo(t, map[string]string{".paved.yml": fmt.Sprintf(`
stages:
  read-home:
    steps: ["cat %s"]
  write-tmp:
    steps: ["echo x > %s && cat %s"]
`, secret, leak, leak)})
	res := pavedRun(t, dir, "--sandbox", "bubblewrap")
	status := map[string]string{}
	for _, e := range res.events {
		if e.Type == run.StageFinished {
			status[e.Stage] = e.Status
		}
	}
	if status["read-home"] != "failed" || strings.Contains(res.stdout, "private") {
		t.Errorf("a step read %s (status %s):\n%s", secret, status["read-home"], res.stdout)
	}
	if status["write-tmp"] != "succeeded" {
		t.Errorf("write-tmp %s: the sandbox /tmp should be writable\n%s", status["write-tmp"], res.stdout)
	}
	if _, err := os.Stat(leak); err == nil {
		t.Errorf("a step left %s in the host's /tmp", leak)
	}
}

// e2eToken is the server-admin token of every test server (PAVED_BOOTSTRAP_TOKEN), and the
// PAVED_TOKEN of the CLI commands the tests run.
const e2eToken = "pvd_e2e-bootstrap-token-0123456789"

// authGet is http.Get with e2eToken.
func authGet(url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	return http.DefaultClient.Do(req)
}

// pavedServer is a `paved server` process.
type pavedServer struct {
	cmd    *exec.Cmd
	url    string
	stderr *bytes.Buffer
}

func startPavedServer(t *testing.T, data string, args ...string) *pavedServer {
	t.Helper()
	cmd := exec.Command(pavedBin, append([]string{"server", "--data", data, "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "PAVED_BOOTSTRAP_TOKEN="+e2eToken)
	pr, pw := io.Pipe()
	s := &pavedServer{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = io.MultiWriter(pw, s.stderr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		re := regexp.MustCompile(`url=(http://\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case s.url = <-found:
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start:\n%s", s.stderr)
	}
	return s
}

func (s *pavedServer) post(t *testing.T, path string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %s %v", path, resp.Status, out)
	}
	return out
}

func (s *pavedServer) get(t *testing.T, path string, out any) {
	t.Helper()
	resp, err := authGet(s.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", path, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// cli runs a `paved` command against s as the server admin (e2eToken) and returns its
// trimmed stdout; it fails the test when the command fails.
func (s *pavedServer) cli(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(pavedBin, append(args, "--server", s.url)...)
	cmd.Env = append(os.Environ(), "PAVED_TOKEN="+e2eToken)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("paved %v: %v\n%s", args, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// userToken makes user a member of team with role (the team must exist: `paved team add`),
// an approver of each of approverOf (environments of that team), and returns a token of
// theirs for that team and role: who acts in a test is the user of the token it sends.
func (s *pavedServer) userToken(t *testing.T, team, user, role string, approverOf ...string) string {
	t.Helper()
	s.cli(t, "user", "add", user, "--team", team+"="+role)
	for _, env := range approverOf {
		s.cli(t, "team", "approver", team, env, user)
	}
	return s.cli(t, "token", "create", "--user", user, "--team", team, "--role", role, "--expires", "1h")
}

// waitRunning polls until at least n runs have started and not ended: the moment to kill
// the server mid-run.
func (s *pavedServer) waitRunning(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct{ Runs []run.Summary }
		s.get(t, "/api/v1/runs?limit=50", &list)
		running := 0
		for _, r := range list.Runs {
			if r.Phase != run.Pending && !r.Phase.Done() {
				running++
			}
		}
		if running >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("runs did not start:\n%s", s.stderr)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

// kill -9 of the server while 20 runs are in flight, then a restart: every run finishes with
// the right result, its events are gap-free and say which stages were re-run.
func TestServerSurvivesKill9(t *testing.T) {
	t.Parallel()
	dir := gitRepo(t, map[string]string{".paved.yml": `
stages:
  build:
    steps: [sleep 0.3, echo built > out.txt]
    artifacts: [out.txt]
  test:
    needs: [build]
    steps: ['sleep 0.5; cat out.txt; test "$PAVED_BRANCH" != bad']
  package:
    needs: [test]
    steps: [echo packaged]
`})
	gitIn(t, dir, "branch", "bad")
	data := t.TempDir()
	s := startPavedServer(t, data, "--capacity", "6")
	s.post(t, "/api/v1/repos", map[string]string{"full_name": "e2e/kill", "clone_url": dir, "team": "e2e"})
	want := map[string]run.Phase{}
	for i := range 20 {
		ref, phase := "main", run.Succeeded
		if i%4 == 0 {
			ref, phase = "bad", run.Failed
		}
		out := s.post(t, "/api/v1/runs", map[string]string{"repo": "e2e/kill", "ref": ref})
		want[out["id"].(string)] = phase
	}
	// Kill once stages are running, as late as the first stage results appear.
	s.waitRunning(t, 3)
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()

	s2 := startPavedServer(t, data, "--capacity", "6")
	reruns := 0
	deadline := time.Now().Add(90 * time.Second)
	for id, phase := range want {
		var view struct {
			Phase run.Phase `json:"phase"`
		}
		for {
			s2.get(t, "/api/v1/runs/"+id, &view)
			if view.Phase.Done() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %s still %s after restart\n%s", id, view.Phase, s2.stderr)
			}
			time.Sleep(50 * time.Millisecond) // polling with a deadline
		}
		if view.Phase != phase {
			t.Errorf("run %s ended %s, want %s", id, view.Phase, phase)
		}
		var evs struct{ Events []run.Event }
		s2.get(t, "/api/v1/runs/"+id+"/events", &evs)
		for i, e := range evs.Events {
			if e.Seq != int64(i+1) {
				t.Fatalf("run %s: event %d has seq %d", id, i, e.Seq)
			}
			if e.Type == run.StageInterrupted {
				reruns++
				if !strings.Contains(e.Reason, "server stopped") {
					t.Errorf("interruption does not say why: %q", e.Reason)
				}
			}
		}
	}
	if reruns == 0 {
		t.Fatal("no stage was recorded as interrupted and re-run, yet the server was killed mid-run")
	}
	t.Logf("%d stages re-run after kill -9", reruns)
}

func TestDemoOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo compiles a Go service from a cold cache")
	}
	t.Parallel()
	// Three pushes: the first compiles from a cold cache, the other two canary to prod.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pavedBin, "demo", "--once", "--addr", "127.0.0.1:0", "--data", t.TempDir())
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"run SUCCEEDED", "/api/v1/runs/", "package", "succeeded",
		"deploy-prod step 1/3: stable 60%, canary 20%, baseline 20%", "ROLLBACK: analysis failed", "run ROLLED_BACK",
		"/api/v1/environments"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
