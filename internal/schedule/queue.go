package schedule

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/paved/paved/internal/run"
)

// Priority classes, highest first. A run's class is decided once, at Create, and recorded in
// its RunCreated (run.Info.Priority).
const (
	ClassHotfix    = "hotfix"    // Info.Hotfix, or a branch matching Config.HotfixBranches
	ClassDefault   = "default"   // the repository's default branch, and tags
	ClassBranch    = "branch"    // other branches and pull requests
	ClassScheduled = "scheduled" // cron
)

var classes = []string{ClassHotfix, ClassDefault, ClassBranch, ClassScheduled}

// classRank orders classes; an unknown (older) one counts as a branch.
func classRank(c string) int {
	if i := slices.Index(classes, c); i >= 0 {
		return i
	}
	return 2
}

// classify decides a run's priority class from what started it.
func (s *Scheduler) classify(info *run.Info) string {
	t := info.Trigger
	if info.Hotfix || s.hotfixBranch(t.Branch) || (t.Kind == "pull_request" && s.hotfixBranch(t.SourceBranch)) {
		return ClassHotfix
	}
	def := info.DefaultBranch
	if def == "" {
		def = "main"
	}
	switch {
	case t.Kind == "cron":
		return ClassScheduled
	case t.Kind == "pull_request":
		return ClassBranch
	case t.Kind == "tag" || (t.Branch == def && t.Branch != ""):
		return ClassDefault
	}
	return ClassBranch
}

func (s *Scheduler) hotfixBranch(branch string) bool {
	if branch == "" {
		return false
	}
	for _, g := range s.cfg.HotfixBranches {
		if ok, _ := path.Match(g, branch); ok {
			return true
		}
	}
	return false
}

// expandGroup expands trigger variables ($PAVED_BRANCH, ${PAVED_REPO}, ...) in a pipeline's
// concurrency group; an unknown variable expands to nothing.
func expandGroup(group string, info *run.Info) string {
	vars := map[string]string{
		"PAVED_REPO": info.Repo, "PAVED_TEAM": info.Team, "PAVED_REF": info.Ref, "PAVED_SHA": info.SHA,
		"PAVED_BRANCH": info.Trigger.Branch, "PAVED_TAG": info.Trigger.Tag, "PAVED_EVENT": info.Trigger.Kind,
		"PAVED_SOURCE_BRANCH": info.Trigger.SourceBranch, "PAVED_PIPELINE": info.Pipeline.Name,
	}
	return os.Expand(group, func(k string) string { return vars[k] })
}

// groupKey scopes a group to its repository: two repositories grouping by branch do not
// hold each other back.
func groupKey(info *run.Info) string {
	if info.Group == "" {
		return ""
	}
	return info.Repo + "\x00" + info.Group
}

// register makes a run known to dispatching: its creation order, class, team and group. It
// returns the older runs of its group that it supersedes, and false (registering nothing)
// when a run of that id is registered already. Create registers a run before its RunCreated
// is durable, so that the group slot it takes decides whether that first append also queues
// stages; should the append fail, it unregisters the run. The caller holds a.mu (s.mu is
// taken here).
func (s *Scheduler) register(a *active) (superseded []*active, ok bool) {
	info := a.state.Info
	a.id, a.class, a.team, a.group = a.state.ID, classRank(info.Priority), info.Team, groupKey(info)
	a.limit = 1
	if c := info.Pipeline.Concurrency; c != nil && c.Limit > 0 {
		a.limit = c.Limit
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runs[a.id] != nil {
		return nil, false
	}
	s.order++
	a.order = s.order
	s.runs[a.id] = a
	if a.group != "" {
		if c := info.Pipeline.Concurrency; c != nil && c.CancelSuperseded {
			superseded = slices.Clone(s.groups[a.group])
		}
		s.groups[a.group] = append(s.groups[a.group], a)
	}
	return superseded, true
}

// unregisterLocked forgets a finished run and wakes the runs of its group that now hold a
// slot. The caller holds s.mu.
func (s *Scheduler) unregisterLocked(a *active) {
	delete(s.runs, a.id)
	if a.group == "" {
		return
	}
	g := s.groups[a.group]
	i := slices.Index(g, a)
	if i < 0 {
		return
	}
	g = slices.Delete(g, i, i+1)
	if len(g) == 0 {
		delete(s.groups, a.group)
		return
	}
	s.groups[a.group] = g
	if i < a.limit {
		for _, b := range g[:min(len(g), a.limit)] {
			s.kicks = append(s.kicks, b)
		}
	}
}

// admittedLocked reports whether a run holds a slot of its concurrency group: it is among the
// group's first limit unfinished runs in trigger order. The caller holds s.mu.
func (s *Scheduler) admittedLocked(a *active) bool {
	if a.group == "" {
		return true
	}
	i := slices.Index(s.groups[a.group], a)
	return i >= 0 && i < a.limit
}

func (s *Scheduler) admitted(a *active) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.admittedLocked(a)
}

// quotaLocked is a team's limit of running stages; 0 means none. The caller holds s.mu.
func (s *Scheduler) quotaLocked(team string) int {
	if n, ok := s.quotas[team]; ok {
		return n
	}
	return s.cfg.DefaultTeamQuota
}

