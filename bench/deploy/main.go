// Command deploy measures push → verified deployment through the real paved binary: a
// `paved server` on a throwaway data dir, a git repository holding examples/hello-service
// with a pipeline of build → canary to prod (steps 20, 50, 100; analysis every 1 s, 2
// measurements a step: 2 s per step; a 2 s SLO window), under 200 requests/s of load. Each
// push commits a new VERSION and triggers a run; the time to its RunFinished is measured
// and set beside floors measured in the same run: the build stage's own time, and the
// analysis windows the canary must wait by design (see windows).
//
// Usage: go run ./bench/deploy -paved bin/paved [-pushes 3]
// It prints a Markdown report for bench/RESULTS.md.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const pipelineFile = `name: hello-bench
env:
  CGO_ENABLED: "0"
  GOFLAGS: -trimpath -mod=mod
stages:
  build:
    cache:
      - {key: go, key_files: [go.mod], paths: [.cache]}
    steps:
      - run: |
          export GOCACHE=$PWD/.cache/go-build GOMODCACHE=$PWD/.cache/go-mod
          go build -ldflags "-X main.version=$(cat VERSION)" -o out/hello-service .
    artifacts: [out/hello-service]
  deploy-prod:
    needs: [build]
    deploy:
      environment: prod
      strategy: canary
      replicas: 2
      readiness: {path: /healthz, period: 100ms}
      steps: [20, 50, 100]
      analysis: {interval: 1s, count: 2, min_samples: 20, failure_limit: 1, p99_slack: 50ms}
      smoke: [{path: /healthz, body: ok}]
      slo_window: 2s
