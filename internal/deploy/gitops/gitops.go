package gitops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// File shapes.
const (
	Kustomize = "kustomize"
	Helm      = "helm"
)

// Sentinel errors.
var (
	ErrConfig    = errors.New("gitops: bad target config")
	ErrUnhealthy = errors.New("gitops: the environment did not report the new digest healthy in time")
	ErrEdit      = errors.New("gitops: cannot edit the config file")
)

// Config is an environment's gitops target (its gitops: map in the environments config).
type Config struct {
	// Repo is the config repository's URL or path; Branch its branch (default main).
	Repo   string `yaml:"repo" json:"repo"`
	Branch string `yaml:"branch" json:"branch,omitempty"`
	// File is the file to edit, relative to the repository's root.
	File string `yaml:"file" json:"file"`
	// Kind is kustomize (default when File's base name is kustomization.yaml) or helm.
	Kind string `yaml:"kind" json:"kind"`
	// Image is the kustomize images: entry's name (kustomize).
	Image string `yaml:"image" json:"image,omitempty"`
	// Path is the dotted path of the values key that gets the digest (helm), e.g.
	// image.digest.
	Path string `yaml:"path" json:"path,omitempty"`
	// HealthURL or StatusFile is the health signal (one of them).
	HealthURL  string `yaml:"health_url" json:"health_url,omitempty"`
	StatusFile string `yaml:"status_file" json:"status_file,omitempty"`
	// Timeout bounds the wait for the health signal (default 10m); Poll is how often it is
	// read (default 2s).
	Timeout time.Duration `yaml:"-" json:"-"`
	Poll    time.Duration `yaml:"-" json:"-"`
	// Author signs the commits (default paved <paved@localhost>).
	AuthorName  string `yaml:"author_name" json:"author_name,omitempty"`
	AuthorEmail string `yaml:"author_email" json:"author_email,omitempty"`
}

// Validate fills defaults and says what is missing, in words a config file's author can act on.
func (c *Config) Validate() error {
	var errs []error
	if c.Repo == "" {
		errs = append(errs, errors.New("repo: give the config repository's URL or path"))
	}
	if c.Branch == "" {
		c.Branch = "main"
	}
	if c.File == "" || strings.Contains(c.File, "..") || filepath.IsAbs(c.File) {
		errs = append(errs, fmt.Errorf("file %q: give the file to edit, relative to the repository's root", c.File))
	}
	if c.Kind == "" {
		c.Kind = Helm
		if b := filepath.Base(c.File); b == "kustomization.yaml" || b == "kustomization.yml" {
			c.Kind = Kustomize
		}
	}
	switch c.Kind {
	case Kustomize:
		if c.Image == "" {
			errs = append(errs, errors.New("image: name the kustomize images: entry to set (e.g. ghcr.io/acme/web)"))
		}
	case Helm:
		if c.Path == "" {
			errs = append(errs, errors.New("path: give the values key that gets the digest (e.g. image.digest)"))
		}
	default:
		errs = append(errs, fmt.Errorf("kind %q: use kustomize or helm", c.Kind))
	}
	if (c.HealthURL == "") == (c.StatusFile == "") {
		errs = append(errs, errors.New("give one health signal: health_url (answers 2xx when ready) or status_file (written by the cluster side)"))
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.Poll <= 0 {
		c.Poll = 2 * time.Second
	}
	if c.AuthorName == "" {
		c.AuthorName = "paved"
	}
	if c.AuthorEmail == "" {
		c.AuthorEmail = "paved@localhost"
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Target commits digests to one environment's config repository.
type Target struct {
	cfg Config
	dir string // scratch space for clones
}

// New returns a Target; dir holds its clones (a temporary directory when empty).
func New(cfg Config, dir string) (*Target, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Target{cfg: cfg, dir: dir}, nil
}

// Config returns the target's config with its defaults.
func (t *Target) Config() Config { return t.cfg }

// Request is one promotion to commit.
type Request struct {
	Environment string
	Digest      string // sha256:...
	Freight     string // its alias, for the commit message
	Promotion   string // the promotion's id
	By          string
}

// Result is what a promotion did to the config repository.
type Result struct {
	Commit string `json:"commit"` // the commit that holds the digest
	// Committed is false when the file held the digest already (a resumed promotion).
	Committed bool `json:"committed"`
}

// Commit writes the digest into the config file and pushes one commit, retried over a push
// that lost a race with another writer of the repository.
func (t *Target) Commit(ctx context.Context, r Request) (Result, error) {
	var last error
	for range 3 {
		res, err := t.commitOnce(ctx, r)
		if err == nil || !errors.Is(err, errPushRejected) {
			return res, err
		}
		last = err
	}
	return Result{}, last
}

var errPushRejected = errors.New("gitops: push rejected")

func (t *Target) commitOnce(ctx context.Context, r Request) (Result, error) {
	work, err := os.MkdirTemp(t.dir, "gitops-")
	if err != nil {
		return Result{}, fmt.Errorf("gitops: %w", err)
	}
	defer os.RemoveAll(work)
	if _, err := t.git(ctx, "", "clone", "-q", "--depth", "1", "--branch", t.cfg.Branch, "--", t.cfg.Repo, work); err != nil {
		return Result{}, err
	}
	path := filepath.Join(work, filepath.FromSlash(t.cfg.File))
	src, err := os.ReadFile(path)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %s in %s: %v", ErrEdit, t.cfg.File, t.cfg.Repo, err)
	}
	out, err := t.set(src, r.Digest)
	if err != nil {
		return Result{}, err
	}
	if bytes.Equal(out, src) {
		head, err := t.git(ctx, work, "rev-parse", "HEAD")
		return Result{Commit: head}, err
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return Result{}, fmt.Errorf("gitops: %w", err)
	}
	msg := fmt.Sprintf("promote %s to %s\n\nImage digest %s (promotion %s, by %s).\n\nPaved-Freight: %s\nPaved-Promotion: %s\n",
		r.Freight, r.Environment, r.Digest, r.Promotion, r.By, r.Freight, r.Promotion)
	if _, err := t.git(ctx, work, "commit", "-q", "-m", msg, "--", t.cfg.File); err != nil {
		return Result{}, err
	}
	if _, err := t.git(ctx, work, "push", "-q", "origin", "HEAD:refs/heads/"+t.cfg.Branch); err != nil {
		if strings.Contains(err.Error(), "rejected") || strings.Contains(err.Error(), "fetch first") {
			return Result{}, fmt.Errorf("%w: %v", errPushRejected, err)
		}
		return Result{}, err
	}
	head, err := t.git(ctx, work, "rev-parse", "HEAD")
	return Result{Commit: head, Committed: true}, err
}

// Configured reads the digest the config repository holds now ("" when none is set).
func (t *Target) Configured(ctx context.Context) (string, error) {
	work, err := os.MkdirTemp(t.dir, "gitops-")
	if err != nil {
		return "", fmt.Errorf("gitops: %w", err)
	}
	defer os.RemoveAll(work)
	if _, err := t.git(ctx, "", "clone", "-q", "--depth", "1", "--branch", t.cfg.Branch, "--", t.cfg.Repo, work); err != nil {
		return "", err
	}
	src, err := os.ReadFile(filepath.Join(work, filepath.FromSlash(t.cfg.File)))
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrEdit, t.cfg.File, err)
	}
	return t.get(src)
}

