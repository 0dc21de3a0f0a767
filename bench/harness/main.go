// Command harness measures the real paved binary against floors measured in the same run:
//
//   - per-step overhead: (T(51 steps) - T(1 step)) / 50 of `paved run`, against the cost of
//     spawning `sh -c true` from Go (the floor: a step cannot cost less than its process);
//   - the fixed cost of a 1-step `paved run`, against starting the binary at all
//     (`paved validate` of a one-stage file);
//   - 200 concurrent runs of an 8-stage no-op DAG through `paved server`: throughput, time
//     from trigger to first step started (p50/p99), and the server's peak RSS.
//
// Usage: go run ./bench/harness -paved bin/paved [-runs 200] [-reps 15]
// It prints a Markdown report for bench/RESULTS.md.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	paved := flag.String("paved", "bin/paved", "the paved binary to measure")
	runs := flag.Int("runs", 200, "concurrent runs through the server")
	reps := flag.Int("reps", 15, "repetitions of each timed command (median reported)")
	sandbox := flag.String("sandbox", "auto", "sandbox for paved run and server")
	capacity := flag.Int("capacity", 8, "server stage capacity for the concurrent-runs test")
	flag.Parse()
	bin, err := filepath.Abs(*paved)
	check(err)
	tmp, err := os.MkdirTemp("", "paved-bench-")
	check(err)
	defer os.RemoveAll(tmp)

	fmt.Printf("## %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Printf("Machine: %s/%s, %d CPUs, %s. Sandbox: %s. Command: `go run ./bench/harness -paved %s -runs %d -reps %d -sandbox %s -capacity %d`\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel(), *sandbox, *paved, *runs, *reps, *sandbox, *capacity)

	floor := median(timeN(*reps*10, func() { check(exec.Command("sh", "-c", "true").Run()) }))
	one := repo(tmp, "one", 1)
	many := repo(tmp, "many", 51)
	runOnce := func(dir string) func() {
		return func() {
			cmd := exec.Command(bin, "run", "--sandbox", *sandbox)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				fail("paved run in %s: %v\n%s", dir, err, out)
			}
		}
	}
	runOnce(one)() // warm the page cache
	runOnce(many)()
	t1 := median(timeN(*reps, runOnce(one)))
	t51 := median(timeN(*reps, runOnce(many)))
	start := median(timeN(*reps, func() {
		check(exec.Command(bin, "validate", filepath.Join(one, ".paved.yml")).Run())
	}))
	perStep := (t51 - t1) / 50

	fmt.Println("| measure | paved | floor | ratio |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| per-step overhead, (T(51) - T(1)) / 50 | %s | %s (`sh -c true` spawned from Go) | %.2f× |\n", ms(perStep), ms(floor), float64(perStep)/float64(floor))
	fmt.Printf("| 1-step `paved run`, whole command | %s | %s (`paved validate`: binary start) | %.2f× |\n", ms(t1), ms(start), float64(t1)/float64(start))
	fmt.Printf("| 51-step `paved run` | %s | | |\n\n", ms(t51))

	serverBench(bin, tmp, *runs, *sandbox, *capacity)
}

// repo makes a git repository whose pipeline is one stage of n `true` steps.
func repo(tmp, name string, n int) string {
	dir := filepath.Join(tmp, name)
	check(os.MkdirAll(dir, 0o755))
	var b strings.Builder
	b.WriteString("stages:\n  s:\n    steps:\n")
	for range n {
		b.WriteString("      - \"true\"\n")
	}
	check(os.WriteFile(filepath.Join(dir, ".paved.yml"), []byte(b.String()), 0o644))
	git(dir, "init", "--quiet", "--initial-branch=main")
	git(dir, "add", "-A")
	git(dir, "-c", "user.name=b", "-c", "user.email=b@b.invalid", "commit", "--quiet", "-m", "bench")
	return dir
}

