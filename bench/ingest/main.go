// Command ingest measures webhook ingestion of a real `paved server` over 127.0.0.1:
// signed GitHub push deliveries (a share of them duplicates) from concurrent senders, the
// deliveries per second acknowledged and the p50/p99 acknowledgement latency, beside a floor
// measured in the same run: the same load against an HTTP handler that only reads the body
// and answers 202. Then it sends again, kills the server with SIGKILL mid-burst, restarts
// it on the same data dir and checks that every acknowledged trigger is there (zero lost)
// and that the triggers meant to start runs started exactly one each (zero duplicate runs).
//
//	go build -o bin/paved ./cmd/paved && go run ./bench/ingest -paved bin/paved
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/paved/paved/internal/trigger"
	"github.com/paved/paved/internal/trigger/inbox"
)

const secret = "bench-secret"

func main() {
	paved := flag.String("paved", "bin/paved", "the paved binary")
	n := flag.Int("n", 20000, "deliveries per phase")
	conc := flag.Int("c", 32, "concurrent senders")
	dup := flag.Float64("dup", 0.3, "share of deliveries that repeat an earlier one")
	runEvery := flag.Int("run-every", 200, "every Nth new push goes to a branch whose pipeline runs")
	maxTime := flag.Duration("max", 60*time.Second, "bound on each load phase")
	flag.Parse()

	work, err := os.MkdirTemp("", "paved-ingest-")
	check(err)
	defer os.RemoveAll(work)
	repo := filepath.Join(work, "repo")
	sha := makeRepo(repo)
	data := filepath.Join(work, "data")

	fmt.Printf("machine: %d CPUs; %d deliveries per phase, %d senders, %.0f%% duplicates\n\n", numCPU(), *n, *conc, *dup*100)

	// Floor: the same senders against a handler that reads the body and answers 202.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	floorSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"trigger_id":"x","duplicate":false}`))
	})}
	go floorSrv.Serve(ln)
	floorLoad := newLoad(*n, *dup, *runEvery, sha, 0)
	floor := floorLoad.send("http://"+ln.Addr().String(), *conc, *maxTime, nil)
	floorSrv.Close()

	srv := startServer(*paved, data)
	register(srv.url, repo)
	load1 := newLoad(*n, *dup, *runEvery, sha, 0)
	res := load1.send(srv.url, *conc, *maxTime, nil)
	report("phase 1: paved server", res, floor)
	check(load1.dupMismatch())

	// Phase 2: kill -9 after half the deliveries are acknowledged.
	load2 := newLoad(*n, *dup, *runEvery, sha, 1)
	var once sync.Once
	res2 := load2.send(srv.url, *conc, *maxTime, func(acked int64) {
		if acked >= int64(*n/2) {
			once.Do(func() { check(srv.cmd.Process.Signal(syscall.SIGKILL)) })
		}
	})
	_ = srv.cmd.Wait()
	fmt.Printf("phase 2: SIGKILL after %d acknowledgements; %d acknowledged in all, %d refused or cut off by the kill\n",
		*n/2, res2.acked, res2.failed)

	srv = startServer(*paved, data)
	defer srv.cmd.Process.Kill()
	lost := 0
	for _, l := range []*load{load1, load2} {
		for id := range l.ackedIDs() {
			code := get(srv.url+"/api/v1/triggers/"+id, nil)
			if code != 200 {
				lost++
			}
		}
	}
	// Wait until the inbox has processed everything, then count runs.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var v struct{ Triggers []json.RawMessage }
		get(srv.url+"/api/v1/triggers?pending=true&limit=1", &v)
		if len(v.Triggers) == 0 {
			break
		}
		if time.Now().After(deadline) {
			log.Fatal("the inbox did not drain within 5 minutes")
		}
		time.Sleep(200 * time.Millisecond) // polling with a deadline
	}
	want := map[string]bool{}
	for _, l := range []*load{load1, load2} {
		for id, runs := range l.ackedIDs() {
			if runs {
				want[inbox.RunID(id, ".paved.yml")] = true
			}
		}
	}
	var runs struct{ Runs []struct{ ID string } }
	get(srv.url+"/api/v1/runs?limit=100000", &runs)
	got := map[string]int{}
	for _, r := range runs.Runs {
		got[r.ID]++
	}
	missing, extra := 0, 0
	for id := range want {
		if got[id] == 0 {
			missing++
		}
	}
	for id, c := range got {
		if !want[id] || c > 1 {
			extra += c
		}
	}
	acked := len(load1.ackedIDs()) + len(load2.ackedIDs())
	fmt.Printf("after restart: %d acknowledged new triggers checked, %d lost; %d runs expected, %d found, %d missing, %d unexpected or duplicate\n",
		acked, lost, len(want), len(runs.Runs), missing, extra)
	if lost > 0 || extra > 0 || missing > 0 {
		os.Exit(1)
	}
}

