package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
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
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/paved/paved/internal/access"
	"github.com/paved/paved/internal/run"
)

func demoCmd() *cobra.Command {
	var (
		o    serverOptions
		once bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start a server on the embedded store, build the sample service and deploy it (rolling, canary, rollback)",
		Long: "demo starts paved on the embedded store, registers examples/hello-service as a local\n" +
			"git repository and pushes three versions: the first is built, tested and deployed to dev\n" +
			"(rolling) and prod (canary); the second fails 20% of its requests and the canary rolls it\n" +
			"back by itself; the third is good and completes. It prints every stage and deployment step\n" +
			"and the URLs, and keeps serving (with --once it exits: 0 when the runs ended SUCCEEDED,\n" +
			"ROLLED_BACK, SUCCEEDED, 1 otherwise).",
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

// demoReleases are the versions the demo pushes, one run each: the first is deployed to
// dev and prod, the second fails 20% of its requests and the canary rolls it back, the
// third is good and goes all the way (examples/hello-service/main.go reads its behaviour
// from its version).
var demoReleases = []struct{ version, expect string }{
	{"", "the version in examples/hello-service/VERSION: build, test, deploy to dev (rolling) and prod (canary)"},
	{"1.1.0-err20", "a faulty version (20% errors): the canary's analysis rolls it back by itself"},
	{"1.2.0", "a good version: every canary step passes and it reaches 100%"},
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
	token, password, err := demoAdmin(ctx, s.access)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "paved demo: server at %s (data in %s)\n", s.URL, o.data)
	fmt.Fprintf(out, "  UI: %s/runs (log in as admin, password %s)\n", s.URL, password)
	fmt.Fprintf(out, "  token: export PAVED_TOKEN=%s\n", token)
	fmt.Fprintf(out, "  environments: curl -H 'Authorization: Bearer %s' %s/api/v1/environments\n", token, s.URL)

	c := &client{base: s.URL, token: token}
	if err := c.post(ctx, "/api/v1/repos", map[string]string{
		"full_name": "demo/hello-service", "clone_url": repoDir, "team": "demo", "provider": "local",
	}, nil); err != nil {
		return err
	}
	// Users of prod: steady traffic, so the canary analysis has requests to judge.
	lctx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		demoLoad(lctx, c, "prod", 200, out)
	}()
	endLoad := sync.OnceFunc(func() {
		stopLoad()
		<-loadDone
	})
	defer endLoad()

	var phases []run.Phase
	for i, rel := range demoReleases {
		if rel.version != "" {
			if err := commitVersion(ctx, repoDir, rel.version); err != nil {
				return fmt.Errorf("push %s: %w", rel.version, err)
			}
		}
		fmt.Fprintf(out, "\npaved demo: push %d of %d: %s\n", i+1, len(demoReleases), rel.expect)
		var created struct{ ID, SHA string }
		if err := c.post(ctx, "/api/v1/runs", map[string]string{"repo": "demo/hello-service", "ref": "main"}, &created); err != nil {
			return err
		}
		runURL := s.URL + "/api/v1/runs/" + created.ID
		fmt.Fprintf(out, "paved demo: run %s of demo/hello-service@%.12s\n  UI: %s/runs/%s\n  API: %s\n", created.ID, created.SHA, s.URL, created.ID, runURL)
		phase, err := c.follow(ctx, created.ID, out)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "paved demo: run %s\n  %s/runs/%s\n", phase, s.URL, created.ID)
		phases = append(phases, phase)
	}
	endLoad() // the demo's traffic was for the canaries; the environments stay up
	fmt.Fprintf(out, "\npaved demo: environments\n")
	var envs []struct {
		Name   string `json:"name"`
		URL    string `json:"url"`
		Stable *struct {
			ID      string `json:"id"`
			Version string `json:"version"`
		} `json:"stable"`
	}
	if err := c.get(ctx, "/api/v1/environments", &envs); err == nil {
		for _, e := range envs {
			line := fmt.Sprintf("  %-5s %s", e.Name, e.URL)
			if e.Stable != nil {
				line += fmt.Sprintf("  serving %s (deployment %s)", e.Stable.Version, e.Stable.ID)
			}
			fmt.Fprintln(out, line)
		}
		fmt.Fprintf(out, "  history: %s/api/v1/environments/prod/deployments\n", s.URL)
		fmt.Fprintf(out, "  roll back: paved rollback prod --server %s\n", s.URL)
	}
	want := []run.Phase{run.Succeeded, run.RolledBack, run.Succeeded}
	ok := slices.Equal(phases, want)
	if once {
		if !ok {
			return &exitError{code: 1, err: fmt.Errorf("the demo runs ended %v, want %v", phases, want)}
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

// commitVersion writes VERSION in the sample repository and commits it: a developer's push.
func commitVersion(ctx context.Context, repoDir, version string) error {
	if err := os.WriteFile(filepath.Join(repoDir, "VERSION"), []byte(version+"\n"), 0o644); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"add", "VERSION"},
		{"-c", "user.name=paved demo", "-c", "user.email=demo@paved.invalid", "commit", "--quiet", "--allow-empty", "-m", "hello-service " + version},
	} {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = repoDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %v: %s", args[0], err, out)
		}
	}
	return nil
}

