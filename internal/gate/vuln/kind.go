package vuln

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/paved/paved/internal/gate"
	"github.com/paved/paved/internal/gate/sbom"
	"github.com/paved/paved/internal/run"
)

// Findings matches components against db. Records without a rating count as unrated.
func Findings(db *DB, cs []sbom.Component, unrated gate.Severity) ([]run.Finding, error) {
	var out []run.Finding
	for _, c := range cs {
		ms, err := db.Match(c)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			sev, score, source := m.Record.Rating(m.Affected, unrated)
			msg := m.Record.Summary
			if len(m.Record.Aliases) > 0 {
				msg = strings.TrimSpace(msg + " (" + strings.Join(m.Record.Aliases, ", ") + ")")
			}
			switch {
			case score > 0:
				msg += fmt.Sprintf("; %s score %.1f", source, score)
			case source == "unrated":
				msg += "; no severity in the database, counted as " + unrated.String()
			}
			if m.Fixed != "" {
				msg += "; fixed in " + m.Fixed
			}
			out = append(out, run.Finding{
				Rule: m.Record.ID, Severity: sev.String(), Message: strings.TrimPrefix(msg, "; "),
				File: c.File, Package: c.Ecosystem + "/" + c.Name, Version: c.Version, Fixed: m.Fixed,
				Fingerprint: m.Record.ID + ":" + c.Ecosystem + "/" + c.Name + "@" + c.Version,
			})
		}
	}
	return out, nil
}

// Kind is gate/vulns' scanner. The components come from an SBOM (with: sbom: PATH, by
// default sbom.cdx.json when an upstream gate/sbom stage made one), else from the
// checkout's lockfiles. The database is with: db: PATH when set, else defaultDB; a record
// without a rating counts as with: unrated: SEVERITY (default HIGH: a known vulnerability
// nobody rated is not a small one until someone says so).
//
// A database the stage or the server names explicitly must exist. The default one
// (optionalDB, in the data directory) may not exist yet: then the gate checks nothing and
// warns saying so, so that a new installation's pipelines run before anyone downloaded a
// database.
func Kind(cache *Cache, defaultDB string, optionalDB bool) gate.ScanFunc {
	return func(ctx context.Context, in gate.Input) (gate.Output, error) {
		dbPath := defaultDB
		if v := in.With["db"]; len(v) > 0 && v[0] != "" {
			dbPath, optionalDB = v[0], false
		}
		if dbPath == "" {
			return gate.Output{}, errors.New("vuln: no OSV database configured: set with: db: PATH on the stage or PAVED_OSV_DB for the server (a directory of OSV JSON records or all.zip files)")
		}
		if _, err := os.Stat(dbPath); optionalDB && os.IsNotExist(err) {
			msg := "no OSV database at " + dbPath + ": nothing was checked (download an ecosystem's all.zip from osv.dev there, or set PAVED_OSV_DB)"
			in.Log(msg)
			return gate.Output{Skipped: msg}, nil
		}
		unrated := gate.High
		if v := in.With["unrated"]; len(v) > 0 {
			s, err := gate.ParseSeverity(v[0])
			if err != nil {
				return gate.Output{}, fmt.Errorf("%w: unrated: %w", gate.ErrOption, err)
			}
			unrated = s
		}
		db, err := cache.Get(dbPath)
		if err != nil {
			return gate.Output{}, err
		}
		cs, from, err := components(ctx, in)
		if err != nil {
			return gate.Output{}, err
		}
		in.Log(fmt.Sprintf("%d components from %s against %d OSV records in %s", len(cs), from, db.Records, db.Path))
		unversioned := 0
		for _, c := range cs {
			if c.Version == "" {
				unversioned++
			}
		}
		if unversioned > 0 {
			in.Log(fmt.Sprintf("%d components without a pinned version were not checked (pin them in a lockfile)", unversioned))
		}
		fs, err := Findings(db, cs, unrated)
		return gate.Output{Findings: fs}, err
	}
}

func components(ctx context.Context, in gate.Input) ([]sbom.Component, string, error) {
	name, explicit := sbom.DefaultOutput, false
	if v := in.With["sbom"]; len(v) > 0 && v[0] != "" {
		name, explicit = v[0], true
	}
	if !fs.ValidPath(name) {
		return nil, "", fmt.Errorf("%w: sbom: %q is not a relative path", gate.ErrOption, name)
	}
	b, err := os.ReadFile(filepath.Join(in.Dir, filepath.FromSlash(name)))
	switch {
	case err == nil:
		bom, err := sbom.Decode(name, b)
		if err != nil {
			return nil, "", err
		}
		cs := sbom.Components(bom)
		for i := range cs {
			if cs[i].File == "" {
				cs[i].File = name
			}
		}
		return cs, name, nil
	case explicit || !os.IsNotExist(err):
		return nil, "", fmt.Errorf("vuln: the SBOM: %w", err)
	}
	cs, err := sbom.Scan(ctx, in.Dir)
	return cs, "the lockfiles", err
}
