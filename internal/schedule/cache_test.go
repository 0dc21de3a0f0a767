package schedule

import (
	"context"
	"strings"
	"testing"

	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
)

// TestCacheEvents: a stage's caches reach the executor with the run's scopes, and what the
// executor reports becomes CacheRestored and CacheSaved events that the fold keeps.
func TestCacheEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ":memory:", nil)
	p := stages([3]string{"build", "", "echo built"})
	p.Stages[0].Cache = []pipeline.Cache{{KeyFiles: []string{"go.sum"}, Paths: []string{".gocache"}, RestoreKeys: []string{"build-"}}}
	id, err := h.sched.Create(context.Background(), CreateParams{Info: run.Info{
		Repo: "a/b", Pipeline: p, DefaultBranch: "trunk",
		Trigger: run.Trigger{Kind: "pull_request", Branch: "trunk"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	st := h.wait(id)
	if st.Phase != run.Succeeded {
		t.Fatalf("%s: %s", st.Phase, st.Reason)
	}
	jobs := h.exec.Jobs()
	c := jobs[0].Caches[0]
	if c.Key != "build" || c.WriteScope != "pull_request:trunk" || len(c.ReadScopes) != 2 || c.ReadScopes[1] != "branch:trunk" {
		t.Errorf("job cache %+v: a pull request must write its own scope and read the default branch's", c)
	}
	var types []run.Type
	for _, e := range h.events(id) {
		if e.Type == run.CacheRestored || e.Type == run.CacheSaved {
			types = append(types, e.Type)
			if e.Cache == nil || e.Cache.Paths[0] != ".gocache" || e.Status != e.Cache.Status {
				t.Errorf("event %+v", e)
			}
		}
	}
	if len(types) != 2 || types[0] != run.CacheRestored || types[1] != run.CacheSaved {
		t.Errorf("cache events %v", types)
	}
	got := st.Stage("build").Caches
	if len(got) != 2 || got[0].Op != "restore" || got[0].Status != "miss" || got[1].Op != "save" || got[1].Status != "saved" {
		t.Errorf("folded caches %+v", got)
	}
}

// TestCacheNamespaceHasTeam: the same repo and stage run for two teams (a repo registered
// again for another team) get different cache namespaces, so one team never restores what
// the other's stages saved.
func TestCacheNamespaceHasTeam(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ":memory:", nil)
	ns := map[string]string{}
	for _, team := range []string{"red", "blue"} {
		p := stages([3]string{"build", "", "echo built"})
		p.Stages[0].Cache = []pipeline.Cache{{KeyFiles: []string{"go.sum"}, Paths: []string{".gocache"}}}
		id := h.createInfo(run.Info{Repo: "a/b", Team: team, Pipeline: p})
		if st := h.wait(id); st.Phase != run.Succeeded {
			t.Fatalf("%s: %s", st.Phase, st.Reason)
		}
		for _, j := range h.exec.Jobs() {
			if j.RunID == id {
				ns[team] = j.Caches[0].Namespace
			}
		}
	}
	if ns["red"] == "" || ns["red"] == ns["blue"] || !strings.HasPrefix(ns["red"], "red\x00") {
		t.Errorf("cache namespaces red %q, blue %q: want different, each starting with its team", ns["red"], ns["blue"])
	}
}
