package pipeline

import (
	"strings"
	"testing"
)

func TestTriggersMatch(t *testing.T) {
	t.Parallel()
	p, err := Compile("on.yml", []byte(`
on:
  push: {branches: [main, "release/**"], paths: ["cmd/**", "internal/**"], paths_ignore: ["**/*.md"]}
  pull_request: {branches: [main], labels: [ci, perf]}
  tag: {tags: ["v*"]}
  cron: ["0 3 * * *"]
stages:
  build: {steps: [make]}
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		in   TriggerInput
		ok   bool
		why  string
	}{
		{"push main", TriggerInput{Event: "push", Branch: "main", Paths: []string{"cmd/a/main.go"}}, true, ""},
		{"push release deep", TriggerInput{Event: "push", Branch: "release/1/hotfix"}, true, ""},
		{"push other branch", TriggerInput{Event: "push", Branch: "dev"}, false, "does not match on.push.branches"},
		{"only docs", TriggerInput{Event: "push", Branch: "main", Paths: []string{"internal/README.md"}}, false, "no changed file"},
		{"no files", TriggerInput{Event: "push", Branch: "main", Paths: []string{}}, false, "no files changed"},
		{"paths unknown", TriggerInput{Event: "push", Branch: "main"}, true, ""},
		{"pr with label", TriggerInput{Event: "pull_request", Branch: "main", Labels: []string{"x", "perf"}}, true, ""},
		{"pr without", TriggerInput{Event: "pull_request", Branch: "main", Labels: []string{"x"}}, false, "none of the labels"},
		{"tag", TriggerInput{Event: "tag", Tag: "v1.0"}, true, ""},
		{"tag no match", TriggerInput{Event: "tag", Tag: "nightly"}, false, "does not match on.tag.tags"},
		{"manual off", TriggerInput{Event: "manual"}, false, "on.manual"},
		{"cron", TriggerInput{Event: "cron", Schedule: "0 3 * * *"}, true, ""},
		{"other cron", TriggerInput{Event: "cron", Schedule: "@hourly"}, false, "not in on.cron"},
	} {
		ok, why := p.On.Match(c.in)
		if ok != c.ok || !strings.Contains(why, c.why) {
			t.Errorf("%s: Match = %v %q, want %v %q", c.name, ok, why, c.ok, c.why)
		}
	}
	var none Triggers
	if ok, why := none.Match(TriggerInput{Event: "push", Branch: "main"}); ok || !strings.Contains(why, "no push") {
		t.Errorf("empty on: matched a push: %v %q", ok, why)
	}
}

func TestLabelsOnlyOnPullRequest(t *testing.T) {
	t.Parallel()
	_, err := Compile("on.yml", []byte("on: {push: {labels: [x]}}\nstages: {b: {steps: [make]}}\n"), Options{})
	if err == nil || !strings.Contains(err.Error(), "on.yml:1:") || !strings.Contains(err.Error(), "only pull requests have labels") {
		t.Errorf("err = %v", err)
	}
}
