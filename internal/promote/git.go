package promote

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/paved/paved/internal/trigger"
)

// GitChanges lists changed files with the registered repo's git: repos looks a repository
// up by full name (the store's RepoGet).
func GitChanges(g *trigger.Git, repos func(ctx context.Context, fullName string) (trigger.Repo, error)) Changes {
	return func(ctx context.Context, repo, from, to string) ([]string, error) {
		r, err := repos(ctx, repo)
		if err != nil {
			return nil, fmt.Errorf("promote: repo %s: %w", repo, err)
		}
		rev, err := g.Resolve(ctx, r, to)
		if err != nil {
			return nil, err
		}
		return g.ChangedFiles(ctx, rev, from)
	}
}

// FileDiff is one changed file of a changeset with the lines it gained and lost (both -1
// for a binary file).
type FileDiff struct {
	Path    string `json:"path"`
	Added   int    `json:"added"`
	Deleted int    `json:"deleted"`
}

// DiffStat counts the lines each file changed between two commits of a repository.
type DiffStat func(ctx context.Context, repo, from, to string) ([]FileDiff, error)

// GitDiffStat is DiffStat with the registered repo's git (git diff --numstat).
func GitDiffStat(g *trigger.Git, repos func(ctx context.Context, fullName string) (trigger.Repo, error)) DiffStat {
	return func(ctx context.Context, repo, from, to string) ([]FileDiff, error) {
		r, err := repos(ctx, repo)
		if err != nil {
			return nil, fmt.Errorf("promote: repo %s: %w", repo, err)
		}
		rev, err := g.Resolve(ctx, r, to)
		if err != nil {
			return nil, err
		}
		if !shaRE.MatchString(from) { // never let it read as an option
			return nil, fmt.Errorf("promote: %q is not a commit sha", from)
		}
		cmd := exec.CommandContext(ctx, "git", "diff", "--numstat", "--no-renames", from, rev.SHA)
		cmd.Dir = rev.Source
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("promote: git diff --numstat %s %s: %w", short(from), short(rev.SHA), err)
		}
		return parseNumstat(string(out)), nil
	}
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{7,64}$`)

func parseNumstat(out string) []FileDiff {
	var diffs []FileDiff
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.SplitN(l, "\t", 3)
		if len(f) != 3 {
			continue
		}
		add, err1 := strconv.Atoi(f[0])
		del, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil { // "-\t-\tfile" for a binary file
			add, del = -1, -1
		}
		diffs = append(diffs, FileDiff{Path: f[2], Added: add, Deleted: del})
	}
	return diffs
}
