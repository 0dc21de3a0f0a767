package kube

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/execute"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// logObserver writes the Observer calls as text.
type logObserver struct{ b bytes.Buffer }

func (o *logObserver) StepStarted(i int)         { fmt.Fprintf(&o.b, "start %d\n", i) }
func (o *logObserver) Output(i int, p []byte)    { fmt.Fprintf(&o.b, "output %d %q\n", i, p) }
func (o *logObserver) Cache(execute.CacheReport) {}
func (o *logObserver) StepFinished(i, code int, _ time.Duration) {
	fmt.Fprintf(&o.b, "end %d %d\n", i, code)
}

// stepLog reads a stage's marked log for a 2-step stage and completes it as a pod that
// exited with code at failedStep would.
func stepLog(data []byte, code, failedStep int) string {
	o := &logObserver{}
	s := &stepTracker{obs: o, n: 2}
	s.read(bytes.NewReader(data))
	s.finish(code, failedStep)
	return o.b.String()
}

// TestStepLog: golden files of the Observer calls the log parser makes (go test -update).
func TestStepLog(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/steplog/*.log")
	if len(files) == 0 {
		t.Fatal("no testdata/steplog/*.log")
	}
	for _, f := range files {
		in, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		code, failed := 0, 0
		if strings.Contains(string(in), "FAIL") {
			code, failed = 1, 1
		}
		got := stepLog(in, code, failed)
		golden := strings.TrimSuffix(f, ".log") + ".golden"
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if got != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", f, got, want)
		}
	}
}

// FuzzStepLog: whatever a step prints, every step is started once before it ends, ends
// once, and in order.
func FuzzStepLog(f *testing.F) {
	files, _ := filepath.Glob("testdata/steplog/*.log")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b, 0, 0)
	}
	f.Fuzz(func(t *testing.T, data []byte, code, failed int) {
		failed = ((failed % 2) + 2) % 2
		out := stepLog(data, code%256, failed)
		started, ended := -1, -1
		for _, line := range strings.Split(out, "\n") {
			var i, c int
			switch {
			case strings.HasPrefix(line, "start "):
				fmt.Sscanf(line, "start %d", &i)
				if i != started+1 || ended != started {
					t.Fatalf("start %d out of order:\n%s", i, out)
				}
				started = i
			case strings.HasPrefix(line, "end "):
				fmt.Sscanf(line, "end %d %d", &i, &c)
				if i != started || i != ended+1 {
					t.Fatalf("end %d out of order:\n%s", i, out)
				}
				ended = i
			}
		}
	})
}
