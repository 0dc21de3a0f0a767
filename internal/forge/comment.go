package forge

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"regexp"
	"slices"
	"strings"

	"github.com/paved/paved/internal/gate"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/trigger"
)

// Trees gives the file trees of a pull request run's base commit (where its branch forked
// from the target branch) and head commit, and the files the change touches.
type Trees func(ctx context.Context, info *run.Info) (base, head fs.FS, changed []string, err error)

// Composer writes the pull request comment of a finished run.
type Composer struct {
	Trees Trees
	// URL returns the server's external URL, for the link to the run page.
	URL func() string
	// Risk rates the change's files (promote.Risk.Score). Default nil: no risk line.
	Risk func(files []string) (level, reason string)
}

// maxDiffLines bounds the diff in a comment: forges cap comments (GitHub at 65536
// characters), and a reviewer reads the run page for more.
const maxDiffLines = 300

// Compose writes the comment: the run's outcome and link, the manifest diff between base
// and head, the gate summary and the risk. A part that cannot be made says why in its
// place rather than failing the comment.
func (c *Composer) Compose(ctx context.Context, st *run.State) (string, error) {
	info := st.Info
	var b strings.Builder
	name := "pipeline"
	if info.Pipeline != nil {
		name = info.Pipeline.Name
	}
	fmt.Fprintf(&b, "### paved · %s · %s\n\n", name, st.Phase)
	fmt.Fprintf(&b, "Commit `%s` · [run %s](%s/runs/%s)\n\n", short(info.SHA), st.ID, c.URL(), st.ID)

	base, head, changed, err := c.Trees(ctx, info)
	b.WriteString("#### Kubernetes manifests\n\n")
	if err != nil {
		fmt.Fprintf(&b, "Not compared: %s.\n\n", err)
	} else {
		c.manifests(&b, info, base, head)
	}
	writeGates(&b, st)
	if c.Risk != nil && err == nil {
		level, reason := c.Risk(changed)
		fmt.Fprintf(&b, "#### Risk\n\n**%s**: %s\n", level, reason)
	}
	return b.String(), nil
}

func short(sha string) string { return sha[:min(12, len(sha))] }

func (c *Composer) manifests(b *strings.Builder, info *run.Info, base, head fs.FS) {
	var dirs []string
	if info.Pipeline != nil {
		dirs = info.Pipeline.Manifests
	}
	detected := false
	if len(dirs) == 0 {
		detected = true
		dirs = DetectManifests(head)
		for _, d := range DetectManifests(base) {
			if !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
		slices.Sort(dirs)
	}
	if len(dirs) == 0 {
		b.WriteString("No manifest directory found (name them with `manifests:` in the pipeline file).\n\n")
		return
	}
	var lines []string
	for _, d := range dirs {
		bo, berr := Render(base, d)
		ho, herr := Render(head, d)
		if err := errors.Join(berr, herr); err != nil {
			lines = append(lines, "# "+d+": not rendered: "+firstLine(err))
			continue
		}
		changes := Diff(bo, ho)
		if len(changes) == 0 {
			lines = append(lines, "# "+d+": no change")
			continue
		}
		lines = append(lines, "# "+d)
		for _, ch := range changes {
			switch ch.Op {
			case "added":
				lines = append(lines, "+ "+ch.Key)
			case "removed":
				lines = append(lines, "- "+ch.Key)
			default:
				lines = append(lines, "~ "+ch.Key)
				for _, f := range ch.Fields {
					lines = append(lines, "    "+f.String())
				}
			}
		}
	}
	how := "from `manifests:`"
	if detected {
		how = "detected"
	}
	fmt.Fprintf(b, "Directories %s: %s. Objects by kind/namespace/name, base → head.\n\n", how, "`"+strings.Join(dirs, "`, `")+"`")
	if len(lines) > maxDiffLines {
		n := len(lines) - maxDiffLines
		lines = append(lines[:maxDiffLines], fmt.Sprintf("... %d more lines", n))
	}
	b.WriteString("```diff\n")
	for _, l := range lines {
		b.WriteString(strings.ReplaceAll(l, "```", "'''") + "\n")
	}
	b.WriteString("```\n\n")
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// writeGates summarises the run's gate decisions: the worst decision, findings per
// severity, and each gate that warned or blocked.
func writeGates(b *strings.Builder, st *run.State) {
	b.WriteString("#### Gates\n\n")
	counts := map[string]int{}
	worst := ""
	rank := map[string]int{"": 0, gate.Pass: 1, gate.Warn: 2, gate.Block: 3}
	var rows []string
	for _, ss := range st.Stages {
		for _, g := range ss.Gates {
			for sev, n := range g.Counts {
				counts[strings.ToUpper(sev)] += n
			}
			if rank[g.Decision] > rank[worst] {
				worst = g.Decision
			}
			rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s |", ss.Name(), g.Kind, decisionWord(g.Decision), escapeCell(g.Reason)))
		}
	}
	if len(rows) == 0 {
		b.WriteString("No gate ran.\n\n")
		return
	}
	var sev []string
	for _, s := range []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"} {
		if counts[s] > 0 {
			sev = append(sev, fmt.Sprintf("%s %d", s, counts[s]))
		}
	}
	if len(sev) == 0 {
		sev = []string{"none"}
	}
	fmt.Fprintf(b, "Decision: **%s** · findings: %s\n\n| stage | gate | decision | reason |\n|---|---|---|---|\n%s\n\n",
		decisionWord(worst), strings.Join(sev, ", "), strings.Join(rows, "\n"))
}

func decisionWord(d string) string {
	switch d {
	case gate.Block:
		return "block (blocking)"
	case gate.Warn:
		return "warn (not blocking)"
	case "":
		return "none"
	}
	return d
}

func escapeCell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{7,64}$`)

// GitTrees reads a run's commits with the git CLI from the repository its stages check
// out (run.Info.Source.Repo): head is the run's commit, base the merge base of it and the
// target branch.
func GitTrees(g *trigger.Git) Trees {
	return func(ctx context.Context, info *run.Info) (fs.FS, fs.FS, []string, error) {
		src, sha := info.Source.Repo, info.SHA
		if src == "" || !shaRE.MatchString(sha) {
			return nil, nil, nil, errors.New("the run has no git commit to read")
		}
		target := info.Trigger.Branch
		if target == "" || strings.HasPrefix(target, "-") {
			return nil, nil, nil, errors.New("the pull request's target branch is unknown")
		}
		out, err := exec.CommandContext(ctx, "git", "-C", src, "merge-base", "refs/heads/"+target, sha).Output()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("no merge base of %s and %s", target, short(sha))
		}
		base := strings.TrimSpace(string(out))
		diff, err := exec.CommandContext(ctx, "git", "-C", src, "diff", "--name-only", base, sha).Output()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("diff %s..%s: %w", short(base), short(sha), err)
		}
		return g.FS(ctx, trigger.Revision{SHA: base, Source: src}), g.FS(ctx, trigger.Revision{SHA: sha, Source: src}),
			strings.Fields(string(diff)), nil
	}
}
