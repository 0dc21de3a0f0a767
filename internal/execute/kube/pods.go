package kube

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/execute/workspace"
)

// The pods' side of the server (mounted at /api/v1/pod by the API): a stage pod's fetch
// container GETs /api/v1/pod/workspace, a tar.gz of the attempt's workspace as the local
// executor would have made it (the source checkout with its .git, then the upstream
// artifacts); its collect container PUTs /api/v1/pod/outputs/reports and
// /api/v1/pod/outputs/artifacts, tar.gz files of what the stage's globs may match. The
// pod's token names the attempt: it is made for the attempt, kept in the attempt's
// Secret, and valid only while the executor follows that attempt, for these routes only.
//
// What a pod sends is kept on disk under Config.Dir until the pod ends, then matched
// against the stage's globs here, with the local executor's code: an upload that outlives
// a restart of paved is still there for the executor that re-attaches.

// Limits on what one pod sends.
const (
	// MaxArtifactUpload bounds the compressed artifacts of one attempt, and 4× that the
	// files they unpack to.
	MaxArtifactUpload = 2 << 30
	// maxEntries bounds the entries of one upload: a tar of a million empty files must not
	// exhaust the server's inodes.
	maxEntries = 200_000
)

const (
	podTokenKey = "PAVED_POD_TOKEN"
	doneFile    = Workspace + "/.paved/done"
)

// attempt is a stage attempt being followed, found by its pod's token.
type attempt struct {
	job execute.Job
	dir string // where its pod's uploads are kept
}

// newPodToken makes an attempt's token: 32 random bytes.
func newPodToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenKey(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:16])
}

// follow makes the token valid for the attempt until the returned func is called.
func (e *Executor) follow(token string, job execute.Job) (*attempt, func()) {
	key := tokenKey(token)
	a := &attempt{job: job, dir: filepath.Join(e.cfg.Dir, "outputs", key)}
	e.attMu.Lock()
	e.attempts[key] = a
	e.attMu.Unlock()
	return a, func() {
		e.attMu.Lock()
		if e.attempts[key] == a {
			delete(e.attempts, key)
		}
		e.attMu.Unlock()
	}
}

// Handler serves the pods' routes; the API mounts it at /api/v1/pod.
func (e *Executor) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(e.podAuth)
	r.Get("/workspace", e.serveWorkspace)
	r.Put("/outputs/{kind}", e.receiveOutputs)
	return r
}

type attemptKey struct{}

