package vuln

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/osv-scalibr/semantic"

	"github.com/paved/paved/internal/gate/sbom"
)

// Match is a component one record affects.
type Match struct {
	Component sbom.Component
	Record    *Record
	Affected  *Affected
	// Fixed is the first version that fixes it, "" when none does.
	Fixed string
}

// osvVersion is a version as OSV writes it for the ecosystem: Go's without its v prefix and
// +incompatible suffix.
func osvVersion(eco, v string) string {
	if eco == sbom.Go {
		v = strings.TrimPrefix(v, "v")
		v = strings.TrimSuffix(v, "+incompatible")
	}
	return v
}

// ErrVersion is wrapped when a version cannot be compared in its ecosystem.
var ErrVersion = errors.New("vuln: cannot compare version")

// Match lists the records that affect c. A component without a version matches nothing.
func (db *DB) Match(c sbom.Component) ([]Match, error) {
	if c.Version == "" {
		return nil, nil
	}
	v := osvVersion(c.Ecosystem, c.Version)
	var out []Match
	for _, e := range db.index[key{c.Ecosystem, normaliseName(c.Ecosystem, c.Name)}] {
		a := &e.rec.Affected[e.aff]
		hit, fixed, err := affects(a, c.Ecosystem, v)
		if err != nil {
			return nil, fmt.Errorf("%s %s@%s against %s: %w", c.Ecosystem, c.Name, c.Version, e.rec.ID, err)
		}
		if hit {
			out = append(out, Match{Component: c, Record: e.rec, Affected: a, Fixed: fixed})
		}
	}
	return out, nil
}

// affects reports whether version v (OSV spelling) is affected: listed in versions, or
// inside a SEMVER or ECOSYSTEM range (GIT ranges name commits, not versions). fixed is the
// first fixing version after v in the range that matched.
func affects(a *Affected, eco, v string) (bool, string, error) {
	if slices.Contains(a.Versions, v) {
		return true, "", nil
	}
	ver, err := semantic.Parse(v, eco)
	if err != nil {
		return false, "", fmt.Errorf("%w %q: %w", ErrVersion, v, err)
	}
	for _, r := range a.Ranges {
		if r.Type != "SEMVER" && r.Type != "ECOSYSTEM" {
			continue
		}
		hit, fixed, err := inRange(r.Events, eco, ver)
		if err != nil {
			continue // an unparsable event spoils its range, not the others
		}
		if hit {
			return true, fixed, nil
		}
	}
	return false, "", nil
}

type point struct {
	e  Event
	at string
	v  semantic.Version // nil for introduced "0", before every version
}

// inRange is the OSV schema's evaluation: events sorted by version, v is affected after an
// introduced at or before it, until a fixed or limit at or before it or a last_affected
// before it.
func inRange(events []Event, eco string, v semantic.Version) (bool, string, error) {
	ps := make([]point, 0, len(events))
	for _, e := range events {
		p := point{e: e, at: e.Introduced + e.Fixed + e.LastAffected + e.Limit}
		if p.at != "0" || e.Introduced == "" {
			pv, err := semantic.Parse(osvVersion(eco, p.at), eco)
			if err != nil {
				return false, "", err
			}
			p.v = pv
		}
		ps = append(ps, p)
	}
	var sortErr error
	slices.SortStableFunc(ps, func(a, b point) int {
		switch {
		case a.v == nil && b.v == nil:
			return 0
		case a.v == nil:
			return -1
		case b.v == nil:
			return 1
		}
		c, err := a.v.Compare(b.v)
		if err != nil {
			sortErr = err
		}
		return c
	})
	if sortErr != nil {
		return false, "", sortErr
	}
	// rel is v compared with the point: >0 v is after it.
	rel := func(p point) int {
		if p.v == nil {
			return 1
		}
		c, _ := v.Compare(p.v)
		return c
	}
	affected := false
	for _, p := range ps {
		r := rel(p)
		switch {
		case p.e.Introduced != "" && r >= 0:
			affected = true
		case p.e.Fixed != "" && r >= 0, p.e.Limit != "" && r >= 0:
			affected = false
		case p.e.LastAffected != "" && r > 0:
			affected = false
		}
	}
	if !affected {
		return false, "", nil
	}
	for _, p := range ps {
		if p.e.Fixed != "" && rel(p) < 0 {
			return true, p.at, nil
		}
	}
	return true, "", nil
}
