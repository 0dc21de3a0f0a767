// Package sarif ingests SARIF 2.1.0 logs, the format gosec, semgrep, CodeQL, Trivy and the
// SonarQube exporters write, into findings: rule, location, and a severity from the
// result's (or its rule's) security-severity score, else its level.
package sarif

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/paved/paved/internal/gate"
	"github.com/paved/paved/internal/run"
)

// Log is the part of a SARIF 2.1.0 log ingestion reads.
type Log struct {
	Version string `json:"version"`
	Runs    []Run  `json:"runs"`
}

type Run struct {
	Tool struct {
		Driver struct {
			Name  string `json:"name"`
			Rules []Rule `json:"rules"`
		} `json:"driver"`
	} `json:"tool"`
	Results []Result `json:"results"`
}

type Rule struct {
	ID                   string `json:"id"`
	Name                 string `json:"name"`
	DefaultConfiguration *struct {
		Level string `json:"level"`
	} `json:"defaultConfiguration"`
	ShortDescription *Message           `json:"shortDescription"`
	MessageStrings   map[string]Message `json:"messageStrings"`
	Properties       Properties         `json:"properties"`
}

type Message struct {
	Text      string   `json:"text"`
	Markdown  string   `json:"markdown"`
	ID        string   `json:"id"`
	Arguments []string `json:"arguments"`
}

// Properties holds the property bag keys that carry severity.
type Properties struct {
	SecuritySeverity any `json:"security-severity"`
}

type Result struct {
	RuleID    string `json:"ruleId"`
	RuleIndex *int   `json:"ruleIndex"`
	Rule      *struct {
		ID    string `json:"id"`
		Index *int   `json:"index"`
	} `json:"rule"`
	Kind         string     `json:"kind"`
	Level        string     `json:"level"`
	Message      Message    `json:"message"`
	Locations    []Location `json:"locations"`
	Suppressions []struct {
		Status string `json:"status"`
	} `json:"suppressions"`
	Properties Properties `json:"properties"`
}

type Location struct {
	PhysicalLocation *struct {
		ArtifactLocation *struct {
			URI       string `json:"uri"`
			URIBaseID string `json:"uriBaseId"`
		} `json:"artifactLocation"`
		Region *struct {
			StartLine int `json:"startLine"`
		} `json:"region"`
	} `json:"physicalLocation"`
}

// ErrSARIF is wrapped by Parse's errors.
var ErrSARIF = errors.New("sarif: bad SARIF log")

// Parse reads a SARIF 2.1.0 log; name is its file, for messages.
func Parse(name string, b []byte) (*Log, error) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // some Windows tools write a byte-order mark
	var l Log
	if err := json.Unmarshal(b, &l); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		off := int64(-1)
		if errors.As(err, &se) {
			off = se.Offset
		} else if errors.As(err, &te) {
			off = te.Offset
		}
		if off >= 0 {
			line := 1 + bytes.Count(b[:min(int(off), len(b))], []byte("\n"))
			return nil, fmt.Errorf("%w: %s:%d: %v", ErrSARIF, name, line, err)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrSARIF, name, err)
	}
	if l.Version != "2.1.0" {
		return nil, fmt.Errorf("%w: %s: version %q: paved reads SARIF 2.1.0 (convert older logs with the SARIF multitool)", ErrSARIF, name, l.Version)
	}
	return &l, nil
}

// Counts are results per effective level, and those suppressed.
type Counts struct {
	Error, Warning, Note, None, Suppressed int
}

// Findings turns the log's results into findings, source naming the file. A result that is
// suppressed (every one of its suppressions accepted) is counted, not reported.
func (l *Log) Findings(source string) ([]run.Finding, Counts) {
	var out []run.Finding
	var c Counts
	for _, r := range l.Runs {
		for _, res := range r.Results {
			if suppressed(res) {
				c.Suppressed++
				continue
			}
			rule := r.rule(res)
			level := effectiveLevel(res, rule)
			switch level {
			case "error":
				c.Error++
			case "note":
				c.Note++
			case "none":
				c.None++
			default:
				c.Warning++
			}
			f := run.Finding{Rule: res.ruleID(), Tool: r.Tool.Driver.Name, Severity: severity(res, rule, level).String(),
				Message: message(res, rule)}
			if f.Rule == "" && rule != nil {
				f.Rule = rule.ID
			}
			f.File, f.Line = r.location(res)
			f.Fingerprint = fmt.Sprintf("%s:%s:%s:%d", f.Tool, f.Rule, f.File, f.Line)
			if f.File == "" {
				f.File = source
			}
			out = append(out, f)
		}
	}
	return out, c
}

