package local_test

import (
	"strings"
	"testing"

	"github.com/paved/paved/internal/execute/local"
)

// TestReportsReadAfterFailedStep: the report globs are read after the steps also when one
// failed; a symlink (to a host file) and a directory are never read as reports, and a glob
// that matches nothing is a note, not an error.
func TestReportsReadAfterFailedStep(t *testing.T) {
	t.Parallel()
	eachSandbox(t, func(t *testing.T, mode string) {
		l := newLocal(t, local.Config{Sandbox: mode})
		job := dirJob(t, `mkdir -p out/dir.xml && printf '<testsuite/>' > out/a.xml && printf b > out/b.xml && ln -s /etc/passwd out/leak.xml && exit 1`)
		job.Reports = []string{"out/*.xml", "missing/*.xml"}
		res, _ := run(t, l, job)
		if !res.Failed {
			t.Fatalf("result %+v", res)
		}
		if len(res.Reports) != 2 || res.Reports[0].Path != "out/a.xml" || string(res.Reports[0].Data) != "<testsuite/>" ||
			res.Reports[1].Path != "out/b.xml" || string(res.Reports[1].Data) != "b" {
			t.Errorf("reports %+v", res.Reports)
		}
		if !strings.Contains(res.ReportsNote, `"missing/*.xml" matched nothing`) {
			t.Errorf("note %q", res.ReportsNote)
		}
	})
}

// TestUsageMeasured: the CPU time and the largest resident set of the steps' processes are
// reported, also when a step failed; dd's 48 MiB buffer is resident while it copies.
func TestUsageMeasured(t *testing.T) {
	t.Parallel()
	eachSandbox(t, func(t *testing.T, mode string) {
		l := newLocal(t, local.Config{Sandbox: mode})
		res, _ := run(t, l, dirJob(t, `i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done`,
			`dd if=/dev/zero of=/dev/null bs=48M count=2 2>/dev/null; exit 3`))
		if !res.Failed || res.CPU <= 0 || res.MaxRSS < 48<<20 {
			t.Errorf("result %+v: want CPU time and a max RSS of at least 48 MiB", res)
		}
	})
}
