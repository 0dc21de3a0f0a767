package pipeline

import "testing"

func TestWhenMatch(t *testing.T) {
	t.Parallel()
	release := &When{Branches: []string{"main", "release/*"}}
	tests := []struct {
		name   string
		when   *When
		in     MatchInput
		ok     bool
		reason string
	}{
		{"nil matches everything", nil, MatchInput{Event: "tag", Tag: "v1"}, true, ""},
		{"empty matches everything", &When{}, MatchInput{Event: "cron"}, true, ""},
		{"branch exact", release, MatchInput{Event: "push", Branch: "main"}, true, ""},
		{"branch glob", release, MatchInput{Event: "push", Branch: "release/1.2"}, true, ""},
		{"glob stops at slash", release, MatchInput{Event: "push", Branch: "release/1.2/hotfix"}, false,
			`branch "release/1.2/hotfix" does not match when.branches [main release/*]`},
		{"other branch", release, MatchInput{Event: "push", Branch: "feature/x"}, false,
			`branch "feature/x" does not match when.branches [main release/*]`},
		{"doublestar crosses slashes", &When{Branches: []string{"feature/**"}}, MatchInput{Branch: "feature/a/b"}, true, ""},
		{"tag run has no branch", release, MatchInput{Event: "tag", Tag: "v1"}, false,
			`the tag run has no branch to match when.branches [main release/*]`},
		{"event listed", &When{Events: []string{"push", "manual"}}, MatchInput{Event: "manual"}, true, ""},
		{"event not listed", &When{Events: []string{"tag"}}, MatchInput{Event: "push", Branch: "main"}, false,
			`event "push" is not in when.events [tag]`},
		{"events checked before branches", &When{Events: []string{"tag"}, Branches: []string{"main"}}, MatchInput{Event: "push", Branch: "dev"}, false,
			`event "push" is not in when.events [tag]`},
		{"a changed path matches", &When{Paths: []string{"docs/**", "*.md"}}, MatchInput{Paths: []string{"go.mod", "docs/a/b.md"}}, true, ""},
		{"root glob is not recursive", &When{Paths: []string{"*.md"}}, MatchInput{Paths: []string{"docs/x.md"}}, false,
			`no changed file matches when.paths [*.md]`},
		{"unknown paths pass", &When{Paths: []string{"docs/**"}}, MatchInput{Event: "manual"}, true, ""},
		{"no changed files", &When{Paths: []string{"docs/**"}}, MatchInput{Event: "push", Paths: []string{}}, false,
			`no files changed, and when.paths [docs/**] needs one that matches`},
		{"all conditions hold", &When{Events: []string{"push"}, Branches: []string{"main"}, Paths: []string{"src/**"}},
			MatchInput{Event: "push", Branch: "main", Paths: []string{"src/x.go"}}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, reason := tt.when.Match(tt.in)
			if ok != tt.ok || reason != tt.reason {
				t.Errorf("Match(%+v) = %v, %q; want %v, %q", tt.in, ok, reason, tt.ok, tt.reason)
			}
		})
	}
}