// load is a planned sequence of deliveries: new pushes (each to its own branch, so none is
// a dedup-key duplicate of another) and repeats of earlier ones (same delivery id and body).
type load struct {
	bodies [][]byte
	ids    []string // delivery ids
	runs   []bool   // does the push go to a branch whose pipeline runs
	orig   []int    // for a repeat, the index of the delivery it repeats; else -1

	mu      sync.Mutex
	answers []string // trigger id per delivery
}

func newLoad(n int, dup float64, runEvery int, sha string, phase int) *load {
	l := &load{answers: make([]string, n)}
	rng := rand.New(rand.NewPCG(uint64(phase)+1, 2))
	fresh := 0
	for i := range n {
		if i > 0 && rng.Float64() < dup {
			j := rng.IntN(i)
			for l.orig[j] >= 0 {
				j = l.orig[j]
			}
			l.bodies, l.ids, l.runs, l.orig = append(l.bodies, l.bodies[j]), append(l.ids, l.ids[j]), append(l.runs, l.runs[j]), append(l.orig, j)
			continue
		}
		fresh++
		branch := fmt.Sprintf("b/%d-%d", phase, i)
		runs := fresh%runEvery == 0
		if runs {
			branch = fmt.Sprintf("run/%d-%d", phase, i)
		}
		body, _ := json.Marshal(map[string]any{
			"ref": "refs/heads/" + branch, "before": "0000000000000000000000000000000000000000", "after": sha, "created": true,
			"repository":  map[string]any{"full_name": "bench/app"},
			"pusher":      map[string]any{"name": "bench", "email": "bench@example.com"},
			"sender":      map[string]any{"login": "bench"},
			"head_commit": map[string]any{"id": sha, "message": "bench"},
			"commits":     []any{map[string]any{"id": sha, "added": []string{"main.go"}, "modified": []string{}, "removed": []string{}}},
		})
		l.bodies, l.ids, l.runs, l.orig = append(l.bodies, body), append(l.ids, fmt.Sprintf("p%d-%d", phase, i)), append(l.runs, runs), append(l.orig, -1)
	}
	return l
}

type result struct {
	acked, failed int64
	wall          time.Duration
	lat           []time.Duration
}

// send delivers in order from conc senders; a repeat waits until its original was
// answered, as a redelivery follows a delivery. onAck is called after each 202.
func (l *load) send(url string, conc int, maxTime time.Duration, onAck func(int64)) result {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}, Timeout: 10 * time.Second}
	answered := make([]chan struct{}, len(l.bodies))
	for i := range answered {
		answered[i] = make(chan struct{})
	}
	var next, acked, failed atomic.Int64
	lats := make([][]time.Duration, conc)
	stop := time.Now().Add(maxTime)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(l.bodies) || time.Now().After(stop) {
					return
				}
				if j := l.orig[i]; j >= 0 {
					<-answered[j]
				}
				req, _ := http.NewRequest("POST", url+"/hooks/github", bytes.NewReader(l.bodies[i]))
				req.Header.Set("X-GitHub-Event", "push")
				req.Header.Set("X-GitHub-Delivery", l.ids[i])
				req.Header.Set("X-Hub-Signature-256", trigger.SignHMAC("sha256=", l.bodies[i], secret))
				t0 := time.Now()
				resp, err := client.Do(req)
				d := time.Since(t0)
				ok := false
				if err == nil {
					var v struct {
						TriggerID string `json:"trigger_id"`
					}
					_ = json.NewDecoder(resp.Body).Decode(&v)
					resp.Body.Close()
					if resp.StatusCode == http.StatusAccepted {
						ok = true
						l.mu.Lock()
						l.answers[i] = v.TriggerID
						l.mu.Unlock()
					}
				}
				close(answered[i])
				if !ok {
					failed.Add(1)
					continue
				}
				lats[w] = append(lats[w], d)
				a := acked.Add(1)
				if onAck != nil {
					onAck(a)
				}
			}
		})
	}
	wg.Wait()
	r := result{acked: acked.Load(), failed: failed.Load(), wall: time.Since(start)}
	for _, ls := range lats {
		r.lat = append(r.lat, ls...)
	}
	slices.Sort(r.lat)
	return r
}

