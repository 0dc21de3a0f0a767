package schedule

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// What StageEnv adds reaches the step and is masked like a secret; its error fails the
// stage before anything runs.
func TestStageEnvInjectedAndMasked(t *testing.T) {
	t.Parallel()
	var asked StageEnvParams
	h := newHarness(t, ":memory:", func(c *Config) {
		c.StageEnv = func(_ context.Context, p StageEnvParams) (map[string]string, error) {
			if p.Stage == "bad" {
				return nil, errors.New("no issuer")
			}
			asked = p
			return map[string]string{"PAVED_ID_TOKEN": "eyJ-token-value"}, nil
		}
	})
	id := h.create(stages([3]string{"a", "", "echo got eyJ-token-value here"}, [3]string{"bad", "", "echo hi"}))
	st := h.wait(id)
	if s := st.Stage("a"); s.Status != run.StatusSucceeded {
		t.Fatalf("a: %s %s", s.Status, s.Reason)
	}
	if s := st.Stage("bad"); s.Status != run.StatusFailed || !strings.Contains(s.Reason, "stage environment: no issuer") {
		t.Fatalf("bad: %s %q", s.Status, s.Reason)
	}
	if asked.RunID != id || asked.Attempt != 1 || asked.Def == nil || asked.Info.Repo != "a/b" {
		t.Fatalf("asked %+v", asked)
	}
	lines, err := h.store.LogList(context.Background(), store.LogListParams{RunID: id, Stage: "a"})
	if err != nil {
		t.Fatal(err)
	}
	var text []string
	for _, l := range lines {
		text = append(text, l.Text)
	}
	if got := strings.Join(text, "\n"); strings.Contains(got, "eyJ-token") || !strings.Contains(got, "got *** here") {
		t.Fatalf("log not masked:\n%s", got)
	}
	if h.exec.Jobs()[0].Env["PAVED_ID_TOKEN"] != "eyJ-token-value" {
		t.Fatal("the step did not get the token")
	}
}
