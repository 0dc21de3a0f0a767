// Command gates measures what the security gates add to a run's critical path when they run
// in parallel with a test stage of the same length, as `paved init` lays them out.
//
// It copies a repository's committed tree (default: this one, about the size of a real
// service with many dependencies) into a throwaway git repository and times `paved run` of
// three pipelines, each -reps times (median):
//
//	gates       gate/secrets, gate/sbom, then gate/vulns (test OSV database), gate/policy
//	test        one test stage that lasts as long as the gates took (median of "gates")
//	test+noop   the test stage beside four no-op shell stages in the gates' DAG
//	test+gates  the test stage beside the gates
//
// The floors are "test" and "test+noop": what "test+gates" adds over the first is the time
// the gates add to the critical path; over the second, what they add beyond what any four
// stages cost the engine. The test stage is measured twice: sleeping (the gates have the
// CPUs to themselves) and busy on one core (the gates compete with the tests).
//
// Usage: make build && go run ./bench/gates -paved bin/paved [-src .] [-reps 5] [-capacity 4]
// It prints a Markdown section for bench/RESULTS.md.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

func main() {
	paved := flag.String("paved", "bin/paved", "the paved binary")
	src := flag.String("src", ".", "the git repository whose HEAD tree is scanned")
	osv := flag.String("osv", "internal/gate/vuln/testdata/osv", "the OSV database gate/vulns reads")
	reps := flag.Int("reps", 5, "runs of each pipeline (median reported)")
	capacity := flag.Int("capacity", 4, "paved run --capacity: stages at once")
	flag.Parse()
	bin, err := filepath.Abs(*paved)
	check(err)
	db, err := filepath.Abs(*osv)
	check(err)
	work, err := os.MkdirTemp("", "paved-bench-gates-")
	check(err)
	defer os.RemoveAll(work)
	repo := filepath.Join(work, "repo")
	check(os.MkdirAll(repo, 0o755))
	// The committed tree only: a copy of the work tree would scan build output.
	archive := exec.Command("sh", "-c", "git -C \"$1\" archive HEAD | tar -x -C \"$2\"", "sh", *src, repo)
	archive.Stderr = os.Stderr
	check(archive.Run())
	files, size := treeSize(repo)
	git(repo, "init", "--quiet", "--initial-branch=main")
	git(repo, "add", "-A")
	git(repo, "commit", "--quiet", "-m", "bench")
	data := filepath.Join(work, "data")

	gates := fmt.Sprintf(`
  secrets: {uses: gate/secrets}
  sbom: {uses: gate/sbom}
  vulns:
    needs: [sbom]
    uses: gate/vulns
    with: {db: %q, environment: dev}
  policy:
    uses: gate/policy
    with: {environment: dev, block_at: none, paths: [examples]}
`, db)
	// Gate stages pass or only warn here: a blocking gate would end the run early.
	gates = strings.ReplaceAll(gates, "{uses: gate/secrets}", "{uses: gate/secrets, with: {block_at: none}}")
	write := func(name, body string) string {
		p := filepath.Join(repo, name)
		check(os.WriteFile(p, []byte("stages:\n"+body), 0o644))
		return name
	}
	evFile := filepath.Join(work, "events.jsonl")
	runOnce := func(file string) (time.Duration, string) {
		start := time.Now()
		os.Remove(evFile)
		cmd := exec.Command(bin, "run", "--file", file, "--data", data, "--capacity", fmt.Sprint(*capacity), "--sandbox", "process-group", "--events", evFile)
		cmd.Dir = repo
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		took := time.Since(start)
		if err != nil {
			fmt.Fprintf(os.Stderr, "paved run %s: %v\n%s", file, err, out.String())
			os.Exit(1)
		}
		return took, out.String()
	}
	median := func(file string) (time.Duration, string) {
		var ds []time.Duration
		var last string
		runOnce(file) // warm: the OSV cache, the page cache
		for range *reps {
			d, out := runOnce(file)
			ds = append(ds, d)
			last = out
		}
		slices.Sort(ds)
		return ds[len(ds)/2], last
	}

	tGates, out := median(write("gates.yml", gates))
	// The same DAG of no-op shell stages: what any four stages cost the engine (workspace,
	// process, events), whatever they do.
	noop := "  secrets: {steps: ['true']}\n  sbom: {steps: ['true']}\n  vulns: {needs: [sbom], steps: ['true']}\n  policy: {steps: ['true']}\n"
	sleepStage := fmt.Sprintf("  test:\n    steps: [sleep %.3f]\n", tGates.Seconds())
	// One core busy for the same time: what a test suite does to the machine.
	busyStage := fmt.Sprintf("  test:\n    steps: ['end=$(($(date +%%s%%N) + %d)); while [ $(date +%%s%%N) -lt $end ]; do :; done']\n", tGates.Nanoseconds())
	configs := []struct{ name, body string }{
		{"sleep", sleepStage}, {"sleep-noop", sleepStage + noop}, {"sleep-gates", sleepStage + gates},
		{"busy", busyStage}, {"busy-noop", busyStage + noop}, {"busy-gates", busyStage + gates},
	}
	// Interleaved, one run of each in turn: the machine's load drifts (other work shares it),
	// and a drift must not land on one configuration only.
	times := map[string][]time.Duration{}
	// From each run's own events, which a loaded machine cannot skew between runs: how long
	// the run went on after its test stage finished (the gates on the critical path, or the
	// engine finishing), when the last gate finished relative to the test stage, and the
	// test stage's own duration (slowed when the gates compete for the CPUs).
	tail, lastGate, testDur := map[string][]time.Duration{}, map[string][]time.Duration{}, map[string][]time.Duration{}
	for _, c := range configs {
		runOnce(write(c.name+".yml", c.body))
	}
	for range *reps {
		for _, c := range configs {
			d, _ := runOnce(c.name + ".yml")
			times[c.name] = append(times[c.name], d)
			ev := readEvents(evFile)
			tail[c.name] = append(tail[c.name], ev.runEnd.Sub(ev.end["test"]))
			testDur[c.name] = append(testDur[c.name], ev.end["test"].Sub(ev.start["test"]))
			var last time.Time
			for st, t := range ev.end {
				if st != "test" && t.After(last) {
					last = t
				}
			}
			if !last.IsZero() {
				lastGate[c.name] = append(lastGate[c.name], last.Sub(ev.end["test"]))
			}
		}
	}
	mid := func(ds []time.Duration) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	med := map[string]time.Duration{}
	for k, ds := range times {
		med[k] = mid(ds)
	}

	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }
	added := func(both, floor time.Duration) string {
		return fmt.Sprintf("%+.0f ms (%+.1f%%)", float64((both-floor).Microseconds())/1000, 100*(both-floor).Seconds()/floor.Seconds())
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("## Security gates beside the tests (`bench/gates`)\n\n")
	fmt.Printf("Reproduce: `make build && go run ./bench/gates -paved bin/paved -reps %d -capacity %d`. Scanned tree: "+
		"this repository's HEAD, %d files, %.1f MB; %d CPUs, load average at the end %s; `paved run --sandbox process-group`; "+
		"median of %d, configurations interleaved.\n\n",
		*reps, *capacity, files, float64(size)/1e6, runtime.NumCPU(), strings.Join(strings.Fields(string(load))[:3], " "), *reps)
	fmt.Printf("| pipeline | wall time | over the test alone | over the test ∥ 4 no-op stages |\n|---|---|---|---|\n")
	fmt.Printf("| gates alone (secrets, sbom → vulns, policy) | %s | | |\n", ms(tGates))
	for _, kind := range []string{"sleep", "busy"} {
		what := map[string]string{"sleep": "sleeping", "busy": "busy on one core"}[kind]
		fmt.Printf("| floor: test stage %s as long as the gates | %s | | |\n", what, ms(med[kind]))
		fmt.Printf("| floor: the same ∥ 4 no-op stages in the gates' DAG | %s | %s | |\n", ms(med[kind+"-noop"]), added(med[kind+"-noop"], med[kind]))
		fmt.Printf("| the same ∥ the gates | %s | %s | %s |\n", ms(med[kind+"-gates"]), added(med[kind+"-gates"], med[kind]), added(med[kind+"-gates"], med[kind+"-noop"]))
	}
	fmt.Println()
	fmt.Printf("From each run's events (median): the run's end after the test stage's end, the last other stage's end\n" +
		"after the test stage's end (negative: it finished first), and the test stage's own duration.\n\n")
	fmt.Printf("| pipeline | run ends after the test | last other stage ends after the test | test stage duration |\n|---|---|---|---|\n")
	for _, c := range configs {
		lg := "(none)"
		if len(lastGate[c.name]) > 0 {
			lg = ms(mid(lastGate[c.name]))
		}
		fmt.Printf("| %s | %s | %s | %s |\n", c.name, ms(mid(tail[c.name])), lg, ms(mid(testDur[c.name])))
	}
	fmt.Println()
	fmt.Printf("Gate log of the last \"gates\" run:\n\n```\n%s```\n", gateLines(out))
}

type runEvents struct {
	start, end map[string]time.Time
	runEnd     time.Time
}

func readEvents(file string) runEvents {
	b, err := os.ReadFile(file)
	check(err)
	ev := runEvents{start: map[string]time.Time{}, end: map[string]time.Time{}}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e struct {
			Type  string
			Stage string
			Time  time.Time
		}
		check(json.Unmarshal([]byte(line), &e))
		switch e.Type {
		case "StageStarted":
			ev.start[e.Stage] = e.Time
		case "StageFinished":
			ev.end[e.Stage] = e.Time
		case "RunFinished":
			ev.runEnd = e.Time
		}
	}
	return ev
}

func gateLines(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " under paved-default") || strings.Contains(l, "components") || strings.Contains(l, "objects against") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	return strings.Join(keep, "\n") + "\n"
}

func treeSize(dir string) (n int, size int64) {
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n++
			size += fi.Size()
		}
		return nil
	})
	return n, size
}

func git(dir string, args ...string) {
	cmd := exec.Command("git", append([]string{"-c", "user.name=bench", "-c", "user.email=bench@invalid", "-C", dir}, args...)...)
	cmd.Stderr = os.Stderr
	check(cmd.Run())
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/gates:", err)
		os.Exit(1)
	}
}