// ackedIDs maps each acknowledged new trigger to whether it should start a run.
func (l *load) ackedIDs() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]bool{}
	for i, id := range l.answers {
		if id != "" && l.orig[i] < 0 {
			out[id] = l.runs[i]
		}
	}
	return out
}

// dupMismatch checks that every repeat was answered with its original's trigger id.
func (l *load) dupMismatch() error {
	for i, j := range l.orig {
		if j >= 0 && l.answers[i] != "" && l.answers[j] != "" && l.answers[i] != l.answers[j] {
			return fmt.Errorf("delivery %d repeats %d but was answered %s, not %s", i, j, l.answers[i], l.answers[j])
		}
	}
	return nil
}

func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(float64(len(r.lat))*p))]
}

func (r result) rate() float64 { return float64(r.acked) / r.wall.Seconds() }

func report(name string, r, floor result) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
	fmt.Printf("| measure | %s | floor (read body, answer 202) |\n|---|---|---|\n", name)
	fmt.Printf("| deliveries acknowledged | %d of %d (%d failed) | %d |\n", r.acked, r.acked+r.failed, r.failed, floor.acked)
	fmt.Printf("| deliveries/s | %.0f | %.0f |\n", r.rate(), floor.rate())
	fmt.Printf("| ack latency p50 | %s | %s |\n", ms(r.pct(0.50)), ms(floor.pct(0.50)))
	fmt.Printf("| ack latency p99 | %s | %s |\n", ms(r.pct(0.99)), ms(floor.pct(0.99)))
	fmt.Printf("| ack latency max | %s | %s |\n\n", ms(r.pct(1)), ms(floor.pct(1)))
}

type server struct {
	cmd *exec.Cmd
	url string
}

func startServer(paved, data string) *server {
	cmd := exec.Command(paved, "server", "--data", data, "--addr", "127.0.0.1:0", "--sandbox", "process-group")
	cmd.Env = append(os.Environ(), "PAVED_LOG=warn")
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	check(cmd.Start())
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		re := regexp.MustCompile(`url=(http://\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case url := <-found:
		return &server{cmd: cmd, url: url}
	case <-ctx.Done():
		log.Fatal("paved server did not start within 30s")
	}
	return nil
}

func register(url, repo string) {
	b, _ := json.Marshal(map[string]string{"full_name": "bench/app", "clone_url": repo, "team": "bench", "provider": "github", "webhook_secret": secret})
	resp, err := http.Post(url+"/api/v1/repos", "application/json", bytes.NewReader(b))
	check(err)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		log.Fatalf("register repo: %s", resp.Status)
	}
}

func get(url string, out any) int {
	resp, err := http.Get(url)
	check(err)
	defer resp.Body.Close()
	if out != nil {
		check(json.NewDecoder(resp.Body).Decode(out))
	}
	return resp.StatusCode
}

func makeRepo(dir string) string {
	check(os.MkdirAll(dir, 0o755))
	check(os.WriteFile(filepath.Join(dir, ".paved.yml"), []byte("on: {push: {branches: ['run/**']}}\nstages:\n  build: {steps: ['true']}\n"), 0o644))
	check(os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o644))
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "bench"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			log.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	check(err)
	return strings.TrimSpace(string(out))
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t")
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
