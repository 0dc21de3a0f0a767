package pipeline

import (
	"fmt"
	"slices"

	"github.com/bmatcuk/doublestar/v4"
)

// MatchInput is what When.Match needs to know about the trigger of a run.
type MatchInput struct {
	Event  string // push, pull_request, tag, manual or cron
	Branch string // the branch pushed to; a pull request's target branch; "" when there is none
	Tag    string // the tag, for tag events
	// Paths are the changed files, relative to the repository root. nil means unknown (a
	// manual or cron run), and then when.paths does not hold the stage back.
	Paths []string
}

// Match reports whether a stage with this condition runs for the trigger, and when it does
// not, why, in words fit for the run's log. A nil When matches everything.
//
// Every condition that is set must hold. A stage with when.branches does not run for a
// trigger without a branch (a tag), as GitLab's $CI_COMMIT_BRANCH rules behave: a deploy
// limited to main must not fire on a tag by accident.
func (w *When) Match(in MatchInput) (ok bool, reason string) {
	if w == nil {
		return true, ""
	}
	if len(w.Events) > 0 && !slices.Contains(w.Events, in.Event) {
		return false, fmt.Sprintf("event %q is not in when.events %v", in.Event, w.Events)
	}
	if len(w.Branches) > 0 && !matchAny(w.Branches, in.Branch) {
		if in.Branch == "" {
			return false, fmt.Sprintf("the %s run has no branch to match when.branches %v", in.Event, w.Branches)
		}
		return false, fmt.Sprintf("branch %q does not match when.branches %v", in.Branch, w.Branches)
	}
	if len(w.Paths) > 0 && in.Paths != nil {
		if !slices.ContainsFunc(in.Paths, func(p string) bool { return matchAny(w.Paths, p) }) {
			if len(in.Paths) == 0 {
				return false, fmt.Sprintf("no files changed, and when.paths %v needs one that matches", w.Paths)
			}
			return false, fmt.Sprintf("no changed file matches when.paths %v", w.Paths)
		}
	}
	return true, ""
}

func matchAny(globs []string, name string) bool {
	if name == "" {
		return false
	}
	for _, g := range globs {
		// Compile validated every pattern, so an error here means no match.
		if ok, _ := doublestar.Match(g, name); ok {
			return true
		}
	}
	return false
}
