package schedule

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestArtifactsAreAttestedBeforeTheyAreRecorded(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []AttestParams
	fail := false
	h := newHarness(t, ":memory:", func(c *Config) {
		c.Attest = func(_ context.Context, p AttestParams) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, p)
			if fail {
				return errors.New("key store is locked")
			}
			return nil
		}
	})
	p := stages([3]string{"build", "", "artifact app built"}, [3]string{"pack", "build", "artifact app.tgz packed"})
	p.Stages[0].Artifacts, p.Stages[1].Artifacts = []string{"app"}, []string{"app.tgz"}
	st := h.wait(h.create(p))
	if st.Phase != "SUCCEEDED" {
		t.Fatalf("phase %s: %s", st.Phase, st.Reason)
	}
	mu.Lock()
	if len(got) != 2 || got[0].Stage != "build" || got[0].Outputs[0].Path != "app" || len(got[0].Inputs) != 0 ||
		got[1].Stage != "pack" || got[1].Inputs[0].Path != "app" || got[1].Outputs[0].Path != "app.tgz" ||
		got[1].Started.IsZero() || got[1].Finished.Before(got[1].Started) || got[1].Info.Repo != "a/b" {
		t.Fatalf("attested %+v", got)
	}
	fail = true
	mu.Unlock()

	st = h.wait(h.create(p))
	b := st.Stage("build")
	if b.Status != "failed" || !strings.Contains(b.Reason, "sign artifacts: key store is locked") || b.Artifacts != nil {
		t.Fatalf("build: %s %q %v", b.Status, b.Reason, b.Artifacts)
	}
	if st.Stage("pack").Status != "skipped" {
		t.Fatalf("pack ran without a signed input: %s", st.Stage("pack").Status)
	}
}
