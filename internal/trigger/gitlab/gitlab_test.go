package gitlab_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/paved/paved/internal/trigger"
	"github.com/paved/paved/internal/trigger/gitlab"
	"github.com/paved/paved/internal/trigger/triggertest"
)

func TestGolden(t *testing.T) {
	t.Parallel()
	triggertest.Golden(t, gitlab.Provider, triggertest.IndexHeaders(t, "X-Gitlab-Event", "X-Gitlab-Event-UUID"))
}

func TestVerify(t *testing.T) {
	t.Parallel()
	if err := gitlab.Verify(http.Header{"X-Gitlab-Token": {"s3cret"}}, nil, "s3cret"); err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]http.Header{"none": {}, "wrong": {"X-Gitlab-Token": {"s3cre"}}} {
		if err := gitlab.Verify(h, nil, "s3cret"); !errors.Is(err, trigger.ErrSignature) {
			t.Errorf("%s: %v, want ErrSignature", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	triggertest.Seed(f, triggertest.IndexHeaders(f, "X-Gitlab-Event", "X-Gitlab-Event-UUID"))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		triggertest.Check(t, gitlab.Provider, http.Header{"X-Gitlab-Event": {event}}, body)
	})
}
