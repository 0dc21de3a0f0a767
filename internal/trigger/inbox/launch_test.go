package inbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/trigger"
)

// recorder is a Scheduler that keeps what it was asked to create.
type recorder struct {
	mu      sync.Mutex
	created []schedule.CreateParams
}

func (r *recorder) Create(_ context.Context, p schedule.CreateParams) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.created = append(r.created, p)
	return "run-1", nil
}

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
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-qm", "one"}} {
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

// A registered repository without a pipeline file runs the pipeline paved init would
// write for it, and the run records that it was generated.
func TestManualGeneratesMissingPipeline(t *testing.T) {
	t.Parallel()
	dir := gitRepo(t, map[string]string{
		"go.mod":  "module example.com/x\n\ngo 1.22\n",
		"main.go": "package main\n\nfunc main() {}\n",
	})
	rec := &recorder{}
	l := &Launcher{Git: &trigger.Git{Dir: t.TempDir()}, Scheduler: rec}
	repo := trigger.Repo{FullName: "acme/x", CloneURL: dir, Team: "t", Provider: "local"}
	if _, _, err := l.Manual(context.Background(), repo, "main"); err != nil {
		t.Fatal(err)
	}
	if len(rec.created) != 1 {
		t.Fatalf("created %d runs, want 1", len(rec.created))
	}
	info := rec.created[0].Info
	if info.File != GeneratedFile {
		t.Errorf("Info.File = %q, want %q", info.File, GeneratedFile)
	}
	var names []string
	for _, s := range info.Pipeline.Stages {
		names = append(names, s.Name)
	}
	if info.Pipeline.Name != "x" || strings.Join(names, " ") != "build test" {
		t.Errorf("pipeline %q with stages %v, want x with build test", info.Pipeline.Name, names)
	}
}

// With a pipeline file, that file is run; with nothing to build, no run starts and the
// error says what to do.
func TestManualFileOrNothing(t *testing.T) {
	t.Parallel()
	withFile := gitRepo(t, map[string]string{
		".paved.yml": "stages: {only: {steps: [true]}}\n",
		"go.mod":     "module example.com/x\n",
	})
	empty := gitRepo(t, map[string]string{"README.md": "# nothing\n"})
	rec := &recorder{}
	l := &Launcher{Git: &trigger.Git{Dir: t.TempDir()}, Scheduler: rec}
	ctx := context.Background()
	if _, _, err := l.Manual(ctx, trigger.Repo{FullName: "acme/f", CloneURL: withFile, Team: "t"}, ""); err != nil {
		t.Fatal(err)
	}
	if info := rec.created[0].Info; info.File != ".paved.yml" || info.Pipeline.Stages[0].Name != "only" {
		t.Errorf("ran %s with stage %s, want .paved.yml's", info.File, info.Pipeline.Stages[0].Name)
	}
	_, _, err := l.Manual(ctx, trigger.Repo{FullName: "acme/e", CloneURL: empty, Team: "t"}, "")
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "found nothing to build") {
		t.Errorf("err = %v, want a missing file and nothing to build", err)
	}
	if len(rec.created) != 1 {
		t.Errorf("created %d runs, want 1", len(rec.created))
	}
}
