package promote

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/paved/paved/internal/insight/coverage"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// FreightID is the digest that names a freight: sha256 over its artifacts, repo, sha and
// config hash, so the same build is the same freight wherever it is seen.
func FreightID(artifacts map[string]string, repo, sha, configHash string) string {
	keys := make([]string, 0, len(artifacts))
	for k := range artifacts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "artifact %s %s\n", k, artifacts[k])
	}
	fmt.Fprintf(h, "repo %s\nsha %s\nconfig %s\n", repo, sha, configHash)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Alias is a freight's short name: its digest's first 10 hex digits after "f-".
func Alias(id string) string {
	const p = len("sha256:")
	if len(id) < p+10 {
		return id
	}
	return "f-" + id[p:p+10]
}

// FreightFromEvents builds the freight of a run from its events: the digests its deploy
// stages deployed successfully, with its gate decisions. ok is false when
// the run did not succeed or deployed nothing: such a run makes no freight.
func FreightFromEvents(events []run.Event) (f store.Freight, ok bool) {
	var gates []run.Gate
	var info *run.Info
	arts := map[string]string{}
	cov := map[string]*run.Coverage{} // by stage: a retried stage's last attempt counts
	succeeded := false
	var at time.Time
	for _, e := range events {
		switch e.Type {
		case run.RunCreated:
			info = e.Info
		case run.GateEvaluated:
			if e.Gate != nil {
				gates = append(gates, *e.Gate)
			}
		case run.CoverageReported:
			if e.Coverage != nil {
				cov[e.Stage] = e.Coverage
			}
		case run.DeploymentFinished:
			// A pull request's preview is not a step on the promotion path.
			if d := e.Deployment; d != nil && d.Outcome == store.DeploymentSucceeded && d.Artifact != "" && !isPreview(d.Environment) {
				arts[e.Stage] = d.Artifact
			}
		case run.RunFinished:
			succeeded = e.Status == string(run.Succeeded)
			at = e.Time
		}
	}
	if info == nil || !succeeded || len(arts) == 0 {
		return store.Freight{}, false
	}
	cfg, _ := json.Marshal(info.Pipeline)
	sum := sha256.Sum256(cfg)
	f = store.Freight{Artifacts: arts, Repo: info.Repo, SHA: info.SHA, ConfigHash: hex.EncodeToString(sum[:]),
		RunID: events[0].RunID, Gates: gates, CreatedAt: at}
	f.Coverage = sumCoverage(cov)
	f.Author = info.Trigger.Author
	if f.Author == "" {
		f.Coverage = sumCoverage(cov)
		f.Author = info.Trigger.AuthorName
	}
	f.ID = FreightID(f.Artifacts, f.Repo, f.SHA, f.ConfigHash)
	f.Alias = Alias(f.ID)
	return f, true
}

// sumCoverage adds the coverage of several stages (a Go and a JS test stage) into one.
func sumCoverage(by map[string]*run.Coverage) *run.Coverage {
	if len(by) == 0 {
		return nil
	}
	stages := make([]string, 0, len(by))
	for st := range by {
		stages = append(stages, st)
	}
	sort.Strings(stages)
	reps := make([]coverage.Report, 0, len(by))
	out := &run.Coverage{Files: []string{}}
	var notes []string
	for _, st := range stages {
		c := by[st]
		if c.Format != "" { // a stage whose reports were missing or unreadable adds nothing
			reps = append(reps, coverage.Report{Format: c.Format, Covered: c.Covered, Total: c.Total})
		}
		for _, f := range c.Files {
			out.Files = append(out.Files, st+":"+f)
		}
		if c.Note != "" {
			notes = append(notes, st+": "+c.Note)
		}
	}
	m := coverage.Merge(reps)
	out.Format, out.Covered, out.Total, out.Percent = m.Format, m.Covered, m.Total, m.Percent()
	out.Note = strings.Join(notes, "; ")
	return out
}
