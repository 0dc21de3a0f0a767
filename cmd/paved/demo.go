package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/paved/paved/internal/run"
)

func demoCmd() *cobra.Command {
	var (
		o    serverOptions
		once bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start a server on the embedded store and run the sample service's pipeline",
		Long: "demo starts paved on the embedded store, registers examples/hello-service as a local\n" +
			"git repository, triggers a run of its pipeline, prints its progress and the run's URL,\n" +
			"and keeps serving (with --once it exits with the run's result: 0 succeeded, 1 not).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return demo(ctx, o, once, cmd.OutOrStdout())
		},
	}
	o.flags(cmd)
	cmd.Flags().Lookup("data").Usage = "data directory (env PAVED_DATA; default ~/.cache/paved/demo, kept between demos)"
	cmd.Flags().BoolVar(&once, "once", false, "exit with the run's result instead of serving")
	return cmd
}

func demo(ctx context.Context, o serverOptions, once bool, out io.Writer) error {
	example, err := findExample("hello-service")
	if err != nil {
		return usageErr("%v", err)
	}
	if o.data == "" {
		// Kept between demos, so a second demo restores its dependency caches and is fast.
		dir, err := os.UserCacheDir()
		if err != nil {
			return usageErr("no --data given and no user cache dir: %v", err)
		}
		o.data = filepath.Join(dir, "paved", "demo")
	}
	repoDir := filepath.Join(o.data, "repos", "hello-service")
	if err := initRepo(ctx, example, repoDir); err != nil {
		return fmt.Errorf("make the sample repository: %w", err)
	}
	s, err := startServer(ctx, o, newLogger())
	if err != nil {
		return err
	}
	defer s.shutdown()
	fmt.Fprintf(out, "paved demo: server at %s (data in %s)\n", s.URL, o.data)

	c := &client{base: s.URL}
	if err := c.post(ctx, "/api/v1/repos", map[string]string{
		"full_name": "demo/hello-service", "clone_url": repoDir, "team": "demo", "provider": "local",
	}, nil); err != nil {
		return err
	}
	var created struct{ ID, SHA string }
	if err := c.post(ctx, "/api/v1/runs", map[string]string{"repo": "demo/hello-service", "ref": "main"}, &created); err != nil {
		return err
	}
	runURL := s.URL + "/api/v1/runs/" + created.ID
	fmt.Fprintf(out, "paved demo: run %s of demo/hello-service@%.12s\n  %s\n  logs: %s/logs\n", created.ID, created.SHA, runURL, runURL)

	phase, err := c.follow(ctx, created.ID, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "paved demo: run %s\n  %s\n", phase, runURL)
	if once {
		if phase != run.Succeeded {
			return &exitError{code: 1, err: fmt.Errorf("the demo run ended %s; see %s/logs", phase, runURL)}
		}
		return nil
	}
	fmt.Fprintf(out, "paved demo: serving at %s; Ctrl-C to stop\n", s.URL)
	select {
	case <-ctx.Done():
	case err := <-s.done:
		return err
	}
	return nil
}

// findExample looks for examples/NAME in the current directory or one of its parents, so
// `go run ./cmd/paved demo` works from anywhere in paved's checkout.
func findExample(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "examples", name)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("examples/%s not found: run the demo from paved's checkout", name)
		}
		dir = parent
	}
}

// initRepo makes dst a git repository holding a copy of src on main: the first time in a
// new repository, later as a new commit when src changed (a push, as a developer would).
func initRepo(ctx context.Context, src, dst string) error {
	steps := [][]string{
		{"add", "-A"},
		{"-c", "user.name=paved demo", "-c", "user.email=demo@paved.invalid", "commit", "--quiet", "--allow-empty", "-m", "hello-service: update from examples/"},
	}
	if _, err := os.Stat(filepath.Join(dst, ".git")); err != nil {
		steps = append([][]string{{"init", "--quiet", "--initial-branch=main"}}, steps...)
	}
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		return copyEntry(path, filepath.Join(dst, rel))
	})
	if err != nil {
		return err
	}
	for _, args := range steps {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dst
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %v: %s", args[0], err, out)
		}
	}
	return nil
}

// client talks to the API as any user would.
type client struct{ base string }

func (c *client) post(ctx context.Context, path string, body, out any) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// follow streams the run's events and prints each stage's progress until the run finishes.
func (c *client) follow(ctx context.Context, id string, out io.Writer) (run.Phase, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/runs/"+id+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	started := map[string]time.Time{}
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var e run.Event
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return "", fmt.Errorf("event stream: %w", err)
		}
		switch e.Type {
		case run.StageStarted:
			started[e.Stage] = e.Time
			fmt.Fprintf(out, "  %-10s running\n", e.Stage)
		case run.StageFinished:
			line := fmt.Sprintf("  %-10s %s", e.Stage, e.Status)
			if t, ok := started[e.Stage]; ok {
				line += fmt.Sprintf(" in %s", e.Time.Sub(t).Round(100*time.Millisecond))
			}
			if e.Reason != "" {
				line += ": " + e.Reason
			}
			fmt.Fprintln(out, line)
		case run.StageInterrupted, run.StageQueued:
			if e.Reason != "" {
				fmt.Fprintf(out, "  %-10s queued again: %s\n", e.Stage, e.Reason)
			}
		case run.RunFinished:
			return run.Phase(e.Status), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	return "", errors.New("event stream ended before the run finished")
}
