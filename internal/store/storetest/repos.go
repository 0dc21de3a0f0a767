package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/trigger"
)

func testRepo(name string, created time.Time) trigger.Repo {
	return trigger.Repo{
		FullName: name, CloneURL: "https://git.example.com/" + name + ".git", Team: "payments",
		Provider: "gitlab", WebhookSecret: "s3cr3t-" + name, CreatedAt: created,
		ForgeCredential: "GITLAB_TOKEN", ForgeAPI: "https://gitlab.example.com/api/v4",
	}
}

func diffRepo(got, want trigger.Repo) bool {
	if !got.CreatedAt.Equal(want.CreatedAt) {
		return true
	}
	got.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
	return got != want
}

func getRepo(t *testing.T, s Store, name string) trigger.Repo {
	t.Helper()
	r, err := s.RepoGet(t.Context(), name)
	if err != nil {
		t.Fatalf("RepoGet(%s): %v", name, err)
	}
	return r
}

func testRepos(t *testing.T, h Harness) {
	s := h.Open(t)
	if repos, err := s.RepoList(t.Context()); err != nil || len(repos) != 0 {
		t.Errorf("RepoList on an empty store = %v, %v; want none", repos, err)
	}
	if _, err := s.RepoGet(t.Context(), "acme/payments"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RepoGet(unknown) = %v, want ErrNotFound", err)
	}

	first := testRepo("acme/payments", at(0).In(time.FixedZone("UTC+1", 3600)))
	if err := s.RepoPut(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	if got := getRepo(t, s, "acme/payments"); diffRepo(got, first) {
		t.Errorf("RepoGet = %+v, want %+v", got, first)
	}

	// Registering again replaces everything but created_at.
	update := trigger.Repo{FullName: "acme/payments", CloneURL: "/srv/git/payments", Team: "platform",
		Provider: "local", WebhookSecret: "", CreatedAt: at(time.Hour)}
	if err := s.RepoPut(t.Context(), update); err != nil {
		t.Fatal(err)
	}
	want := update
	want.CreatedAt = first.CreatedAt
	if got := getRepo(t, s, "acme/payments"); diffRepo(got, want) {
		t.Errorf("after update RepoGet = %+v, want %+v", got, want)
	}

	for _, name := range []string{"zeta/app", "acme/billing", "group/sub/app"} {
		if err := s.RepoPut(t.Context(), testRepo(name, at(time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	repos, err := s.RepoList(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range repos {
		names = append(names, r.FullName)
	}
	if want := []string{"acme/billing", "acme/payments", "group/sub/app", "zeta/app"}; !slices.Equal(names, want) {
		t.Errorf("RepoList = %v, want %v", names, want)
	}
	if diffRepo(repos[0], testRepo("acme/billing", at(time.Minute))) {
		t.Errorf("RepoList()[0] = %+v", repos[0])
	}
}

// testReopen: everything written is there after the store is closed and opened again, and
// appends go on from where the run was.
func testReopen(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("the store's data does not outlive Close")
	}
	s := h.Open(t)
	sum := createRun(t, s, summary("run-1", at(0)))
	sum.Phase = run.Building
	appendNext(t, s, &sum, stageEvent(run.StageQueued), stageEvent(run.StageStarted))
	wantEvents := listEvents(t, s, store.EventListParams{RunID: "run-1"})
	lines := []run.LogLine{logLine("run-1", "build", 1, "one"), logLine("run-1", "build", 2, "two")}
	if err := s.LogAppend(t.Context(), lines); err != nil {
		t.Fatal(err)
	}
	repo := testRepo("acme/payments", at(0))
	if err := s.RepoPut(t.Context(), repo); err != nil {
		t.Fatal(err)
	}

	s = h.Reopen(t, s)

	if d := diffEvents(listEvents(t, s, store.EventListParams{RunID: "run-1"}), wantEvents); d != "" {
		t.Errorf("events after reopen: %s", d)
	}
	got, err := s.RunGet(t.Context(), "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if d := diffSummary(got, sum); d != "" {
		t.Errorf("run after reopen: %s", d)
	}
	if d := diffLogs(listLogs(t, s, store.LogListParams{RunID: "run-1", Stage: "build"}), lines); d != "" {
		t.Errorf("logs after reopen: %s", d)
	}
	if got := getRepo(t, s, "acme/payments"); diffRepo(got, repo) {
		t.Errorf("repo after reopen = %+v, want %+v", got, repo)
	}
	stale := sum
	stale.LastSeq = 1
	if err := s.EventAppend(t.Context(), nextParams(&stale, stageEvent(run.StageFinished))); !errors.Is(err, store.ErrConflict) {
		t.Errorf("stale append after reopen = %v, want ErrConflict", err)
	}
	sum.Phase, sum.FinishedAt = run.Succeeded, at(time.Hour)
	appendNext(t, s, &sum, stageEvent(run.StageFinished), run.Event{Type: run.RunFinished, Status: string(run.Succeeded), Time: at(time.Hour)})
	if got := seqs(listEvents(t, s, store.EventListParams{RunID: "run-1"})); !slices.Equal(got, seqRange(1, 5)) {
		t.Errorf("after reopen and append the run has events %v, want 1..5", got)
	}
}