// demoLoad sends about rps requests a second to the environment once it exists, until ctx
// ends: bounded, to 127.0.0.1 only.
func demoLoad(ctx context.Context, c *client, env string, rps int, out io.Writer) {
	var url string
	tick := time.NewTicker(200 * time.Millisecond)
	for url == "" {
		select {
		case <-ctx.Done():
			tick.Stop()
			return
		case <-tick.C:
		}
		var st struct {
			URL string `json:"url"`
		}
		if c.get(ctx, "/api/v1/environments/"+env, &st) == nil {
			url = st.URL
		}
	}
	tick.Stop()
	fmt.Fprintf(out, "paved demo: sending %d requests/s to %s (%s)\n", rps, env, url)
	hc := &http.Client{Timeout: 5 * time.Second}
	const workers = 4
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			t := time.NewTicker(time.Second * workers / time.Duration(rps))
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/?name=demo", nil)
				if resp, err := hc.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
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

// client talks to the API as any user would, with an API token (--token, PAVED_TOKEN).
type client struct{ base, token string }

func (c *client) post(ctx context.Context, path string, body, out any) error {
	return c.do(ctx, http.MethodPost, path, body, out)
}

func (c *client) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

func (c *client) auth(req *http.Request) *http.Request {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req
}

// do sends a JSON request and decodes a JSON answer into out (when not nil), or returns
// the server's error.
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(c.auth(req))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(data))
		var e struct{ Error string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if resp.StatusCode == http.StatusUnauthorized && c.token == "" {
			msg += " (give --token or set PAVED_TOKEN)"
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

// follow streams the run's events and prints each stage's progress until the run finishes.
func (c *client) follow(ctx context.Context, id string, out io.Writer) (run.Phase, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/runs/"+id+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(c.auth(req))
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
		case run.GateEvaluated:
			if g := e.Gate; g != nil {
				line := fmt.Sprintf("%s: %s", g.Kind, g.Decision)
				if g.Reason != "" {
					line += " (" + g.Reason + ")"
				}
				fmt.Fprintf(out, "  %-10s %s\n", e.Stage, line)
			}
		case run.DeploymentStarted, run.DeploymentStepAdvanced, run.AnalysisRun, run.RollbackStarted, run.DeploymentFinished:
			if line := deploymentLine(e); line != "" {
				fmt.Fprintf(out, "  %-10s %s\n", e.Stage, line)
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

// deploymentLine says what a deployment event means, in one line.
func deploymentLine(e run.Event) string {
	d := e.Deployment
	if d == nil {
		return ""
	}
	weights := func() string {
		var parts []string
		for _, k := range []string{"stable", "canary", "baseline", "blue", "green"} {
			if w, ok := d.Weights[k]; ok {
				parts = append(parts, fmt.Sprintf("%s %d%%", k, w))
			}
		}
		if len(parts) == 0 {
			for k, w := range d.Weights {
				parts = append(parts, fmt.Sprintf("%s %d%%", k, w))
			}
			slices.Sort(parts)
		}
		return strings.Join(parts, ", ")
	}
	switch e.Type {
	case run.DeploymentStarted:
		return fmt.Sprintf("deploying %s to %s (%s) at %s", d.Version, d.Environment, d.Strategy, d.URL)
	case run.DeploymentStepAdvanced:
		return fmt.Sprintf("step %d/%d: %s", d.Step, d.Steps, weights())
	case run.AnalysisRun:
		a := d.Analysis
		if a == nil {
			return ""
		}
		var ms []string
		for _, m := range a.Metrics {
			switch {
			case m.Name != "error_rate" && m.Name != "p99_latency_ms" && m.Name != "requests":
			case d.Phase == "verifying": // the SLO window has no baseline
				ms = append(ms, fmt.Sprintf("%s %g", m.Name, m.Value))
			default:
				ms = append(ms, fmt.Sprintf("%s %g (baseline %g)", m.Name, m.Value, m.Baseline))
			}
		}
		what := "analysis"
		if d.Phase == "verifying" {
			what = "SLO window"
		}
		line := fmt.Sprintf("%s %s: %s", what, a.Outcome, strings.Join(ms, ", "))
		if d.Phase == "paused" {
			line += " [paused: " + a.Reason + "]"
		}
		return line
	case run.RollbackStarted:
		return fmt.Sprintf("ROLLBACK: %s (canary at 0%% after %.3f ms)", d.Reason, d.RollbackMS)
	case run.DeploymentFinished:
		if d.Reason != "" {
			return fmt.Sprintf("deployment %s %s: %s", d.ID, d.Outcome, d.Reason)
		}
		return fmt.Sprintf("deployment %s %s", d.ID, d.Outcome)
	}
	return ""
}

// demoAdmin makes the demo's server admin "admin" (again on every demo, which keeps its data
// directory: the old password and tokens of a previous demo stop working) and a token for
// it, and returns both secrets.
func demoAdmin(ctx context.Context, acc *access.Service) (token, password string, err error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	password = hex.EncodeToString(b)
	if err := acc.SetPassword(ctx, "admin", password, true); err != nil {
		return "", "", fmt.Errorf("demo admin: %w", err)
	}
	_, token, err = acc.TokenCreate(ctx, access.TokenCreateParams{User: "admin", Name: "demo", AllTeams: true, TTL: 7 * 24 * time.Hour})
	if err != nil {
		return "", "", fmt.Errorf("demo admin token: %w", err)
	}
	return token, password, nil
}
