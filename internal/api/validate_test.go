package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paved/paved/internal/api"
	"github.com/paved/paved/internal/execute/fake"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store/sqlite"
	"github.com/paved/paved/internal/trigger"
)

func TestValidatePipeline(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	sched, err := schedule.New(schedule.Config{}, st, &fake.Executor{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Access: newAccess(t, st), Store: st, Scheduler: sched, Git: &trigger.Git{Dir: t.TempDir()}, Hub: api.NewHub(),
		Compile: pipeline.Options{Kinds: []string{"gate/secrets"}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); st.Close() })

	type answer struct {
		Valid  bool
		Stages int
		Errors []struct {
			Line, Col int
			Message   string
		}
	}
	post := func(body string, wantStatus int) answer {
		t.Helper()
		resp, err := rootPost(hs.URL+"/api/v1/pipelines/validate", "application/yaml", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != wantStatus {
			t.Fatalf("status %d, want %d: %s", resp.StatusCode, wantStatus, data)
		}
		var a answer
		if err := json.Unmarshal(data, &a); err != nil {
			t.Fatalf("%v: %s", err, data)
		}
		return a
	}

	// The server's kinds count: gate/secrets is known to this server, so the file is valid.
	ok := post("name: x\nstages:\n  build:\n    steps:\n      - run: make\n  scan:\n    needs: [build]\n    uses: gate/secrets\n", 200)
	if !ok.Valid || ok.Stages != 2 || len(ok.Errors) != 0 {
		t.Errorf("valid file: %+v", ok)
	}

	bad := post("stages:\n  build:\n    needs: [nope]\n    steps: []\n  deploy:\n    uses: gate/unknown\n", 200)
	if bad.Valid || bad.Stages != 0 || len(bad.Errors) < 2 {
		t.Fatalf("invalid file: %+v", bad)
	}
	for _, e := range bad.Errors {
		if e.Line < 1 || e.Col < 1 || e.Message == "" {
			t.Errorf("error without a position or message: %+v", e)
		}
	}
	if !strings.Contains(bad.Errors[0].Message, "nope") || bad.Errors[0].Line != 3 {
		t.Errorf("first error should point at the unknown need on line 3: %+v", bad.Errors[0])
	}

	if empty := post("", 200); empty.Valid || len(empty.Errors) != 1 {
		t.Errorf("empty file: %+v", empty)
	}

	resp, err := rootPost(hs.URL+"/api/v1/pipelines/validate", "application/yaml", strings.NewReader(strings.Repeat("#", 2<<20)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d, want 413", resp.StatusCode)
	}
}
