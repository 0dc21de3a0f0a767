package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute/local"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store/sqlite"
)

func runCmd() *cobra.Command {
	var (
		file, events, event, sandbox, data string
		capacity                           int
		secrets                            []string
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the pipeline of the current git checkout here, with no server",
		Long: "run runs the pipeline file of the git checkout in the current directory: every\n" +
			"stage gets a copy of the working tree (tracked files and untracked ones .gitignore does\n" +
			"not exclude; not .git) in its own sandbox. Logs are printed live, prefixed by stage.\n" +
			"Secrets named in the pipeline are taken from --secret NAME=VALUE, or else from the\n" +
			"environment variable NAME. Exit 0 when the run succeeded, 1 when it failed, 2 on\n" +
			"usage or file errors.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			given := map[string]string{}
			for _, kv := range secrets {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return usageErr("--secret %q: use NAME=VALUE", kv)
				}
				given[k] = v
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return localRun(ctx, localRunOptions{
				file: file, events: events, event: event, sandbox: sandbox, capacity: capacity, data: data,
				secrets: given, out: cmd.OutOrStdout(),
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", ".paved.yml", "pipeline file, relative to the checkout's top")
	cmd.Flags().StringVar(&events, "events", "", "write the run's events to this file as JSON lines")
	cmd.Flags().StringVar(&event, "event", "push", "trigger kind the stages' when: conditions see")
	cmd.Flags().StringVar(&sandbox, "sandbox", "auto", "stage isolation: auto, bubblewrap or process-group")
	cmd.Flags().IntVar(&capacity, "capacity", 0, "stages that run at once (default: number of CPUs, at least 2)")
	cmd.Flags().StringArrayVar(&secrets, "secret", nil, "a secret as NAME=VALUE (repeatable)")
	cmd.Flags().StringVar(&data, "data", envOr("PAVED_DATA", ""), "data directory kept between runs: the dependency cache and artifacts (env PAVED_DATA; default ~/.cache/paved)")
	return cmd
}

type localRunOptions struct {
	file, events, event, sandbox string
	data                         string // "": the user's cache dir
	capacity                     int
	secrets                      map[string]string
	out                          io.Writer
}

func localRun(ctx context.Context, o localRunOptions) error {
	top, sha, branch, err := checkout(ctx)
	if err != nil {
		return usageErr("paved run works in a git checkout: %v", err)
	}
	path := o.file
	if !filepath.IsAbs(path) {
		path = filepath.Join(top, path)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return usageErr("%v", err)
	}
	rel, err := filepath.Rel(top, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		rel = o.file // a file outside the checkout is named as the user gave it
	}
	p, err := pipeline.Compile(rel, src, compileOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, err) // FILE:LINE:COL: message, one a line, as paved validate prints
		return &exitError{code: 2, err: errors.New("")}
	}
	p, left := withoutDeploys(p)
	if len(left) > 0 {
		fmt.Fprintf(os.Stderr, "paved run: leaving out %s: deploy: stages deploy through a paved server\n", strings.Join(left, ", "))
	}
	var eventsOut *os.File
	if o.events != "" {
		if eventsOut, err = os.Create(o.events); err != nil {
			return usageErr("--events: %v", err)
		}
		defer eventsOut.Close()
	}

	if o.data == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return usageErr("no --data given and no user cache dir (%v): pass --data DIR or set PAVED_DATA", err)
		}
		o.data = filepath.Join(dir, "paved")
	}
	depCache, err := cache.Open(cache.Config{Dir: filepath.Join(o.data, "cache")})
	if err != nil {
		return usageErr("data dir %s: %v (pass --data DIR or set PAVED_DATA to a writable directory)", o.data, err)
	}
	// Kept between runs like the cache, so an artifact a run produces again is not stored
	// again; apart from the cache, whose eviction would remove it.
	artifacts, err := cache.NewBlobs(filepath.Join(o.data, "artifacts"))
	if err != nil {
		return usageErr("data dir %s: %v (pass --data DIR or set PAVED_DATA to a writable directory)", o.data, err)
	}
	tmp, err := os.MkdirTemp("", "paved-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// The executor's sandbox probe (a bubblewrap start), the copy of the working tree and the
	// store are independent: made side by side they cost the longest of them, not the sum.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	type executor struct {
		ex  *local.Local
		err error
	}
	exReady := make(chan executor, 1)
	go func() {
		ex, err := local.New(local.Config{Root: filepath.Join(tmp, "ws"), Sandbox: o.sandbox, Logger: logger,
			Cache: depCache, Artifacts: artifacts, Hide: []string{o.data}})
		exReady <- executor{ex, err}
	}()
	snapshot := filepath.Join(tmp, "src")
	snapErr := make(chan error, 1)
	go func() { snapErr <- snapshotWorkTree(ctx, top, snapshot) }()
	st, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		return err
	}
	defer st.Close()
	made := <-exReady
	if made.err != nil {
		return usageErr("%v", made.err)
	}
	ex := made.ex
	if err := <-snapErr; err != nil {
		return fmt.Errorf("copy the working tree: %w", err)
	}
	capacity := o.capacity
	if capacity == 0 {
		capacity = max(2, runtime.NumCPU())
	}
	kinds, err := makeKinds(kindEnv{Data: o.data, Artifacts: artifacts, Logger: logger})
	if err != nil {
		return err
	}
	printer := &linePrinter{w: bufio.NewWriter(o.out)}
	sched, err := schedule.New(schedule.Config{
		Capacity: capacity, Logger: logger, Kinds: kinds,
		Secrets: func(_ context.Context, p schedule.SecretParams) (string, error) {
			name := p.Name
			if v, ok := o.secrets[name]; ok {
				return v, nil
			}
			if v, ok := os.LookupEnv(name); ok {
				return v, nil
			}
			return "", fmt.Errorf("not set: pass --secret %s=VALUE or set %s in the environment", name, name)
		},
		OnLog: printer.lines,
		OnEvent: func(e run.Event) {
			printer.event(e)
			if eventsOut != nil {
				b, _ := json.Marshal(e)
				_, _ = eventsOut.Write(append(b, '\n'))
			}
		},
		LogFlush: 20e6, // 20ms: a person is watching
	}, st, ex)
	if err != nil {
		return err
	}
	if err := sched.Start(ctx); err != nil {
		return err
	}
	defer sched.Stop()

	id, err := sched.Create(ctx, schedule.CreateParams{Info: run.Info{
		Repo: "local", Ref: branch, SHA: sha, File: rel, Pipeline: p,
		Trigger: run.Trigger{Kind: o.event, Branch: branch},
		Source:  run.Source{Dir: snapshot},
	}})
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		_ = sched.Cancel(context.WithoutCancel(ctx), id, "interrupted (signal)")
	}()
	final, err := sched.Wait(context.WithoutCancel(ctx), id)
	printer.flush()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "paved: run %s\n", strings.ToLower(string(final.Phase)))
	if final.Phase != run.Succeeded {
		return &exitError{code: 1, err: fmt.Errorf("%s", final.Reason)}
	}
	return nil
}

