package main

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paved/paved/internal/run"
)

const samples = "../../internal/trigger/stack/testdata/repos"

// sampleFiles reads a sample repository of the stack package's testdata, for gitRepo.
func sampleFiles(t *testing.T, name string) map[string]string {
	t.Helper()
	files := map[string]string{}
	root := filepath.Join(samples, name)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func pavedExec(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(pavedBin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// `paved init` on every sample repository prints a pipeline that `paved validate` accepts.
func TestInitSamplesValidate(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(samples)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			t.Parallel()
			dir := gitRepo(t, sampleFiles(t, e.Name()))
			out, code := pavedExec(t, dir, "init")
			if code != 0 {
				t.Fatalf("paved init: exit %d\n%s", code, out)
			}
			file := filepath.Join(t.TempDir(), "generated.yml")
			if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			if v, code := pavedExec(t, dir, "validate", file); code != 0 {
				t.Fatalf("paved validate: exit %d\n%s\n%s", code, v, out)
			}
		})
	}
}

// The Go sample's generated pipeline runs green; --write refuses to replace the file
// unless forced; a directory with nothing to build is exit 2.
func TestInitGoSampleRuns(t *testing.T) {
	t.Parallel()
	dir := gitRepo(t, sampleFiles(t, "go"))
	if out, code := pavedExec(t, dir, "init", "--write"); code != 0 {
		t.Fatalf("paved init --write: exit %d\n%s", code, out)
	}
	if out, code := pavedExec(t, dir, "init", "--write"); code != 2 || !strings.Contains(out, "--force") {
		t.Errorf("a second --write: exit %d, want 2 with a hint at --force\n%s", code, out)
	}
	if out, code := pavedExec(t, dir, "init", "--write", "--force"); code != 0 {
		t.Errorf("--write --force: exit %d\n%s", code, out)
	}
	res := pavedRun(t, dir, "--data", t.TempDir())
	if res.code != 0 {
		t.Fatalf("paved run: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	status := map[string]string{}
	for _, e := range res.events {
		if e.Type == run.StageFinished {
			status[e.Stage] = e.Status
		}
	}
	// The gates run beside them; gate/vulns only warns while no OSV database is installed.
	for _, st := range []string{"build", "test", "secrets", "sbom", "vulns"} {
		if status[st] != "succeeded" || len(status) != 5 {
			t.Errorf("stages %v, want build, test and the three gates succeeded\n%s", status, res.stdout)
			break
		}
	}
	if !strings.Contains(res.stdout, "ok  \texample.com/greet") {
		t.Errorf("the test stage did not run the sample's test:\n%s", res.stdout)
	}

	if out, code := pavedExec(t, t.TempDir(), "init"); code != 2 || !strings.Contains(out, "nothing to build") {
		t.Errorf("an empty directory: exit %d, want 2 saying nothing to build\n%s", code, out)
	}
}
