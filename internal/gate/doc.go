// Package gate runs paved's security gates: built-in stage kinds (uses: gate/secrets,
// gate/sbom, gate/vulns, gate/sarif, gate/policy) that scan a commit inside the server and
// decide, per environment, whether what they found blocks the run or only warns.
//
// The scanners live in the sub-packages (secrets, sbom, vuln, sarif, policy) and know nothing
// of runs: each turns files into findings. This package gives them a workspace (the commit's
// tree plus the artifacts of upstream stages), applies the Policy that maps a finding's
// severity to block or warn for the environment the gate guards, and records the result as
// one GateEvaluated event. Findings are redacted by their scanner before they reach this
// package; nothing here ever logs a raw match.
package gate
