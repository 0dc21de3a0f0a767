package web

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The files sourcehash.mjs hashes; keep these two lists and its walk in step.
var (
	rootFiles  = []string{"index.html", "package.json", "package-lock.json", "sourcehash.mjs", "tsconfig.json", "vite.config.ts"}
	sourceDirs = []string{"src", "public"}
)

func isTest(name string) bool {
	for _, ext := range []string{".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts"} {
		if strings.HasSuffix(name, ".test"+ext) {
			return true
		}
	}
	return false
}

// sourceHash mirrors sourcehash.mjs: sorted slash paths, each as "path\n" + length + "\n" + bytes.
func sourceHash(root string) (string, error) {
	var files []string
	for _, f := range rootFiles {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			files = append(files, f)
		}
	}
	for _, d := range sourceDirs {
		base := filepath.Join(root, d)
		if _, err := os.Stat(base); err != nil {
			continue
		}
		err := filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || isTest(e.Name()) {
				return err
			}
			rel, err := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
			return err
		})
		if err != nil {
			return "", err
		}
	}
	slices.Sort(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\n%d\n", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func TestAssetsFresh(t *testing.T) {
	t.Parallel()
	want, err := sourceHash(".")
	if err != nil {
		t.Fatal(err)
	}
	got, err := fs.ReadFile(Assets(), "source-hash.txt")
	if err != nil {
		t.Fatalf("dist/source-hash.txt: %v; build the UI with `make ui-build` and commit web/dist", err)
	}
	if strings.TrimSpace(string(got)) != want {
		t.Fatalf("web/dist is stale: built from sources hashing %s, the sources now hash %s; "+
			"run `make ui-build` and commit web/dist", strings.TrimSpace(string(got)), want)
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(Handler())
	t.Cleanup(srv.Close)
	var asset string
	_ = fs.WalkDir(Assets(), "assets", func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(p, ".js") {
			asset = "/" + p
		}
		return err
	})
	if asset == "" {
		t.Fatal("no .js asset in dist/assets")
	}
	for _, tc := range []struct {
		method, path string
		status       int
		contentType  string
		cache        string
	}{
		{"GET", "/", 200, "text/html", "no-cache"},
		{"GET", "/runs", 200, "text/html", "no-cache"},
		{"GET", "/runs/abc?stage=build", 200, "text/html", "no-cache"},
		{"HEAD", "/approvals", 200, "text/html", "no-cache"},
		{"GET", asset, 200, "text/javascript", "immutable"},
		{"GET", "/assets/index-gone.js", 404, "text/plain", ""},
		{"GET", "/api/v1/nope", 404, "text/plain", ""},
		{"GET", "/v2/x", 404, "text/plain", ""},
		{"GET", "/metrics", 404, "text/plain", ""},
		{"POST", "/runs", 405, "text/plain", ""},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, res.StatusCode, tc.status)
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
			t.Errorf("%s %s: content type %q, want %s", tc.method, tc.path, ct, tc.contentType)
		}
		if cc := res.Header.Get("Cache-Control"); tc.cache != "" && !strings.Contains(cc, tc.cache) {
			t.Errorf("%s %s: cache-control %q, want %s", tc.method, tc.path, cc, tc.cache)
		}
		if tc.status == 200 && tc.method == "GET" && strings.HasPrefix(tc.contentType, "text/html") &&
			!strings.Contains(string(body), `<div id="root">`) {
			t.Errorf("%s %s: not index.html: %.200s", tc.method, tc.path, body)
		}
	}
}