func (t *Target) git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "user.name=" + t.cfg.AuthorName, "-c", "user.email=" + t.cfg.AuthorEmail,
		"-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("gitops: git %s: %v: %s", args[0], err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// Status is what the environment reports running.
type Status struct {
	Digest  string `json:"digest" yaml:"digest"`
	Healthy bool   `json:"healthy" yaml:"healthy"`
}

// Running reads the health signal once: what the environment runs and whether it is healthy.
func (t *Target) Running(ctx context.Context) (Status, error) {
	if t.cfg.StatusFile != "" {
		b, err := os.ReadFile(t.cfg.StatusFile)
		if err != nil {
			return Status{}, fmt.Errorf("gitops: status file: %w", err)
		}
		var st Status
		if err := yaml.Unmarshal(b, &st); err != nil { // JSON is YAML
			return Status{}, fmt.Errorf("gitops: status file %s: want {digest: ..., healthy: true}: %v", t.cfg.StatusFile, err)
		}
		return st, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.cfg.HealthURL, nil)
	if err != nil {
		return Status{}, fmt.Errorf("gitops: health_url: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Status{}, fmt.Errorf("gitops: health_url: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	st := Status{Healthy: resp.StatusCode/100 == 2}
	_ = json.Unmarshal(b, &st) // a body that is not JSON says nothing of the digest
	st.Healthy = resp.StatusCode/100 == 2
	return st, nil
}

// WaitHealthy polls the health signal until the environment runs digest and is healthy, or
// the target's Timeout. A health URL whose answers carry no digest counts as running it
// once it answers 2xx.
func (t *Target) WaitHealthy(ctx context.Context, digest string) (Status, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	tick := time.NewTicker(t.cfg.Poll)
	defer tick.Stop()
	var last Status
	var lastErr error
	for {
		st, err := t.Running(ctx)
		if err == nil && st.Healthy && (st.Digest == digest || (st.Digest == "" && t.cfg.HealthURL != "")) {
			return st, nil
		}
		last, lastErr = st, err
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return last, fmt.Errorf("%w (%s): last: %v", ErrUnhealthy, t.cfg.Timeout, lastErr)
			}
			return last, fmt.Errorf("%w (%s): it reports %s, healthy %v", ErrUnhealthy, t.cfg.Timeout, orNone(last.Digest), last.Healthy)
		case <-tick.C:
		}
	}
}

// Drift compares what the config repository holds with what the environment reports.
type Drift struct {
	Configured string    `json:"configured"`
	Running    string    `json:"running"`
	Drifted    bool      `json:"drifted"`
	Reason     string    `json:"reason,omitempty"`
	CheckedAt  time.Time `json:"checked_at"`
}

// CheckDrift reads both sides once.
func (t *Target) CheckDrift(ctx context.Context, now time.Time) (Drift, error) {
	conf, err := t.Configured(ctx)
	if err != nil {
		return Drift{}, err
	}
	st, err := t.Running(ctx)
	d := Drift{Configured: conf, Running: st.Digest, CheckedAt: now}
	switch {
	case err != nil:
		d.Drifted, d.Reason = true, "the environment does not say what it runs: "+err.Error()
	case st.Digest == "":
		// A bare health URL says nothing of the digest: no drift can be seen.
	case st.Digest != conf:
		d.Drifted = true
		d.Reason = fmt.Sprintf("the config repository holds %s but the environment runs %s", orNone(conf), st.Digest)
	}
	return d, nil
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}
