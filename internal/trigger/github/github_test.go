package github_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/paved/paved/internal/trigger"
	"github.com/paved/paved/internal/trigger/github"
	"github.com/paved/paved/internal/trigger/triggertest"
)

// header: the payload file's name up to the first dot is the event (push.4 → push).
func header(name string) http.Header {
	event, _, _ := strings.Cut(name, ".")
	return http.Header{"X-Github-Event": {event}, "X-Github-Delivery": {"d-" + name}}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	triggertest.Golden(t, github.Provider, header)
}

// GitHub's documented test vector (docs.github.com, "Validating webhook deliveries").
func TestVerifyTestVector(t *testing.T) {
	t.Parallel()
	body := []byte("Hello, World!")
	const secret = "It's a Secret to Everybody"
	const sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if err := github.Verify(http.Header{"X-Hub-Signature-256": {sig}}, body, secret); err != nil {
		t.Fatalf("the documented vector does not verify: %v", err)
	}
	if got := trigger.SignHMAC("sha256=", body, secret); got != sig {
		t.Fatalf("SignHMAC = %s, want %s", got, sig)
	}
	for name, h := range map[string]http.Header{
		"unsigned":     {},
		"wrong":        {"X-Hub-Signature-256": {"sha256=657107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}},
		"no prefix":    {"X-Hub-Signature-256": {"757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}},
		"not hex":      {"X-Hub-Signature-256": {"sha256=zz"}},
		"sha1 instead": {"X-Hub-Signature-256": {"sha1=757107ea0eb2509fc211221cce984b8a37570b6d"}},
	} {
		if err := github.Verify(h, body, secret); !errors.Is(err, trigger.ErrSignature) {
			t.Errorf("%s: Verify = %v, want ErrSignature", name, err)
		}
	}
	if err := github.Verify(http.Header{"X-Hub-Signature-256": {sig}}, body, ""); !errors.Is(err, trigger.ErrSignature) {
		t.Errorf("a repo without a secret must refuse deliveries, got %v", err)
	}
}

func TestMalformed(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		event, body string
	}{
		"not json":       {"push", "{"},
		"no repository":  {"push", `{"ref":"refs/heads/main","after":"abc"}`},
		"odd ref":        {"push", `{"ref":"refs/notes/x","after":"abc","repository":{"full_name":"a/b"}}`},
		"no event":       {"", `{}`},
		"pr without pr":  {"pull_request", `{"action":"opened","repository":{"full_name":"a/b"}}`},
		"push sans sha":  {"push", `{"ref":"refs/heads/main","repository":{"full_name":"a/b"}}`},
		"wrong json typ": {"pull_request", `{"action":7}`},
	} {
		_, err := github.Parse(http.Header{"X-Github-Event": {c.event}}, []byte(c.body))
		if !errors.Is(err, trigger.ErrMalformed) {
			t.Errorf("%s: Parse = %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	triggertest.Seed(f, header)
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		triggertest.Check(t, github.Provider, http.Header{"X-Github-Event": {event}}, body)
	})
}
