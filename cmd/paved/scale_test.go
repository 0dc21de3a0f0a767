package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/postgres"
	"github.com/paved/paved/internal/store/postgres/pgtest"
)

// startPavedAgent runs `paved agent` against the servers until the test ends.
func startPavedAgent(t *testing.T, token string, servers []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(pavedBin, append([]string{"agent", "--server", strings.Join(servers, ","), "--token", token,
		"--data", t.TempDir(), "--sandbox", "process-group"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("agent %d stderr (tail):\n%s", cmd.Process.Pid, tail(stderr.String(), 3000))
		}
	})
	return cmd
}

// postJSON POSTs to the API as the server admin (e2eToken) and returns an error rather
// than failing the test, for the goroutines that create runs ((*pavedServer).post calls
// t.Fatal, which must not run outside the test's goroutine).
func postJSON(url string, body, out any) error {
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s %s", url, resp.Status, data)
	}
	return json.Unmarshal(data, out)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestScaleOutSurvivesKill9: 3 servers and 3 agents on one PostgreSQL run 300 pipelines
// while one server and one agent are killed with -9 mid-way. Every run ends in the state its
// branch calls for; no stage attempt ran beside another of the same stage (each attempt
// writes a start and an end marker); each stage's log is gap-free and holds every line its
// successful attempt printed; each event log passes the crash test's checker.
func TestScaleOutSurvivesKill9(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts 3 servers and 3 agents on PostgreSQL (about a minute)")
	}
	dsn := pgtest.ForTest(t, pgtest.Config{}).NewDatabase(t)
	marks := t.TempDir()
	// Each attempt of b marks its start and end; a killed one never writes its end, but its
	// step ends by start + 0.2 s anyway (the sleep), which bounds it.
	dir := gitRepo(t, map[string]string{".paved.yml": fmt.Sprintf(`
env: {MARKS: %q}
stages:
  a: {steps: ["true"]}
  b:
    needs: [a]
    steps:
      - 'f=$MARKS/$PAVED_RUN_ID.b.$PAVED_ATTEMPT; date +%%s%%N > $f; for i in $(seq 1 20); do echo line $i; done; sleep 0.2; date +%%s%%N >> $f'
      - 'test "$PAVED_BRANCH" != bad'
`, marks)})
	gitIn(t, dir, "branch", "bad")

	args := []string{"--database", dsn, "--executor", "agents", "--capacity", "16", "--lease", "3s"}
	var servers []*pavedServer
	var urls []string
	for range 3 {
		s := startPavedServer(t, t.TempDir(), args...)
		servers = append(servers, s)
		urls = append(urls, s.url)
	}
	s1 := servers[0]
	s1.post(t, "/api/v1/repos", map[string]string{"full_name": "e2e/scale", "clone_url": dir, "team": "e2e"})
	var agents []*exec.Cmd
	for i := range 3 {
		tok := s1.post(t, "/api/v1/agents", map[string]string{"name": fmt.Sprintf("agent-%d", i)})["token"].(string)
		agents = append(agents, startPavedAgent(t, tok, urls, "--capacity", "4"))
	}

	const runs = 300
	start := time.Now()
	want := map[string]run.Phase{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	// In parallel: each POST resolves the ref and compiles the pipeline on its server.
	for w := range 12 {
		wg.Go(func() {
			for i := w; i < runs; i += 12 {
				ref, phase := "main", run.Succeeded
				if i%5 == 0 {
					ref, phase = "bad", run.Failed
				}
				var out struct{ ID string }
				if err := postJSON(servers[i%3].url+"/api/v1/runs", map[string]string{"repo": "e2e/scale", "ref": ref}, &out); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				want[out.ID] = phase
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("created %d runs in %s", runs, time.Since(start))
	doneRuns := func() int {
		var list struct{ Runs []run.Summary }
		s1.get(t, fmt.Sprintf("/api/v1/runs?limit=%d", runs), &list)
		n := 0
		for _, r := range list.Runs {
			if r.Phase.Done() {
				n++
			}
		}
		return n
	}
	// Generous deadlines: the whole test took 82-139 s on the shared 2-core test machine at
	// load averages of 25-40, and far longer at 70.
	deadline := time.Now().Add(4 * time.Minute)
	for doneRuns() < runs/3 {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d runs done after 4 minutes\n%s", runs/3, tail(s1.stderr.String(), 4000))
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	for _, c := range []*exec.Cmd{servers[1].cmd, agents[1]} {
		c.Process.Signal(syscall.SIGKILL)
		c.Wait()
	}
	t.Logf("killed server 2 and agent 2 with %d runs done, %s after the first run", doneRuns(), time.Since(start))
	deadline = time.Now().Add(4 * time.Minute)
	for doneRuns() < runs {
		if time.Now().After(deadline) {
			t.Fatalf("runs still going 4 minutes after the kills\n%s", tail(s1.stderr.String(), 4000))
		}
		time.Sleep(100 * time.Millisecond) // polling with a deadline
	}

	pg, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	t.Logf("all runs done %s after the first", time.Since(start))
	lost, interrupted := 0, 0
	for id, phase := range want {
		var view struct{ Phase run.Phase }
		s1.get(t, "/api/v1/runs/"+id, &view)
		if view.Phase != phase {
			t.Errorf("run %s ended %s, want %s", id, view.Phase, phase)
		}
		var evs struct{ Events []run.Event }
		s1.get(t, "/api/v1/runs/"+id+"/events", &evs)
		n, err := checkStageLog(evs.Events)
		if err != nil {
			t.Errorf("run %s: %v", id, err)
		}
		interrupted += n
		for _, e := range evs.Events {
			if e.Type == run.StageInterrupted && strings.HasPrefix(e.Reason, "agent_lost") {
				lost++
			}
		}
		checkLogGapFree(t, pg, id, "b", 20)
		checkLogGapFree(t, pg, id, "a", 0)
	}
	checkMarks(t, marks)
	t.Logf("%d stage attempts interrupted (%d with agent_lost)", interrupted, lost)
}

// checkLogGapFree: the stage's lines are numbered 1..n with no gap, and the last attempt's
// "line N" outputs are all there.
func checkLogGapFree(t *testing.T, st *postgres.Store, id, stage string, lines int) {
	t.Helper()
	var out struct{ Lines []run.LogLine }
	var err error
	// From the store: the API's plain-text log has no seqs.
	if out.Lines, err = st.LogList(t.Context(), store.LogListParams{RunID: id, Stage: stage}); err != nil {
		t.Fatal(err)
	}
	for i, l := range out.Lines {
		if l.Seq != int64(i+1) {
			t.Errorf("run %s stage %s: log line %d has seq %d", id, stage, i, l.Seq)
			return
		}
	}
	if stage != "b" {
		return
	}
	// The last attempt printed line 1..lines after its last header of the marking step.
	last := 0
	for i, l := range out.Lines {
		if strings.HasPrefix(l.Text, "$ f=") {
			last = i
		}
	}
	for i := 1; i <= lines; i++ {
		found := false
		for _, l := range out.Lines[last:] {
			found = found || l.Text == "line "+strconv.Itoa(i)
		}
		if !found {
			t.Errorf("run %s stage %s: line %d of its last attempt is missing", id, stage, i)
			return
		}
	}
}

// checkMarks: no two attempts of one run's stage ran at the same time.
func checkMarks(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	type span struct{ start, end int64 }
	byStage := map[string][]span{}
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var ns []int64
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			n, err := strconv.ParseInt(strings.TrimSpace(sc.Text()), 10, 64)
			if err == nil {
				ns = append(ns, n)
			}
		}
		f.Close()
		if len(ns) == 0 {
			continue
		}
		sp := span{ns[0], ns[0] + int64(400*time.Millisecond)} // killed: the sleep bounds it
		if len(ns) > 1 {
			sp.end = ns[1]
		}
		key := e.Name()[:strings.LastIndex(e.Name(), ".")]
		byStage[key] = append(byStage[key], sp)
	}
	for key, spans := range byStage {
		sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
		for i := 1; i < len(spans); i++ {
			if spans[i].start < spans[i-1].end {
				t.Errorf("%s: two attempts ran at once: %v", key, spans)
			}
		}
	}
}