func suppressed(r Result) bool {
	if len(r.Suppressions) == 0 {
		return false
	}
	for _, s := range r.Suppressions {
		if s.Status != "" && s.Status != "accepted" {
			return false
		}
	}
	return true
}

func (r Result) ruleID() string {
	if r.RuleID != "" {
		return r.RuleID
	}
	if r.Rule != nil {
		return r.Rule.ID
	}
	return ""
}

// rule is the result's rule metadata: by index when given, else by id.
func (r *Run) rule(res Result) *Rule {
	rules := r.Tool.Driver.Rules
	idx := res.RuleIndex
	if idx == nil && res.Rule != nil {
		idx = res.Rule.Index
	}
	if idx != nil && *idx >= 0 && *idx < len(rules) {
		return &rules[*idx]
	}
	if id := res.ruleID(); id != "" {
		for i := range rules {
			if rules[i].ID == id {
				return &rules[i]
			}
		}
	}
	return nil
}

// effectiveLevel is SARIF 3.27.10: the result's level; else "none" for a kind other than
// fail; else the rule's default configuration; else warning.
func effectiveLevel(res Result, rule *Rule) string {
	switch {
	case res.Level != "":
		return res.Level
	case res.Kind != "" && res.Kind != "fail":
		return "none"
	case rule != nil && rule.DefaultConfiguration != nil && rule.DefaultConfiguration.Level != "":
		return rule.DefaultConfiguration.Level
	}
	return "warning"
}

// severity maps security-severity (a CVSS-like score, GitHub's convention: >= 9 critical,
// >= 7 high, >= 4 medium, else low), else the level: error HIGH, warning MEDIUM, note LOW,
// none INFO.
func severity(res Result, rule *Rule, level string) gate.Severity {
	props := []Properties{res.Properties}
	if rule != nil {
		props = append(props, rule.Properties)
	}
	for _, p := range props {
		var score float64
		var ok bool
		switch v := p.SecuritySeverity.(type) {
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			score, ok = f, err == nil
		case float64:
			score, ok = v, true
		}
		if ok {
			if score <= 0 {
				return gate.Info
			}
			if s := gate.FromScore(score); s >= gate.Medium {
				return s
			}
			return gate.Low
		}
	}
	switch level {
	case "error":
		return gate.High
	case "warning":
		return gate.Medium
	case "note":
		return gate.Low
	}
	return gate.Info
}

// message is the result's text, or the rule's message string it names, arguments filled.
func message(res Result, rule *Rule) string {
	m := res.Message
	text := m.Text
	if text == "" && m.ID != "" && rule != nil {
		text = rule.MessageStrings[m.ID].Text
	}
	if text == "" {
		text = m.Markdown
	}
	for i, a := range m.Arguments {
		text = strings.ReplaceAll(text, "{"+strconv.Itoa(i)+"}", a)
	}
	if text == "" && rule != nil && rule.ShortDescription != nil {
		text = rule.ShortDescription.Text
	}
	text = strings.Join(strings.Fields(text), " ")
	if len(text) > 300 {
		text = text[:297] + "..."
	}
	return strings.ToValidUTF8(text, "?")
}

// location is the first physical location, its URI made relative (file:// and a
// uriBaseId's prefix removed).
func (r *Run) location(res Result) (string, int) {
	for _, l := range res.Locations {
		pl := l.PhysicalLocation
		if pl == nil || pl.ArtifactLocation == nil {
			continue
		}
		uri := pl.ArtifactLocation.URI
		if u, err := url.Parse(uri); err == nil && u.Scheme == "file" {
			uri = u.Path
		} else if err == nil && u.Scheme == "" {
			if p, err := url.PathUnescape(uri); err == nil {
				uri = p
			}
		}
		line := 0
		if pl.Region != nil {
			line = pl.Region.StartLine
		}
		return strings.TrimPrefix(uri, "./"), line
	}
	return "", 0
}
