// Package web serves paved's UI: a single-page app whose sources (TypeScript, React, Vite)
// live beside this file and whose built assets in dist/ are committed and embedded, so `go
// build` needs no Node.js. Any GET path that is not an asset answers with index.html and the
// app's router takes it from there; the API's prefixes never do, so a mistyped API path is a
// 404 a client can read, not an HTML page.
//
// dist/source-hash.txt records the hash of the sources dist/ was built from (sourcehash.mjs);
// TestAssetsFresh fails when the committed dist/ is stale. Rebuild with `make ui-build`.
package web

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed all:dist
var dist embed.FS

// Assets is the built UI: index.html, assets/ and source-hash.txt.
func Assets() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a literal directory of the embed: it cannot fail
	}
	return sub
}

// notApp are the path prefixes that belong to the server, never to the app.
var notApp = []string{"/api/", "/v2/", "/hooks/", "/metrics", "/healthz"}

// Handler serves the UI with a fallback to index.html for the app's own routes.
func Handler() http.Handler {
	assets := Assets()
	index, err := fs.ReadFile(assets, "index.html")
	if err != nil {
		panic("web: dist/index.html is missing; run `make ui-build`")
	}
	files := http.FileServerFS(assets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the UI only answers GET and HEAD", http.StatusMethodNotAllowed)
			return
		}
		p := r.URL.Path
		for _, prefix := range notApp {
			if strings.HasPrefix(p, prefix) || p == strings.TrimSuffix(prefix, "/") {
				http.NotFound(w, r)
				return
			}
		}
		name := strings.TrimPrefix(path.Clean(p), "/")
		if name != "" && name != "index.html" {
			if st, err := fs.Stat(assets, name); err == nil && !st.IsDir() {
				if strings.HasPrefix(name, "assets/") {
					// Vite puts a content hash in every asset's name.
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				}
				files.ServeHTTP(w, r)
				return
			}
			if strings.HasPrefix(name, "assets/") {
				// An old index.html asking for an asset of an earlier build: say so, don't
				// answer with HTML the browser would try to run as a script.
				http.NotFound(w, r)
				return
			}
		}
		// index.html names the current build's assets: never cache it.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(index))
	})
}
