package api_test

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// A request file is "METHOD PATH", an empty line, then the body.
func readRequest(t testing.TB, path string) (method, target, body string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, body, ok := strings.Cut(string(b), "\n\n")
	method, target, ok2 := strings.Cut(head, " ")
	if !ok || !ok2 {
		t.Fatalf("%s:1: want \"METHOD PATH\", an empty line, then the body", path)
	}
	return method, target, body
}

var volatile = regexp.MustCompile(`"\d{4}-\d\d-\d\dT[0-9:.]+Z"`)

// serve makes the request as user golden (secUsers), whose name the answers show.
func serve(t testing.TB, e *secEnv, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, withToken(req, e.token(t, "golden")))
	return rec
}

// TestRequestBodiesGolden: each API request body in testdata/requests gets the status and
// answer in its .golden file (go test -update rewrites them). Every answer says what to do.
func TestRequestBodiesGolden(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join("testdata", "requests", "*.req"))
	if len(files) == 0 {
		t.Fatal("no testdata/requests/*.req")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			e := newSecEnv(t) // each its own store: answers do not depend on order
			method, target, body := readRequest(t, f)
			rec := serve(t, e, method, target, body)
			got := strconv.Itoa(rec.Code) + "\n" + volatile.ReplaceAllString(rec.Body.String(), `"TIME"`)
			golden := strings.TrimSuffix(f, ".req") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s:\ngot  %s\nwant %s", f, got, want)
			}
			if rec.Code >= 500 {
				t.Errorf("%s: server error %d", f, rec.Code)
			}
		})
	}
}

// FuzzRequestBodies sends any bytes as the body of every route that reads JSON (and the
// pipeline validator): none may answer 5xx or panic.
func FuzzRequestBodies(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "requests", "*.req"))
	for _, file := range files {
		_, _, body := readRequest(f, file)
		f.Add(body)
	}
	e := newSecEnv(f)
	routes := [][2]string{
		{"PUT", "/api/v1/teams/fuzz/secrets/NAME"},
		{"POST", "/api/v1/repos"},
		{"POST", "/api/v1/runs"},
		{"PUT", "/api/v1/teams/fuzz/quota"},
		{"POST", "/api/v1/pipelines/validate"},
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, r := range routes {
			rec := serve(t, e, r[0], r[1], body)
			if rec.Code >= 500 {
				t.Fatalf("%s %s with %q: %d %s", r[0], r[1], body, rec.Code, rec.Body)
			}
		}
	})
}
