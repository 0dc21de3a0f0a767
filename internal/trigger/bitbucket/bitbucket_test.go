package bitbucket_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/paved/paved/internal/trigger"
	"github.com/paved/paved/internal/trigger/bitbucket"
	"github.com/paved/paved/internal/trigger/triggertest"
)

func TestGolden(t *testing.T) {
	t.Parallel()
	triggertest.Golden(t, bitbucket.Provider, triggertest.IndexHeaders(t, "X-Event-Key", "X-Request-UUID"))
}

func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"push":{}}`)
	sig := trigger.SignHMAC("sha256=", body, "k")
	if err := bitbucket.Verify(http.Header{"X-Hub-Signature": {sig}}, body, "k"); err != nil {
		t.Fatal(err)
	}
	if err := bitbucket.Verify(http.Header{"X-Hub-Signature": {sig}}, append(body, ' '), "k"); !errors.Is(err, trigger.ErrSignature) {
		t.Errorf("a changed body verified: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	triggertest.Seed(f, triggertest.IndexHeaders(f, "X-Event-Key", "X-Request-UUID"))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		triggertest.Check(t, bitbucket.Provider, http.Header{"X-Event-Key": {event}}, body)
	})
}
