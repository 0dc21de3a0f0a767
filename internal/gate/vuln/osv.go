// Package vuln matches dependencies against an OSV-format vulnerability database read
// offline: a directory of OSV JSON records, or the per-ecosystem all.zip files osv.dev
// publishes (https://osv-vulnerabilities.storage.googleapis.com/<ecosystem>/all.zip).
// Versions are compared by each ecosystem's own rules (osv-scalibr's semantic package);
// severity comes from the CVSS v3 or v4 vectors, else the database's own rating.
package vuln

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	cvss30 "github.com/pandatix/go-cvss/30"
	cvss31 "github.com/pandatix/go-cvss/31"
	cvss40 "github.com/pandatix/go-cvss/40"

	"github.com/paved/paved/internal/gate"
)

// Record is the part of an OSV record (https://ossf.github.io/osv-schema/) matching needs.
type Record struct {
	ID        string   `json:"id"`
	Aliases   []string `json:"aliases,omitempty"`
	Summary   string   `json:"summary,omitempty"`
	Withdrawn string   `json:"withdrawn,omitempty"`
	Severity  []struct {
		Type  string `json:"type"`
		Score string `json:"score"`
	} `json:"severity,omitempty"`
	Affected         []Affected      `json:"affected"`
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty"`
}

// Affected is one package a record affects, and which of its versions.
type Affected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
		PURL      string `json:"purl,omitempty"`
	} `json:"package"`
	Ranges []struct {
		Type   string  `json:"type"`
		Events []Event `json:"events"`
	} `json:"ranges,omitempty"`
	Versions          []string        `json:"versions,omitempty"`
	Severity          json.RawMessage `json:"severity,omitempty"`
	DatabaseSpecific  json.RawMessage `json:"database_specific,omitempty"`
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific,omitempty"`
}

// Event is one point of a range: exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// ErrRecord is wrapped by ParseRecord's errors.
var ErrRecord = errors.New("vuln: bad OSV record")

// ParseRecord reads one OSV JSON record; name is its file, for messages.
func ParseRecord(name string, b []byte) (*Record, error) {
	var r Record
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&r); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := 1 + bytes.Count(b[:min(int(se.Offset), len(b))], []byte("\n"))
			return nil, fmt.Errorf("%w: %s:%d: %v", ErrRecord, name, line, err)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrRecord, name, err)
	}
	if r.ID == "" {
		return nil, fmt.Errorf("%w: %s: no id", ErrRecord, name)
	}
	for i, a := range r.Affected {
		if a.Package.Ecosystem == "" || a.Package.Name == "" {
			return nil, fmt.Errorf("%w: %s: %s: affected[%d] names no package ecosystem and name", ErrRecord, name, r.ID, i)
		}
	}
	return &r, nil
}

// Rating is the record's severity for one affected package: the highest CVSS base score
// of its vectors (v4, v3.1, v3.0; the package's own before the record's), else the
// database's rating (GitHub's database_specific.severity, Go's and others'
// ecosystem_specific.severity), else fallback. score is the CVSS score, 0 without one.
func (r *Record) Rating(a *Affected, fallback gate.Severity) (sev gate.Severity, score float64, source string) {
	type vec struct{ Type, Score string }
	var vecs []vec
	var own []vec
	if len(a.Severity) > 0 {
		_ = json.Unmarshal(a.Severity, &own)
	}
	vecs = append(vecs, own...)
	for _, s := range r.Severity {
		vecs = append(vecs, vec(s))
	}
	for _, v := range vecs {
		if s, ok := cvssScore(v.Type, v.Score); ok && s > score {
			score, source = s, v.Type
		}
	}
	if source != "" {
		return gate.FromScore(score), score, source
	}
	for _, raw := range []json.RawMessage{a.DatabaseSpecific, a.EcosystemSpecific, r.DatabaseSpecific} {
		var ds struct {
			Severity any `json:"severity"`
		}
		if len(raw) == 0 || json.Unmarshal(raw, &ds) != nil {
			continue
		}
		if s, ok := ds.Severity.(string); ok {
			if v, err := gate.ParseSeverity(s); err == nil && v != gate.None {
				return v, 0, "database_specific"
			}
		}
	}
	return fallback, 0, "unrated"
}

// cvssScore is a vector's base score.
func cvssScore(typ, vector string) (float64, bool) {
	switch {
	case typ == "CVSS_V4" || strings.HasPrefix(vector, "CVSS:4.0/"):
		v, err := cvss40.ParseVector(vector)
		if err != nil {
			return 0, false
		}
		return v.Score(), true
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		v, err := cvss31.ParseVector(vector)
		if err != nil {
			return 0, false
		}
		return v.BaseScore(), true
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		v, err := cvss30.ParseVector(vector)
		if err != nil {
			return 0, false
		}
		return v.BaseScore(), true
	}
	return 0, false
}
