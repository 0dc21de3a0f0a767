package api

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/paved/paved/internal/access"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/trigger"
)

// teamStore is the store as one caller sees it: the repos, runs, events and logs of their
// teams only. Lists and searches (and the insights computed from them) go through it, so
// that a handler cannot forget to filter. Something of another team is store.ErrNotFound.
type teamStore struct {
	Store
	p *access.Principal

	mu   sync.Mutex
	runs map[string]bool // runs already seen to be the caller's: their events need no check
}

// store is the API's store as the request's caller sees it.
func (s *Server) store(r *http.Request) Store {
	p := principal(r)
	if p != nil && p.Admin {
		return s.cfg.Store
	}
	return &teamStore{Store: s.cfg.Store, p: p, runs: map[string]bool{}}
}

func (t *teamStore) teams() []string {
	teams, _ := t.p.Teams()
	return teams
}

func (t *teamStore) RepoGet(ctx context.Context, name string) (trigger.Repo, error) {
	r, err := t.Store.RepoGet(ctx, name)
	if err == nil && !t.p.Sees(r.Team) {
		return trigger.Repo{}, fmt.Errorf("repo %s: %w", name, store.ErrNotFound)
	}
	return r, err
}

func (t *teamStore) RepoList(ctx context.Context) ([]trigger.Repo, error) {
	all, err := t.Store.RepoList(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(r trigger.Repo) bool { return !t.p.Sees(r.Team) }), nil
}

func (t *teamStore) RunGet(ctx context.Context, id string) (run.Summary, error) {
	sum, err := t.Store.RunGet(ctx, id)
	if err == nil && !t.p.Sees(sum.Team) {
		return run.Summary{}, fmt.Errorf("run %s: %w", id, store.ErrNotFound)
	}
	return sum, err
}

func (t *teamStore) saw(runs []run.Summary) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range runs {
		t.runs[r.ID] = true
	}
}

func (t *teamStore) check(ctx context.Context, id string) error {
	t.mu.Lock()
	ok := t.runs[id]
	t.mu.Unlock()
	if ok {
		return nil
	}
	_, err := t.RunGet(ctx, id)
	return err
}

// RunList lists each of the caller's teams and merges them, newest first, to the limit.
func (t *teamStore) RunList(ctx context.Context, p store.RunListParams) ([]run.Summary, error) {
	teams := t.teams()
	if p.Team != "" {
		teams = slices.DeleteFunc([]string{p.Team}, func(team string) bool { return !t.p.Sees(team) })
	}
	out := []run.Summary{}
	for _, team := range teams {
		q := p
		q.Team = team
		list, err := t.Store.RunList(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, list...)
	}
	slices.SortStableFunc(out, func(a, b run.Summary) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
	})
	if n := cmp.Or(p.Limit, 100); len(out) > n {
		out = out[:n]
	}
	t.saw(out)
	return out, nil
}

func (t *teamStore) EventList(ctx context.Context, p store.EventListParams) ([]run.Event, error) {
	if err := t.check(ctx, p.RunID); err != nil {
		return nil, err
	}
	return t.Store.EventList(ctx, p)
}

func (t *teamStore) LogList(ctx context.Context, p store.LogListParams) ([]run.LogLine, error) {
	if err := t.check(ctx, p.RunID); err != nil {
		return nil, err
	}
	return t.Store.LogList(ctx, p)
}

// LogSearch searches each of the caller's teams and merges the lines, newest first.
func (t *teamStore) LogSearch(ctx context.Context, p store.LogSearchParams) ([]run.LogLine, error) {
	if p.Query == "" {
		return t.Store.LogSearch(ctx, p) // the store's own error for an empty query
	}
	teams := t.teams()
	if p.Team != "" {
		teams = slices.DeleteFunc([]string{p.Team}, func(team string) bool { return !t.p.Sees(team) })
	}
	out := []run.LogLine{}
	for _, team := range teams {
		q := p
		q.Team = team
		lines, err := t.Store.LogSearch(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, lines...)
	}
	slices.SortStableFunc(out, func(a, b run.LogLine) int {
		return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(b.RunID, a.RunID), cmp.Compare(b.Seq, a.Seq))
	})
	if n := cmp.Or(p.Limit, 100); len(out) > n {
		out = out[:n]
	}
	return out, nil
}

// visible keeps the items whose team the caller sees; teamOf finds an item's team ("" and
// false when it has none, which only server admins see).
func visible[T any](r *http.Request, items []T, teamOf func(T) (string, bool)) []T {
	p := principal(r)
	if p == nil || p.Admin {
		return items
	}
	return slices.DeleteFunc(items, func(v T) bool {
		team, ok := teamOf(v)
		return !ok || !p.Sees(team)
	})
}

// repoTeams memoizes the team of each repo for one request's filtering.
type repoTeams struct {
	s     *Server
	r     *http.Request
	teams map[string]string
}

func (s *Server) repoTeams(r *http.Request) *repoTeams {
	return &repoTeams{s: s, r: r, teams: map[string]string{}}
}

func (rt *repoTeams) of(repo string) (string, bool) {
	if team, ok := rt.teams[repo]; ok {
		return team, team != ""
	}
	res, err := rt.s.repoTeam(rt.r, repo)
	if err != nil {
		res.team = ""
	}
	rt.teams[repo] = res.team
	return res.team, res.team != ""
}