`

// windows is what the canary must wait by design at rps requests a second: in each analysed
// step (20%, 50%) 2 measurements, each at least the 1 s interval and long enough for the
// canary to get the 100 requests a P99 is judged on, then the 2 s SLO window.
func windows(rps int) time.Duration {
	var w time.Duration
	for _, share := range []float64{0.20, 0.50} {
		need := time.Duration(100 / (share * float64(rps)) * float64(time.Second))
		w += 2 * max(time.Second, need)
	}
	return w + 2*time.Second
}

func main() {
	paved := flag.String("paved", "bin/paved", "the paved binary to measure")
	pushes := flag.Int("pushes", 3, "measured pushes (after one that creates the environment)")
	rps := flag.Int("rps", 200, "load on prod, requests per second")
	flag.Parse()
	bin, err := filepath.Abs(*paved)
	check(err)
	tmp, err := os.MkdirTemp("", "paved-bench-deploy-")
	check(err)
	defer os.RemoveAll(tmp)

	repo := filepath.Join(tmp, "repo")
	check(copyDir(filepath.Join("examples", "hello-service"), repo))
	check(os.WriteFile(filepath.Join(repo, ".paved.yml"), []byte(pipelineFile), 0o644))
	git(repo, "init", "--quiet", "--initial-branch=main")
	commit(repo, "1.0.0")

	addr := freeAddr()
	srv := exec.Command(bin, "server", "--data", filepath.Join(tmp, "data"), "--addr", addr)
	var serverLog bytes.Buffer
	srv.Stderr = &serverLog
	check(srv.Start())
	defer func() {
		_ = srv.Process.Signal(os.Interrupt)
		_ = srv.Wait()
	}()
	base := "http://" + addr
	waitUp(base)
	post(base+"/api/v1/repos", map[string]string{"full_name": "bench/hello", "clone_url": repo, "team": "bench", "provider": "local"}, nil)

	fmt.Printf("## %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Printf("Machine: %s/%s, %d CPUs. Command: `go run ./bench/deploy -paved %s -pushes %d -rps %d`\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), *paved, *pushes, *rps)

	// The first push creates prod (and fills the Go caches): not measured.
	first := push(base, repo, "")
	if first.phase != "SUCCEEDED" {
		fail(serverLog.String(), "first run ended %s: %s", first.phase, first.reason)
	}
	var st struct{ URL string }
	get(base+"/api/v1/environments/prod", &st)
	stop, sent, failed := load(st.URL, *rps)

	var totals, builds, deploys []time.Duration
	for i := range *pushes {
		r := push(base, repo, fmt.Sprintf("1.%d.0", i+1))
		if r.phase != "SUCCEEDED" {
			fail("", "push %d ended %s: %s", i+1, r.phase, r.reason)
		}
		totals, builds, deploys = append(totals, r.total), append(builds, r.build), append(deploys, r.deploy)
	}
	stop()
	m := func(ds []time.Duration) string { return fmt.Sprintf("%.2f s", median(ds).Seconds()) }
	windows := windows(*rps)
	fmt.Printf("| measure (median of %d pushes) | value | floor | overhead |\n|---|---|---|---|\n", *pushes)
	fmt.Printf("| push → verified canary deployment (RunFinished SUCCEEDED) | %s | %s (build stage + analysis windows) | %.2f s |\n",
		m(totals), fmt.Sprintf("%.2f s", (median(builds)+windows).Seconds()), (median(totals) - median(builds) - windows).Seconds())
	fmt.Printf("| build stage (go build, warm cache) | %s | | |\n", m(builds))
	fmt.Printf("| deploy stage: 20%% → 50%% → 100%% + SLO window | %s | %.2f s (windows by design) | %.2f s |\n",
		m(deploys), windows.Seconds(), (median(deploys) - windows).Seconds())
	fmt.Printf("| requests to prod during the pushes, failed | %d, %d | | |\n\n", sent.Load(), failed.Load())
	goal := "met"
	if median(totals) >= time.Minute {
		goal = "NOT met"
	}
	fmt.Printf("Goal < 60 s end to end: %s.\n", goal)
}

type result struct {
	phase, reason        string
	total, build, deploy time.Duration
}

// push commits version (if any), triggers a run and waits for it to finish.
func push(base, repo, version string) result {
	if version != "" {
		commit(repo, version)
	}
	t0 := time.Now()
	var created struct{ ID string }
	post(base+"/api/v1/runs", map[string]string{"repo": "bench/hello", "ref": "main"}, &created)
	var sum struct{ Phase string }
	for deadline := time.Now().Add(5 * time.Minute); ; {
		get(base+"/api/v1/runs/"+created.ID, &sum)
		if sum.Phase == "SUCCEEDED" || sum.Phase == "FAILED" || sum.Phase == "ROLLED_BACK" || sum.Phase == "CANCELLED" {
			break
		}
		if time.Now().After(deadline) {
			fail("", "run %s not finished after 5 min", created.ID)
		}
		time.Sleep(20 * time.Millisecond)
	}
	total := time.Since(t0)
	var evs struct {
		Events []struct {
			Type   string    `json:"type"`
			Stage  string    `json:"stage"`
			Time   time.Time `json:"time"`
			Reason string    `json:"reason"`
		} `json:"events"`
	}
	get(base+"/api/v1/runs/"+created.ID+"/events", &evs)
	started, took, reason := map[string]time.Time{}, map[string]time.Duration{}, ""
	for _, e := range evs.Events {
		switch e.Type {
		case "StageStarted":
			started[e.Stage] = e.Time
		case "StageFinished":
			took[e.Stage] = e.Time.Sub(started[e.Stage])
			if e.Reason != "" {
				reason += e.Stage + ": " + e.Reason + "; "
			}
		}
	}
	return result{phase: sum.Phase, reason: reason, total: total, build: took["build"], deploy: took["deploy-prod"]}
}

// load sends about rps requests a second to url until stop is called.
func load(url string, rps int) (stop func(), sent, failed *atomic.Int64) {
	sent, failed = new(atomic.Int64), new(atomic.Int64)
	done := make(chan struct{})
	var wg sync.WaitGroup
	const workers = 4
	for range workers {
		wg.Go(func() {
			t := time.NewTicker(time.Second * workers / time.Duration(rps))
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
				}
				sent.Add(1)
				resp, err := http.Get(url + "/?name=bench")
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					failed.Add(1)
				}
			}
		})
	}
	return func() { close(done); wg.Wait() }, sent, failed
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func commit(repo, version string) {
	check(os.WriteFile(filepath.Join(repo, "VERSION"), []byte(version+"\n"), 0o644))
	git(repo, "add", "-A")
	git(repo, "-c", "user.name=bench", "-c", "user.email=bench@paved.invalid", "commit", "--quiet", "--allow-empty", "-m", "version "+version)
}

func git(dir string, args ...string) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		fail("", "git %v: %v: %s", args, err, out)
	}
}

func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer ln.Close()
	return ln.Addr().String()
}

func waitUp(base string) {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
	}
	fail("", "server not up after 30 s")
}

func post(url string, body, out any) {
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	check(err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		fail("", "POST %s: %s: %s", url, resp.Status, data)
	}
	if out != nil {
		check(json.Unmarshal(data, out))
	}
}

func get(url string, out any) {
	resp, err := http.Get(url)
	check(err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		fail("", "GET %s: %s: %s", url, resp.Status, data)
	}
	check(json.Unmarshal(data, out))
}

func check(err error) {
	if err != nil {
		fail("", "%v", err)
	}
}

func fail(log, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/deploy: "+format+"\n", args...)
	if log != "" {
		fmt.Fprintln(os.Stderr, log)
	}
	os.Exit(1)
}