// linePrinter prints log lines prefixed by stage, and stage results, for a person.
type linePrinter struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (p *linePrinter) lines(lines []run.LogLine) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range lines {
		fmt.Fprintf(p.w, "[%s] %s\n", l.Stage, l.Text)
	}
	p.w.Flush()
}

func (p *linePrinter) event(e run.Event) {
	if e.Type != run.StageFinished {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Reason != "" {
		fmt.Fprintf(p.w, "[%s] ── %s: %s\n", e.Stage, e.Status, e.Reason)
	} else {
		fmt.Fprintf(p.w, "[%s] ── %s\n", e.Stage, e.Status)
	}
	p.w.Flush()
}

func (p *linePrinter) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.w.Flush()
}

// snapshotWorkTree copies what git would see of the working tree (tracked files and untracked
// ones not ignored, as they are on disk now) to dst, so stages never touch the checkout.
func snapshotWorkTree(ctx context.Context, top, dst string) error {
	out, err := exec.CommandContext(ctx, "git", "-C", top, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return fmt.Errorf("git ls-files: %w", err)
	}
	for _, rel := range bytes.Split(out, []byte{0}) {
		if len(rel) == 0 {
			continue
		}
		if err := copyEntry(filepath.Join(top, string(rel)), filepath.Join(dst, string(rel))); err != nil {
			return err
		}
	}
	return os.MkdirAll(dst, 0o755)
}

// copyEntry copies one file or symlink, making parent directories. A tracked file deleted
// from the working tree is skipped, as the working tree is what runs.
func copyEntry(src, dst string) error {
	fi, err := os.Lstat(src)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	case fi.IsDir(): // a submodule: not copied
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// checkout finds the top of the current git checkout, its HEAD commit and branch in one git
// call (the fixed cost of paved run is mostly processes); a repository without commits
// has neither.
func checkout(ctx context.Context) (top, sha, branch string, err error) {
	out, err := gitOut(ctx, ".", "rev-parse", "--show-toplevel", "HEAD", "--abbrev-ref", "HEAD")
	if err != nil {
		top, err = gitOut(ctx, ".", "rev-parse", "--show-toplevel")
		return top, "", "", err
	}
	lines := strings.Split(out, "\n")
	if len(lines) != 3 {
		return "", "", "", fmt.Errorf("git rev-parse: unexpected output %q", out)
	}
	if lines[2] == "HEAD" { // detached
		lines[2] = ""
	}
	return lines[0], lines[1], lines[2], nil
}

func gitOut(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %s", strings.Join(args, " "), strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}
