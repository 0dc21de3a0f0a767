package pipeline

import (
	"fmt"
	"slices"
)

// TriggerInput is what Triggers.Match needs to know of a trigger.
type TriggerInput struct {
	Event  string // push, pull_request, tag, manual or cron
	Branch string // the branch pushed to, or a pull request's target branch
	Tag    string // for tag events
	// Paths are the changed files; nil means unknown, and then path filters do not hold
	// the pipeline back (a run too many beats a run missed).
	Paths  []string
	Labels []string // a pull request's labels
	// Schedule is the cron expression that fired, for cron events.
	Schedule string
}

// Match reports whether the pipeline's on: section starts a run for the trigger and, when
// it does not, why, in words fit for the trigger's note.
func (t *Triggers) Match(in TriggerInput) (bool, string) {
	var f *Filter
	switch in.Event {
	case "push":
		f = t.Push
	case "pull_request":
		f = t.PullRequest
	case "tag":
		f = t.Tag
	case "manual":
		if !t.Manual {
			return false, "on.manual is not set"
		}
		return true, ""
	case "cron":
		if !slices.Contains(t.Cron, in.Schedule) {
			return false, fmt.Sprintf("schedule %q is not in on.cron", in.Schedule)
		}
		return true, ""
	default:
		return false, fmt.Sprintf("unknown event %q", in.Event)
	}
	if f == nil {
		return false, fmt.Sprintf("on: has no %s", in.Event)
	}
	return f.match(in)
}

func (f *Filter) match(in TriggerInput) (bool, string) {
	where := "on." + in.Event
	if len(f.Branches) > 0 && !matchAny(f.Branches, in.Branch) {
		if in.Branch == "" {
			return false, fmt.Sprintf("the %s has no branch to match %s.branches %v", in.Event, where, f.Branches)
		}
		return false, fmt.Sprintf("branch %q does not match %s.branches %v", in.Branch, where, f.Branches)
	}
	if len(f.Tags) > 0 && !matchAny(f.Tags, in.Tag) {
		return false, fmt.Sprintf("tag %q does not match %s.tags %v", in.Tag, where, f.Tags)
	}
	if len(f.Labels) > 0 && !slices.ContainsFunc(in.Labels, func(l string) bool { return slices.Contains(f.Labels, l) }) {
		return false, fmt.Sprintf("the pull request has none of the labels %s.labels %v (it has %v)", where, f.Labels, in.Labels)
	}
	if in.Paths == nil || len(f.Paths) == 0 && len(f.PathsIgnore) == 0 {
		return true, ""
	}
	// A file counts when it matches paths (or paths is empty) and not paths_ignore.
	counts := func(p string) bool {
		return (len(f.Paths) == 0 || matchAny(f.Paths, p)) && !matchAny(f.PathsIgnore, p)
	}
	if !slices.ContainsFunc(in.Paths, counts) {
		if len(in.Paths) == 0 {
			return false, fmt.Sprintf("no files changed, and %s has path filters", where)
		}
		return false, fmt.Sprintf("no changed file matches %s.paths %v (paths_ignore %v)", where, f.Paths, f.PathsIgnore)
	}
	return true, ""
}