// podAuth admits a request with the token of an attempt being followed.
func (e *Executor) podAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="paved stage pods"`)
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			http.Error(w, "a stage pod's token is required: Authorization: Bearer $"+podTokenKey, http.StatusUnauthorized)
			return
		}
		e.attMu.Lock()
		a := e.attempts[tokenKey(tok)]
		e.attMu.Unlock()
		if a == nil {
			http.Error(w, "this is no stage pod's token of an attempt this server follows (the attempt ended, or another paved server runs it: see docs/kubernetes.md)", http.StatusUnauthorized)
			return
		}
		w.Header().Del("WWW-Authenticate")
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), attemptKey{}, a)))
	})
}

// serveWorkspace builds the attempt's workspace in a directory of its own and sends it as
// a tar.gz.
func (e *Executor) serveWorkspace(w http.ResponseWriter, r *http.Request) {
	a := r.Context().Value(attemptKey{}).(*attempt)
	dir, err := os.MkdirTemp(e.cfg.Dir, "workspace-")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer func() { _ = workspace.RemoveAll(dir) }()
	if err := e.buildWorkspace(r.Context(), a.job, dir); err != nil {
		e.cfg.Logger.Error("kube: build a pod's workspace", "run", a.job.RunID, "stage", a.job.Stage, "err", err)
		// 422, not 500: curl retries a 5xx for a minute, and this one stays.
		http.Error(w, "building the workspace: "+err.Error(), http.StatusUnprocessableEntity)
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	if err := writeTarGz(w, dir); err != nil {
		// The status is sent; a cut stream fails the pod's tar, which says so.
		e.cfg.Logger.Warn("kube: send a pod's workspace", "run", a.job.RunID, "stage", a.job.Stage, "err", err)
	}
}

// buildWorkspace is the local executor's workspace, made to travel: a shared clone borrows
// the server's objects, so they are copied in and the borrowing dropped.
func (e *Executor) buildWorkspace(ctx context.Context, job execute.Job, dir string) error {
	alternates, err := workspace.Source(ctx, job.Source, dir)
	if err != nil {
		return err
	}
	if len(alternates) > 0 {
		if err := workspace.Detach(ctx, dir); err != nil {
			return err
		}
	}
	// Run refused a job with artifacts before following it when there is no store.
	return workspace.Materialise(dir, job.ArtifactsIn, e.cfg.Blobs)
}

var errNoBlobs = errors.New("kube: the stage has artifacts but the executor has no artifact store (Config.Blobs)")

// receiveOutputs keeps an upload of the attempt on disk for Run to read when the pod ends.
func (e *Executor) receiveOutputs(w http.ResponseWriter, r *http.Request) {
	a := r.Context().Value(attemptKey{}).(*attempt)
	kind := chi.URLParam(r, "kind")
	if kind != "artifacts" && kind != "reports" {
		http.Error(w, "outputs are artifacts or reports", http.StatusNotFound)
		return
	}
	limit := int64(MaxArtifactUpload)
	if kind == "reports" {
		limit = 4 * execute.MaxReportBytes
	}
	if err := os.MkdirAll(a.dir, 0o700); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	f, err := os.CreateTemp(a.dir, kind+"-*.part")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer os.Remove(f.Name())
	n, err := io.Copy(f, io.LimitReader(r.Body, limit+1))
	if err == nil {
		err = f.Close()
	} else {
		f.Close()
	}
	switch {
	case err != nil:
		http.Error(w, "reading the upload: "+err.Error(), http.StatusBadRequest)
		return
	case n > limit:
		http.Error(w, fmt.Sprintf("the %s of one stage attempt are limited to %d bytes compressed", kind, limit), http.StatusRequestEntityTooLarge)
		return
	}
	if err := os.Rename(f.Name(), filepath.Join(a.dir, kind+".tar.gz")); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// outputs unpacks what the pod sent of kind into a directory of its own; ok is false when
// it sent nothing. The caller removes dir.
func (a *attempt) outputs(kind string, limit int64) (dir string, ok bool, err error) {
	f, err := os.Open(filepath.Join(a.dir, kind+".tar.gz"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	dir, err = os.MkdirTemp(a.dir, kind+"-")
	if err != nil {
		return "", false, err
	}
	if err := extractTarGz(f, dir, limit); err != nil {
		return dir, true, fmt.Errorf("the pod's %s: %w", kind, err)
	}
	return dir, true, nil
}

// collectPaths are the workspace paths the collect container sends for globs: each glob's
// literal leading directories (or the file it names), "." when a glob starts with a
// pattern. The server then matches the globs themselves, as the local executor does.
func collectPaths(globs []string) []string {
	var paths []string
	for _, g := range globs {
		g = strings.TrimPrefix(path.Clean(g), "./")
		p := g
		if i := strings.IndexAny(g, `*?[{\`); i >= 0 {
			p = "."
			if j := strings.LastIndex(g[:i], "/"); j > 0 {
				p = g[:j]
			}
		}
		if p == "." || strings.HasPrefix(p, "../") || p == ".." || path.IsAbs(p) {
			return []string{"."}
		}
		paths = append(paths, p)
	}
	slices.Sort(paths)
	var out []string
	for _, p := range slices.Compact(paths) {
		if len(out) > 0 && strings.HasPrefix(p, out[len(out)-1]+"/") {
			continue // inside one already sent
		}
		out = append(out, p)
	}
	return out
}

// writeTarGz writes the tree at dir as a tar.gz: directories, regular files and symlinks
// (as links), in GNU format, which busybox tar reads.
func writeTarGz(w io.Writer, dir string) error {
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		var link string
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.IsDir(), fi.Mode().IsRegular():
		default:
			return nil // sockets and devices do not travel
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.Format = tar.FormatGNU
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// extractTarGz unpacks a pod's upload into dir. The upload is not trusted: every path is
// written through an os.Root (no entry, link or ".." leads out of dir), links are kept as
// links, hard links must name an earlier entry, other types are refused, and the files'
// bytes together are bounded by limit. An empty body is an empty archive.
func extractTarGz(r io.Reader, dir string, limit int64) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	br := &peekReader{r: r}
	if br.empty() {
		return nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return fmt.Errorf("not a tar.gz: %w", err)
	}
	tr := tar.NewReader(zr)
	var total int64
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("not a tar.gz: %w", err)
		}
		if n >= maxEntries {
			return fmt.Errorf("more than %d entries", maxEntries)
		}
		name, ok := entryName(hdr.Name)
		if !ok {
			return fmt.Errorf("entry %q leaves the workspace", hdr.Name)
		}
		if name == "." {
			continue
		}
		if d := path.Dir(name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("entry %q: %w", name, err)
			}
		}
		mode := fs.FileMode(hdr.Mode) & fs.ModePerm
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return fmt.Errorf("entry %q: %w", name, err)
			}
			_ = root.Chmod(name, mode|0o700)
		case tar.TypeSymlink:
			_ = root.Remove(name)
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return fmt.Errorf("entry %q: %w", name, err)
			}
		case tar.TypeLink:
			target, ok := entryName(hdr.Linkname)
			if !ok {
				return fmt.Errorf("hard link %q leaves the workspace", hdr.Name)
			}
			_ = root.Remove(name)
			if err := root.Link(target, name); err != nil {
				return fmt.Errorf("entry %q: %w", name, err)
			}
		case tar.TypeReg:
			total += hdr.Size
			if total > 4*limit {
				return fmt.Errorf("its files pass %d bytes", 4*limit)
			}
			_ = root.Remove(name)
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode|0o600)
			if err != nil {
				return fmt.Errorf("entry %q: %w", name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("entry %q: %w", name, err)
			}
		default:
			return fmt.Errorf("entry %q: type %q is not a file, directory or link", name, hdr.Typeflag)
		}
	}
}

// entryName cleans a tar entry's name to a slash path inside the archive's root.
func entryName(name string) (string, bool) {
	name = path.Clean(strings.TrimPrefix(name, "./"))
	if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
		return "", false
	}
	return name, true
}

// peekReader tells an empty body from a gzip stream.
type peekReader struct {
	r    io.Reader
	head []byte
}

func (p *peekReader) empty() bool {
	b := make([]byte, 1)
	n, _ := io.ReadFull(p.r, b)
	p.head = b[:n]
	return n == 0
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.head) > 0 {
		n := copy(b, p.head)
		p.head = p.head[n:]
		return n, nil
	}
	return p.r.Read(b)
}
