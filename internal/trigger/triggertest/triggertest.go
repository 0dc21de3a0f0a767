// Package triggertest holds what the provider packages' tests share: golden files of
// normalised triggers (payload in testdata/payloads, expected JSON in testdata/golden,
// rewritten by go test -update) and the body of their fuzz targets.
package triggertest

import (
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paved/paved/internal/trigger"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// Result is what a golden file holds: the trigger, or why the delivery was ignored or refused.
type Result struct {
	Trigger *trigger.Trigger `json:"trigger,omitempty"`
	Ignored string           `json:"ignored,omitempty"`
	Repo    string           `json:"repo,omitempty"` // of an ignored delivery
	Error   string           `json:"error,omitempty"`
}

// Normalise runs the provider's parser and shapes its answer as a Result.
func Normalise(p trigger.Provider, h http.Header, body []byte) Result {
	tr, err := p.Parse(h, body)
	var ig *trigger.IgnoredError
	switch {
	case errors.As(err, &ig):
		return Result{Ignored: ig.Reason, Repo: tr.Repo}
	case err != nil:
		return Result{Error: err.Error()}
	}
	return Result{Trigger: &tr}
}

// Golden parses every testdata/payloads/*.json with the headers header(name) gives (name
// without .json) and compares the result with testdata/golden/<name>.json.
func Golden(t *testing.T, p trigger.Provider, header func(name string) http.Header) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "payloads", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no payloads in testdata/payloads: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(Normalise(p, header(name), body), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s: normalised trigger differs from %s (run go test -update if the change is right)\ngot:\n%s", name, golden, got)
			}
		})
	}
}

// Seed adds every payload under testdata/payloads to a fuzz corpus.
func Seed(f *testing.F, header func(name string) http.Header) {
	files, _ := filepath.Glob(filepath.Join("testdata", "payloads", "*.json"))
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		f.Add(EventOf(header(name)), body)
	}
}

// EventOf returns the first header value, the event name the seeds carry.
func EventOf(h http.Header) string {
	for _, v := range h {
		if len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// Check is the body of every provider's fuzz target: the parser must not panic, and what
// it accepts must be a valid trigger with a repo.
func Check(t *testing.T, p trigger.Provider, h http.Header, body []byte) {
	tr, err := p.Parse(h, body)
	var ig *trigger.IgnoredError
	if err != nil {
		if !errors.As(err, &ig) && !errors.Is(err, trigger.ErrMalformed) {
			t.Fatalf("an error that is neither ignored nor malformed: %v", err)
		}
		return
	}
	if err := tr.Validate(); err != nil {
		t.Fatalf("accepted an invalid trigger: %v", err)
	}
	if _, err := json.Marshal(tr); err != nil {
		t.Fatal(err)
	}
}
