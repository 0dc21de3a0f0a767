// Package secrets finds credentials committed to a repository with gitleaks' default rule
// set, used as a library, and waives the findings a baseline file suppresses for a reason
// until an expiry date. A finding never carries the secret: gitleaks redacts it before this
// package sees the match.
package secrets

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/logging"

	"github.com/paved/paved/internal/gate"
	"github.com/paved/paved/internal/run"
)

// BaselineFile is where a repository keeps its suppressions, relative to its root.
const BaselineFile = ".paved/secrets-baseline.yml"

// MaxFileSize is the largest file scanned; bigger ones are data, not configuration.
const MaxFileSize = 4 << 20

// Severity of every secret: a leaked credential is as bad as it gets.
const Severity = "CRITICAL"

var (
	cfgOnce sync.Once
	cfg     config.Config
	cfgErr  error
)

// rules loads gitleaks' default configuration once. gitleaks' own loader goes through
// viper's global instance, which is not safe for concurrent stages; a private instance is.
// gitleaks logs through a global logger of its own, at info level to stderr: silenced,
// since a library must not write to the server's stderr, least of all about secrets.
func rules() (config.Config, error) {
	cfgOnce.Do(func() {
		logging.Logger = zerolog.Nop()
		v := viper.New()
		v.SetConfigType("toml")
		if cfgErr = v.ReadConfig(strings.NewReader(config.DefaultConfig)); cfgErr != nil {
			return
		}
		var vc config.ViperConfig
		if cfgErr = v.Unmarshal(&vc); cfgErr != nil {
			return
		}
		cfg, cfgErr = vc.Translate()
	})
	if cfgErr != nil {
		return config.Config{}, fmt.Errorf("secrets: gitleaks default rules: %w", cfgErr)
	}
	return cfg, nil
}

// Scan finds secrets in the files under dir. Baseline entries suppress findings (counted in
// suppressed); an expired entry suppresses nothing and is reported through warn.
func Scan(ctx context.Context, dir string, base *Baseline, now time.Time, warn func(string)) (findings []run.Finding, suppressed int, err error) {
	c, err := rules()
	if err != nil {
		return nil, 0, err
	}
	d := detect.NewDetectorContext(ctx, c)
	d.Redact = 100
	d.MaxDecodeDepth = 1
	if base != nil {
		for _, e := range base.Entries {
			if !e.Expires.IsZero() && now.After(e.Expires) && warn != nil {
				warn(fmt.Sprintf("%s:%d: the suppression of %s expired on %s; it no longer applies (reason was: %s)",
					base.File, e.Line, e.describe(), e.Expires.Format(time.DateOnly), e.Reason))
			}
		}
	}
	var files []string
	err = filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if de.IsDir() {
			if de.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !de.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if rel = filepath.ToSlash(rel); rel == BaselineFile {
			return nil
		}
		if fi, err := de.Info(); err != nil || fi.Size() > MaxFileSize || fi.Size() == 0 {
			return err
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("secrets: %w", err)
	}
	// gitleaks' rules are regular expressions run over every file: about 1 MB/s a core.
	// Files are scanned on up to Workers cores; the detector is safe for that (gitleaks'
	// own file scan shares one the same way).
	per := make([][]run.Finding, len(files))
	errs := make([]error, len(files))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(Workers, max(1, len(files))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				per[i], errs[i] = scanFile(ctx, d, dir, files[i])
			}
		}()
	}
feed:
	for i := range files {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if ctx.Err() != nil {
		return nil, 0, fmt.Errorf("secrets: %w", ctx.Err())
	}
	for i, fs := range per {
		if errs[i] != nil {
			return nil, 0, fmt.Errorf("secrets: %w", errs[i])
		}
		for _, f := range fs {
			if base.suppresses(f, now) {
				suppressed++
				continue
			}
			findings = append(findings, f)
		}
	}
	return findings, suppressed, nil
}

// Workers is how many files Scan reads at once: the machine's cores, at most 4, so that a
// gate beside a test suite takes no more than its share.
var Workers = min(4, runtime.GOMAXPROCS(0))

func scanFile(ctx context.Context, d *detect.Detector, dir, rel string) ([]run.Finding, error) {
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	if bytes.IndexByte(b[:min(len(b), 8000)], 0) >= 0 {
		return nil, nil // binary
	}
	var out []run.Finding
	for _, f := range d.DetectContext(ctx, detect.Fragment{Raw: string(b), FilePath: rel}) {
		out = append(out, run.Finding{
			Rule: f.RuleID, Severity: Severity, Message: f.Description,
			File: rel, Line: f.StartLine + 1, Match: clip(f.Match),
			Fingerprint: fmt.Sprintf("%s:%s:%d", rel, f.RuleID, f.StartLine+1),
		})
	}
	return out, nil
}

// clip keeps a redacted match to one short line: a private key's match is its whole block.
func clip(m string) string {
	if i := strings.IndexAny(m, "\r\n"); i >= 0 {
		m = m[:i] + " ..."
	}
	if len(m) > 120 {
		m = m[:117] + "..."
	}
	return strings.ToValidUTF8(m, "?")
}

// Kind is gate/secrets' scanner: the baseline comes from the checkout (BaselineFile, or
// with: baseline: PATH); with: commits: true also scans the lines the pushed commits added
// (ScanCommits).
func Kind(now func() time.Time) gate.ScanFunc {
	return func(ctx context.Context, in gate.Input) (gate.Output, error) {
		name := BaselineFile
		if v := in.With["baseline"]; len(v) > 0 && v[0] != "" {
			name = v[0]
		}
		if !fs.ValidPath(name) {
			return gate.Output{}, fmt.Errorf("%w: baseline: %q is not a path inside the repository", gate.ErrOption, name)
		}
		var base *Baseline
		b, err := os.ReadFile(filepath.Join(in.Dir, filepath.FromSlash(name)))
		switch {
		case err == nil:
			if base, err = ParseBaseline(name, b); err != nil {
				return gate.Output{}, err
			}
		case !os.IsNotExist(err):
			return gate.Output{}, err
		}
		fs, n, err := Scan(ctx, in.Dir, base, now(), in.Log)
		if err != nil {
			return gate.Output{}, err
		}
		out := gate.Output{Findings: fs, Suppressed: n}
		if v := in.With["commits"]; len(v) == 0 || v[0] != "true" {
			return out, nil
		}
		if in.Job == nil || in.Job.Info == nil {
			return out, nil
		}
		src := in.Job.Info.Source
		if fi, err := os.Stat(src.Repo); src.Repo == "" || src.SHA == "" || err != nil || !fi.IsDir() {
			in.Log("commits: the pushed commits are scanned only for runs of a repository on this server's disk; scanned the tree alone")
			return out, nil
		}
		cfs, cn, err := ScanCommits(ctx, src.Repo, in.Job.Info.Trigger.Before, src.SHA, base, now())
		if err != nil {
			return gate.Output{}, err
		}
		seen := map[string]bool{}
		for _, f := range fs {
			seen[f.Fingerprint] = true
		}
		for _, f := range cfs {
			if !seen[f.Fingerprint] { // still in the tree: reported once
				seen[f.Fingerprint] = true
				out.Findings = append(out.Findings, f)
			}
		}
		out.Suppressed += cn
		return out, nil
	}
}