// Quota is a team's limit of concurrently running stages and how many it runs now.
type Quota struct {
	Team    string `json:"team"`
	Limit   int    `json:"limit"` // 0: no limit but the global capacity
	Running int    `json:"running"`
	Queued  int    `json:"queued"`
}

// TeamQuota reports a team's quota and its use.
func (s *Scheduler) TeamQuota(team string) Quota {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := Quota{Team: team, Limit: s.quotaLocked(team), Running: s.teamRunning[team]}
	q.Queued = s.queue.queued(team)
	return q
}

// ErrInvalidQuota is returned by SetTeamQuota for a negative limit.
var ErrInvalidQuota = fmt.Errorf("schedule: a team quota must be 0 (no limit) or more")

// SetTeamQuota changes a team's limit of running stages until the server restarts (the
// server's flags set the lasting ones). Stages already running are not stopped.
func (s *Scheduler) SetTeamQuota(team string, limit int) error {
	if limit < 0 {
		return ErrInvalidQuota
	}
	s.mu.Lock()
	s.quotas[team] = limit
	s.mu.Unlock()
	s.signal()
	return nil
}

// popLocked removes and returns the next queued stage to start (see readyQueue.pop), or
// false. The caller holds s.mu.
func (s *Scheduler) popLocked() (item, bool) {
	return s.queue.pop(
		func(team string) bool { q := s.quotaLocked(team); return q > 0 && s.teamRunning[team] >= q },
		func(team string) int { return s.teamRunning[team] },
	)
}

// Waiting says why a stage that has not started waits, and where it stands.
type Waiting struct {
	Reason string `json:"reason"`
	// Position is the stage's place among the queued stages (1: next), by class and then
	// age; fair share among teams may reorder a class. 0 for a stage not queued yet.
	Position int `json:"position,omitempty"`
}

// Waiting explains, for each pending or queued stage of an active run, why it has not
// started. It is computed from the scheduler's current queue, not stored; a run the
// scheduler does not drive (finished) has none.
func (s *Scheduler) Waiting(runID string) map[string]Waiting {
	a := s.get(runID)
	if a == nil {
		return nil
	}
	type stage struct {
		name, status string
		unmet        []string
	}
	var todo []stage
	a.mu.Lock()
	for _, st := range a.state.Stages {
		if st.Status != run.StatusPending && st.Status != run.StatusQueued {
			continue
		}
		sg := stage{name: st.Name(), status: st.Status}
		for _, n := range st.Def.Needs {
			if need := a.state.Stage(n); need != nil && need.Status != run.StatusSucceeded {
				sg.unmet = append(sg.unmet, n)
			}
		}
		todo = append(todo, sg)
	}
	cancelled := a.state.CancelRequested
	a.mu.Unlock()
	if cancelled || len(todo) == 0 {
		return nil
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]Waiting{}
	admitted := s.admittedLocked(a)
	for _, sg := range todo {
		switch {
		case sg.status == run.StatusPending && !admitted:
			g := s.groups[a.group]
			out[sg.name] = Waiting{Reason: fmt.Sprintf("group limit: %d of %d runs of group %q ahead of this one; it starts when one finishes",
				slices.Index(g, a), a.limit, a.state.Info.Group)}
		case sg.status == run.StatusPending && len(sg.unmet) > 0:
			out[sg.name] = Waiting{Reason: "waiting for needs: " + strings.Join(sg.unmet, ", ")}
		case sg.status == run.StatusPending:
			out[sg.name] = Waiting{Reason: "about to be queued"}
		default:
			out[sg.name] = s.queuedWaitingLocked(a, sg.name)
		}
	}
	return out
}

func (s *Scheduler) queuedWaitingLocked(a *active, stage string) Waiting {
	var me *item
	for it := range s.queue.all() {
		if it.runID == a.id && it.stage == stage {
			me = it
			break
		}
	}
	if me == nil {
		return Waiting{Reason: "starting"}
	}
	pos, higher := 1, 0
	for it := range s.queue.all() {
		if it == me || s.runs[it.runID] == nil {
			continue
		}
		if it.class < me.class || (it.class == me.class && it.order < me.order) {
			pos++
		}
		if q := s.quotaLocked(it.team); it.class < me.class && (q == 0 || s.teamRunning[it.team] < q) {
			higher++
		}
	}
	w := Waiting{Position: pos}
	q := s.quotaLocked(me.team)
	switch {
	case q > 0 && s.teamRunning[me.team] >= q:
		w.Reason = fmt.Sprintf("team quota: %d/%d stages of team %q running", s.teamRunning[me.team], q, me.team)
	case higher > 0:
		w.Reason = fmt.Sprintf("behind higher-priority work: %d queued stages of a higher class than %s", higher, classes[me.class])
	case s.free <= 0:
		w.Reason = fmt.Sprintf("capacity: %d/%d stages running", s.cfg.Capacity-s.free, s.cfg.Capacity)
	default:
		w.Reason = "next for a free slot"
	}
	return w
}
