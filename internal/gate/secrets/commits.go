package secrets

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/zricethezav/gitleaks/v8/detect"

	"github.com/paved/paved/internal/run"
)

// MaxCommits bounds how many pushed commits ScanCommits reads: a push of a long-lived branch
// can carry thousands, and the tree scan sees what is left of them anyway.
const MaxCommits = 100

var hunk = regexp.MustCompile(`^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@`)

// ScanCommits finds secrets in the lines the commits before..sha added (sha's own when
// before is empty or all zeros), so that a secret committed and removed again within one
// push is caught although the tree no longer has it. A finding's Line is in the commit's
// version of the file; its message names the commit.
func ScanCommits(ctx context.Context, repo, before, sha string, base *Baseline, now time.Time) (findings []run.Finding, suppressed int, err error) {
	c, err := rules()
	if err != nil {
		return nil, 0, err
	}
	rng := []string{"-n", "1", sha}
	if before != "" && strings.Trim(before, "0") != "" {
		rng = []string{"-n", strconv.Itoa(MaxCommits), before + ".." + sha}
	}
	out, err := git(ctx, repo, append([]string{"log", "--format=%H"}, rng...)...)
	if err != nil {
		return nil, 0, err
	}
	d := detect.NewDetectorContext(ctx, c)
	d.Redact = 100
	d.MaxDecodeDepth = 1
	for _, commit := range strings.Fields(string(out)) {
		diff, err := git(ctx, repo, "show", "--format=", "--no-color", "--no-ext-diff", "--no-renames", "-U0", commit)
		if err != nil {
			return nil, 0, err
		}
		for _, a := range addedLines(diff) {
			for _, f := range d.DetectContext(ctx, detect.Fragment{Raw: a.text.String(), FilePath: a.file, CommitSHA: commit}) {
				line := 0
				if f.StartLine >= 0 && f.StartLine < len(a.lines) {
					line = a.lines[f.StartLine]
				}
				rf := run.Finding{Rule: f.RuleID, Severity: Severity, File: a.file, Line: line, Match: clip(f.Match),
					Message:     fmt.Sprintf("%s (added in commit %.12s)", f.Description, commit),
					Fingerprint: fmt.Sprintf("%s:%s:%d", a.file, f.RuleID, line)}
				if base.suppresses(rf, now) {
					suppressed++
					continue
				}
				findings = append(findings, rf)
			}
		}
	}
	return findings, suppressed, nil
}

// added is what one commit added to one file: the lines, and each one's number in the file.
type added struct {
	file  string
	text  bytes.Buffer
	lines []int
}

func addedLines(diff []byte) []*added {
	var out []*added
	var cur *added
	next := 0
	sc := bufio.NewScanner(bytes.NewReader(diff))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "diff --git "):
			cur = nil
		case strings.HasPrefix(l, "+++ "):
			name := strings.TrimPrefix(l, "+++ ")
			if name == "/dev/null" {
				cur = nil
				continue
			}
			cur = &added{file: strings.TrimPrefix(name, "b/")}
			out = append(out, cur)
		case strings.HasPrefix(l, "@@"):
			if m := hunk.FindStringSubmatch(l); m != nil {
				next, _ = strconv.Atoi(m[1])
			}
		case cur != nil && strings.HasPrefix(l, "+"):
			cur.text.WriteString(l[1:] + "\n")
			cur.lines = append(cur.lines, next)
			next++
		}
	}
	return out
}

func git(ctx context.Context, repo string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", repo}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("secrets: git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
