package secrets

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"gopkg.in/yaml.v3"

	"github.com/paved/paved/internal/run"
)

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// ErrBaseline is wrapped by every error of ParseBaseline.
var ErrBaseline = errors.New("secrets: bad baseline file")

// Baseline is a repository's list of waived secret findings. Every entry says why and until
// when: a suppression without an expiry becomes a permanent hole nobody reviews.
type Baseline struct {
	File    string  `json:"file"`
	Entries []Entry `json:"entries"`
}

// Entry waives the findings it matches until Expires (inclusive). It matches by Fingerprint
// (file:rule:line, as a finding records it), or by Path (a glob, ** for any depth) and,
// when set, Rule.
type Entry struct {
	Line        int       `json:"line"` // in the baseline file, for messages
	Fingerprint string    `json:"fingerprint,omitempty"`
	Path        string    `json:"path,omitempty"`
	Rule        string    `json:"rule,omitempty"`
	Reason      string    `json:"reason"`
	Expires     time.Time `json:"expires"`
}

func (e Entry) describe() string {
	if e.Fingerprint != "" {
		return e.Fingerprint
	}
	r := e.Rule
	if r == "" {
		r = "any rule"
	}
	return r + " in " + e.Path
}

type rawEntry struct {
	Fingerprint string `yaml:"fingerprint"`
	Path        string `yaml:"path"`
	Rule        string `yaml:"rule"`
	Reason      string `yaml:"reason"`
	Expires     string `yaml:"expires"`
}

// ParseBaseline reads a baseline file; name is its path, for messages (file:line: ...).
func ParseBaseline(name string, b []byte) (*Baseline, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			return nil, fmt.Errorf("%w: %s:%s: %s", ErrBaseline, name, m[1], m[2])
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrBaseline, name, msg)
	}
	base := &Baseline{File: name}
	if len(doc.Content) == 0 {
		return base, nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: %s:%d: want a mapping with a suppressions: list", ErrBaseline, name, top.Line)
	}
	var list *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		k := top.Content[i]
		if k.Value != "suppressions" {
			return nil, fmt.Errorf("%w: %s:%d: unknown key %q (the only key is suppressions)", ErrBaseline, name, k.Line, k.Value)
		}
		list = top.Content[i+1]
	}
	if list == nil || list.Kind == yaml.ScalarNode && list.Tag == "!!null" {
		return base, nil
	}
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%w: %s:%d: suppressions must be a list", ErrBaseline, name, list.Line)
	}
	for _, n := range list.Content {
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%w: %s:%d: a suppression is a mapping of fingerprint or path, rule, reason, expires", ErrBaseline, name, n.Line)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch k := n.Content[i]; k.Value {
			case "fingerprint", "path", "rule", "reason", "expires":
			default:
				return nil, fmt.Errorf("%w: %s:%d: unknown key %q (use fingerprint, path, rule, reason, expires)", ErrBaseline, name, k.Line, k.Value)
			}
		}
		var r rawEntry
		if err := n.Decode(&r); err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %s", ErrBaseline, name, n.Line, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		e := Entry{Line: n.Line, Fingerprint: r.Fingerprint, Path: r.Path, Rule: r.Rule, Reason: strings.TrimSpace(r.Reason)}
		switch {
		case e.Fingerprint == "" && e.Path == "":
			return nil, fmt.Errorf("%w: %s:%d: a suppression needs a fingerprint (file:rule:line) or a path glob", ErrBaseline, name, n.Line)
		case e.Path != "" && !doublestar.ValidatePattern(e.Path):
			return nil, fmt.Errorf("%w: %s:%d: path %q is not a valid glob", ErrBaseline, name, n.Line, e.Path)
		case e.Reason == "":
			return nil, fmt.Errorf("%w: %s:%d: a suppression needs a reason: say why this is not a live secret", ErrBaseline, name, n.Line)
		case r.Expires == "":
			return nil, fmt.Errorf("%w: %s:%d: a suppression needs expires: YYYY-MM-DD, when it is reviewed again", ErrBaseline, name, n.Line)
		}
		t, err := time.Parse(time.DateOnly, r.Expires)
		if err != nil {
			return nil, fmt.Errorf("%w: %s:%d: expires %q is not a date like 2026-12-31", ErrBaseline, name, n.Line, r.Expires)
		}
		// Inclusive: the entry holds through the whole of its last day, in UTC.
		e.Expires = t.Add(24*time.Hour - time.Nanosecond)
		base.Entries = append(base.Entries, e)
	}
	return base, nil
}

// suppresses reports whether an unexpired entry matches f.
func (b *Baseline) suppresses(f run.Finding, now time.Time) bool {
	if b == nil {
		return false
	}
	for _, e := range b.Entries {
		if now.After(e.Expires) {
			continue
		}
		if e.Fingerprint != "" {
			if e.Fingerprint == f.Fingerprint {
				return true
			}
			continue
		}
		if e.Rule != "" && e.Rule != f.Rule {
			continue
		}
		if ok, _ := doublestar.Match(e.Path, f.File); ok {
			return true
		}
	}
	return false
}
