package promote

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

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
		case run.DeploymentFinished:
			if d := e.Deployment; d != nil && d.Outcome == store.DeploymentSucceeded && d.Artifact != "" {
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
	f.Author = info.Trigger.Author
	if f.Author == "" {
		f.Author = info.Trigger.AuthorName
	}
	f.ID = FreightID(f.Artifacts, f.Repo, f.SHA, f.ConfigHash)
	f.Alias = Alias(f.ID)
	return f, true
}