func serverBench(bin, tmp string, runs int, sandbox string, capacity int) {
	dir := filepath.Join(tmp, "dag")
	check(os.MkdirAll(dir, 0o755))
	check(os.WriteFile(filepath.Join(dir, ".paved.yml"), []byte(`stages:
  a: {steps: ["true"]}
  b: {needs: [a], steps: ["true"]}
  c: {needs: [a], steps: ["true"]}
  d: {needs: [a], steps: ["true"]}
  e: {needs: [b, c], steps: ["true"]}
  f: {needs: [c, d], steps: ["true"]}
  g: {needs: [e, f], steps: ["true"]}
  h: {needs: [g], steps: ["true"]}
`), 0o644))
	git(dir, "init", "--quiet", "--initial-branch=main")
	git(dir, "add", "-A")
	git(dir, "-c", "user.name=b", "-c", "user.email=b@b.invalid", "commit", "--quiet", "-m", "bench")

	cmd := exec.Command(bin, "server", "--data", filepath.Join(tmp, "data"), "--addr", "127.0.0.1:0",
		"--sandbox", sandbox, "--capacity", fmt.Sprint(capacity))
	stderr, err := cmd.StderrPipe()
	check(err)
	check(cmd.Start())
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	url := ""
	sc := bufio.NewScanner(stderr)
	re := regexp.MustCompile(`url=(http://\S+)`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
			break
		}
	}
	go io.Copy(io.Discard, stderr)
	if url == "" {
		fail("server did not start")
	}
	post(url+"/api/v1/repos", map[string]string{"full_name": "bench/dag", "clone_url": dir, "team": "bench"})

	type created struct {
		id   string
		sent time.Time
	}
	all := make([]created, runs)
	var wg sync.WaitGroup
	begin := time.Now()
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent := time.Now()
			out := post(url+"/api/v1/runs", map[string]string{"repo": "bench/dag", "ref": "main"})
			all[i] = created{out["id"].(string), sent}
		}()
	}
	wg.Wait()
	var firstStep []time.Duration
	var last time.Time
	deadline := time.Now().Add(10 * time.Minute)
	for _, c := range all {
		for {
			var evs struct {
				Events []struct {
					Type   string    `json:"type"`
					Time   time.Time `json:"time"`
					Status string    `json:"status"`
				} `json:"events"`
			}
			get(url+"/api/v1/runs/"+c.id+"/events", &evs)
			n := len(evs.Events)
			if n > 0 && evs.Events[n-1].Type == "RunFinished" {
				if evs.Events[n-1].Status != "SUCCEEDED" {
					fail("run %s ended %s", c.id, evs.Events[n-1].Status)
				}
				for _, e := range evs.Events {
					if e.Type == "StepStarted" {
						firstStep = append(firstStep, e.Time.Sub(c.sent))
						break
					}
				}
				if t := evs.Events[n-1].Time; t.After(last) {
					last = t
				}
				break
			}
			if time.Now().After(deadline) {
				fail("run %s did not finish", c.id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wall := last.Sub(begin)
	slices.Sort(firstStep)
	floor := stageFloor(dir, tmp, runs*8, capacity)
	fmt.Printf("%d concurrent runs of an 8-stage no-op DAG through `paved server` (capacity %d):\n\n", runs, capacity)
	fmt.Println("| measure | value |")
	fmt.Println("|---|---|")
	fmt.Printf("| wall time, first trigger to last run finished | %s |\n", ms(wall))
	fmt.Printf("| throughput | %.1f runs/s, %.1f stages/s |\n", float64(runs)/wall.Seconds(), float64(runs*8)/wall.Seconds())
	fmt.Printf("| floor: the same %d stages as bare `git clone --shared` + checkout + `bwrap ... sh -c true`, %d at a time | %.1f stages/s (paved reaches %.0f%%) |\n",
		runs*8, capacity, floor, 100*float64(runs*8)/wall.Seconds()/floor)
	fmt.Printf("| trigger → first step started, p50 | %s |\n", ms(pct(firstStep, 50)))
	fmt.Printf("| trigger → first step started, p99 | %s |\n", ms(pct(firstStep, 99)))
	fmt.Printf("| server peak RSS (VmHWM) | %s |\n\n", peakRSS(cmd.Process.Pid))
}

// stageFloor is the least an isolated stage can cost here: a shared clone and checkout of
// the repository and a bubblewrap sandbox running `sh -c true`, n of them, par at a time,
// with nothing recorded. It returns stages per second.
func stageFloor(repo, tmp string, n, par int) float64 {
	jobs := make(chan int)
	var wg sync.WaitGroup
	begin := time.Now()
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				ws := filepath.Join(tmp, "floor", fmt.Sprint(i))
				git("", "clone", "--quiet", "--no-checkout", "--shared", "--template=", repo, ws)
				git(ws, "checkout", "--quiet", "--detach", "HEAD")
				cmd := exec.Command("bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
					"--bind", ws, ws, "--chdir", ws, "--unshare-all", "--share-net", "--die-with-parent", "--cap-drop", "ALL",
					"sh", "-c", "true")
				if out, err := cmd.CombinedOutput(); err != nil {
					fail("floor: bwrap: %v\n%s", err, out)
				}
				os.RemoveAll(ws)
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return float64(n) / time.Since(begin).Seconds()
}

func post(url string, body any) map[string]any {
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	check(err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode/100 != 2 {
		fail("POST %s: %s %v", url, resp.Status, out)
	}
	return out
}

func get(url string, out any) {
	resp, err := http.Get(url)
	check(err)
	defer resp.Body.Close()
	check(json.NewDecoder(resp.Body).Decode(out))
}

func timeN(n int, f func()) []time.Duration {
	d := make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		f()
		d[i] = time.Since(start)
	}
	return d
}

func median(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func peakRSS(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

func git(dir string, args ...string) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		fail("git %v: %v\n%s", args, err, out)
	}
}

func check(err error) {
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "harness: "+format+"\n", args...)
	os.Exit(1)
}
