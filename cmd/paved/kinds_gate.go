package main

import (
	"os"
	"path/filepath"
	"time"

	"github.com/paved/paved/internal/gate"
	"github.com/paved/paved/internal/gate/policy"
	"github.com/paved/paved/internal/gate/sarif"
	"github.com/paved/paved/internal/gate/sbom"
	"github.com/paved/paved/internal/gate/secrets"
	"github.com/paved/paved/internal/gate/vuln"
	"github.com/paved/paved/internal/schedule"
)

// gateKeys are the with: keys every gate takes: the environment whose policy judges it and
// per-stage overrides of that policy's thresholds.
var gateKeys = []string{"environment", "block_at", "warn_at"}

// osvDB is the offline OSV database gate/vulns reads unless a stage names one: the
// PAVED_OSV_DB environment variable, else <data>/gates/osv (a directory of OSV records or
// per-ecosystem all.zip files).
func osvDB(env kindEnv) (path string, optional bool) {
	if v := os.Getenv("PAVED_OSV_DB"); v != "" {
		return v, false
	}
	return filepath.Join(env.Data, "gates", "osv"), true
}

// gateBuiltins are the gate/ stage kinds (internal/gate).
func gateBuiltins() []builtin {
	mk := func(name string, scan func(env kindEnv) gate.ScanFunc, artifacts bool, fixed *gate.Rule) func(env kindEnv) (schedule.Kind, error) {
		return func(env kindEnv) (schedule.Kind, error) {
			return &gate.Kind{Name: name, Scan: scan(env), Policy: gate.DefaultPolicy(), Fixed: fixed,
				Blobs: env.Artifacts, Artifacts: artifacts, TempDir: filepath.Join(env.Data, "gates", "tmp")}, nil
		}
	}
	vulnCache := &vuln.Cache{}
	keys := func(k ...string) []string { return append(append([]string{}, gateKeys...), k...) }
	return []builtin{
		// A committed secret is leaked whatever the environment: any finding blocks.
		{name: "gate/secrets", keys: keys("baseline", "commits"), make: mk("gate/secrets",
			func(kindEnv) gate.ScanFunc { return secrets.Kind(time.Now) }, false, &gate.Rule{Block: gate.Low, Warn: gate.Info})},
		{name: "gate/sbom", keys: keys("output"), make: mk("gate/sbom",
			func(env kindEnv) gate.ScanFunc { return sbom.Kind(env.Artifacts) }, false, nil)},
		{name: "gate/vulns", keys: keys("db", "sbom", "unrated"), make: mk("gate/vulns",
			func(env kindEnv) gate.ScanFunc {
				db, optional := osvDB(env)
				return vuln.Kind(vulnCache, db, optional)
			}, true, nil)},
		{name: "gate/sarif", keys: keys("files"), make: mk("gate/sarif",
			func(kindEnv) gate.ScanFunc { return sarif.Kind() }, true, nil)},
		// A deny blocks and a warn warns in every environment: the policy's author decided
		// which is which.
		{name: "gate/policy", keys: keys("paths", "policy_dir", "builtin", "disable", "exempt_images", "allowed_registries",
			"allowed_host_paths", "max_cpu", "max_memory", "disallowed_tags", "allowed_capabilities", "required_drop_capabilities"),
			make: mk("gate/policy", func(kindEnv) gate.ScanFunc { return policy.Kind() }, true, &gate.Rule{Block: gate.High, Warn: gate.Low})},
	}
}
