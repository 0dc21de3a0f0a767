package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Config configures the registry.
type Config struct {
	// Dir holds blobs, manifests and tags. Required; created if missing.
	Dir string
	// MaxManifestBytes bounds one manifest. Default 4 MiB, what the reference registry accepts.
	MaxManifestBytes int64
	// Logger gets one debug line per blob request and the cause of every 500. Default slog.Default().
	Logger *slog.Logger
	// Sign, when set, signs cosign's simple-signing payload of every manifest pushed (bytes
	// in, an ASN.1 ECDSA signature out): the registry then attaches the signature as cosign
	// does, under the tag sha256-<hex>.sig (sign.go). Default nil: nothing is signed.
	Sign func(payload []byte) ([]byte, error)
}

func (c *Config) validate() error {
	if c.Dir == "" {
		return errors.New("oci: Config.Dir is required")
	}
	if c.MaxManifestBytes <= 0 {
		c.MaxManifestBytes = 4 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Registry serves the OCI distribution API from a directory. It is an http.Handler to be
// mounted so that it sees paths starting /v2/. All methods are safe for concurrent use, and
// several processes may share one Dir: every write is a rename or a link.
type Registry struct {
	cfg   Config
	blobs *diskBlobs
	// upload serves blob routes (HEAD, GET, and the POST/PATCH/PUT upload sessions).
	upload http.Handler
}

var _ http.Handler = (*Registry)(nil)

// New makes the directories and returns the registry.
func New(cfg Config) (*Registry, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	for _, d := range []string{"blobs", "repositories"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("oci: make the registry directory: %w", err)
		}
	}
	b := &diskBlobs{dir: filepath.Join(cfg.Dir, "blobs"), repos: filepath.Join(cfg.Dir, "repositories")}
	r := &Registry{cfg: cfg, blobs: b}
	if err := r.linkExisting(); err != nil {
		return nil, err
	}
	r.upload = registry.New(
		registry.WithBlobHandler(b),
		registry.Logger(slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug)),
	)
	return r, nil
}

// The grammar of the distribution spec. A name cannot start with '_' or '.', so no repository
// path can reach into another's _manifests directory or out of Dir.
var (
	nameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// ValidName reports whether s is a repository name the registry accepts.
func ValidName(s string) bool { return len(s) <= 255 && nameRE.MatchString(s) }

// ValidTag reports whether s is a tag the registry accepts.
func ValidTag(s string) bool { return tagRE.MatchString(s) }

// regError is an OCI error response: {"errors": [{"code", "message"}]}.
type regError struct {
	status  int
	code    string
	message string
}

func (e *regError) Error() string { return e.code + ": " + e.message }

func errf(status int, code, format string, args ...any) *regError {
	return &regError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func (e *regError) write(w http.ResponseWriter) {
	type item struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	body, _ := json.Marshal(map[string][]item{"errors": {{Code: e.code, Message: e.message}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// ServeHTTP routes /v2/ requests.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if err := r.serve(w, req); err != nil {
		var re *regError
		if !errors.As(err, &re) {
			r.cfg.Logger.Error("oci registry request failed", "method", req.Method, "path", req.URL.Path, "err", err)
			re = errf(http.StatusInternalServerError, "UNKNOWN", "internal error; see the server log")
		}
		re.write(w)
	}
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) error {
	p := strings.TrimPrefix(req.URL.Path, "/v2")
	if p == "" || p == "/" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
		return nil
	}
	el := strings.Split(strings.TrimPrefix(p, "/"), "/")
	n := len(el)
	name := func(k int) (string, error) {
		s := strings.Join(el[:n-k], "/")
		if !ValidName(s) {
			return "", errf(http.StatusBadRequest, "NAME_INVALID",
				"%q is not a repository name: use lowercase letters, digits and . _ - separated by /", s)
		}
		return s, nil
	}
	switch {
	case n == 1 && el[0] == "_catalog":
		return r.catalog(w, req)
	case n >= 3 && el[n-2] == "manifests":
		repo, err := name(2)
		if err != nil {
			return err
		}
		return r.manifest(w, req, repo, el[n-1])
	case n >= 3 && el[n-2] == "tags" && el[n-1] == "list":
		repo, err := name(2)
		if err != nil {
			return err
		}
		return r.tagList(w, req, repo)
	case n >= 3 && el[n-2] == "referrers":
		repo, err := name(2)
		if err != nil {
			return err
		}
		return r.referrers(w, req, repo, el[n-1])
	case n >= 4 && el[n-3] == "blobs" && el[n-2] == "uploads":
		repo, err := name(3)
		if err != nil {
			return err
		}
		req = req.WithContext(withRepo(req.Context(), repo))
	case n >= 3 && el[n-2] == "blobs":
		repo, err := name(2)
		if err != nil {
			return err
		}
		req = req.WithContext(withRepo(req.Context(), repo))
		if req.Method == http.MethodDelete {
			return errf(http.StatusMethodNotAllowed, "UNSUPPORTED",
				"paved's registry does not delete blobs: immutable tags and digests must keep resolving")
		}
	default:
		return errf(http.StatusNotFound, "NAME_UNKNOWN", "no such route %s %s: see the OCI distribution spec", req.Method, req.URL.Path)
	}
	r.upload.ServeHTTP(w, req)
	return nil
}

// repoDir is where a repository's manifests and tags live.
func (r *Registry) repoDir(repo string) string {
	return filepath.Join(r.cfg.Dir, "repositories", filepath.FromSlash(repo), "_manifests")
}

func (r *Registry) revisionPath(repo string, h v1.Hash) string {
	return filepath.Join(r.repoDir(repo), "revisions", h.Algorithm, h.Hex)
}

func (r *Registry) tagPath(repo, tag string) string {
	return filepath.Join(r.repoDir(repo), "tags", tag)
}

func (r *Registry) manifest(w http.ResponseWriter, req *http.Request, repo, ref string) error {
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		h, mt, body, err := r.resolve(repo, ref)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", mt)
		w.Header().Set("Docker-Content-Digest", h.String())
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if req.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
		return nil
	case http.MethodPut:
		return r.manifestPut(w, req, repo, ref)
	case http.MethodDelete:
		return errf(http.StatusMethodNotAllowed, "UNSUPPORTED",
			"paved's registry does not delete manifests or tags: tags are immutable; push a new tag instead")
	default:
		return errf(http.StatusMethodNotAllowed, "UNSUPPORTED", "method %s is not allowed on manifests", req.Method)
	}
}

// resolve finds a manifest of repo by tag or digest and reads it, checking its digest.
func (r *Registry) resolve(repo, ref string) (v1.Hash, string, []byte, error) {
	var h v1.Hash
	if strings.Contains(ref, ":") {
		var err error
		if h, err = v1.NewHash(ref); err != nil {
			return h, "", nil, errf(http.StatusBadRequest, "DIGEST_INVALID", "%q is not a digest: write sha256:<64 hex digits>", ref)
		}
	} else {
		if !ValidTag(ref) {
			return h, "", nil, errf(http.StatusBadRequest, "MANIFEST_INVALID", "%q is not a tag: use up to 128 of [A-Za-z0-9._-], not starting with . or -", ref)
		}
		b, err := os.ReadFile(r.tagPath(repo, ref))
		if errors.Is(err, fs.ErrNotExist) {
			return h, "", nil, errf(http.StatusNotFound, "MANIFEST_UNKNOWN", "tag %s of %s is not in this registry", ref, repo)
		} else if err != nil {
			return h, "", nil, err
		}
		if h, err = v1.NewHash(strings.TrimSpace(string(b))); err != nil {
			return h, "", nil, fmt.Errorf("oci: tag file %s is corrupt: %w", r.tagPath(repo, ref), err)
		}
	}
	mt, err := os.ReadFile(r.revisionPath(repo, h))
	if errors.Is(err, fs.ErrNotExist) {
		return h, "", nil, errf(http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest %s is not in repository %s", h, repo)
	} else if err != nil {
		return h, "", nil, err
	}
	body, err := r.blobs.read(h, r.cfg.MaxManifestBytes)
	if errors.Is(err, errCorrupt) {
		r.cfg.Logger.Error("oci registry: stored manifest is damaged", "repo", repo, "err", err)
		// 404, not 500: clients do not retry it, and a push (which checks with HEAD first)
		// goes on to write a good copy.
		return h, "", nil, errf(http.StatusNotFound, "MANIFEST_UNKNOWN",
			"manifest %s of %s is damaged on the registry's disk: push it again (its tags stay)", h, repo)
	} else if err != nil {
		return h, "", nil, fmt.Errorf("oci: read manifest %s of %s: %w", h, repo, err)
	}
	return h, string(mt), body, nil
}

// manifestPut stores a manifest: the blobs it names must be here, a digest reference must
// match the body, and a tag is set only if it is new or already points at this digest.
func (r *Registry) manifestPut(w http.ResponseWriter, req *http.Request, repo, ref string) error {
	isDigest := strings.Contains(ref, ":")
	if !isDigest && !ValidTag(ref) {
		return errf(http.StatusBadRequest, "MANIFEST_INVALID", "%q is not a tag: use up to 128 of [A-Za-z0-9._-], not starting with . or -", ref)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, r.cfg.MaxManifestBytes+1))
	if err != nil {
		return errf(http.StatusBadRequest, "MANIFEST_INVALID", "read the manifest: %v", err)
	}
	if int64(len(body)) > r.cfg.MaxManifestBytes {
		return errf(http.StatusRequestEntityTooLarge, "SIZE_INVALID", "the manifest is over %d bytes: split it", r.cfg.MaxManifestBytes)
	}
	sum := sha256.Sum256(body)
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if isDigest && ref != h.String() {
		return errf(http.StatusBadRequest, "DIGEST_INVALID", "the manifest's digest is %s, not %s", h, ref)
	}
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
		Subject   *v1.Descriptor  `json:"subject"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return errf(http.StatusBadRequest, "MANIFEST_INVALID", "the manifest is not JSON: %v", err)
	}
	mt := types.MediaType(req.Header.Get("Content-Type"))
	if i := strings.IndexByte(string(mt), ';'); i >= 0 {
		mt = types.MediaType(strings.TrimSpace(string(mt[:i])))
	}
	if mt == "" {
		mt = probe.MediaType
	}
	if err := r.checkReferences(repo, mt, body); err != nil {
		return err
	}
	if err := r.blobs.write(h, body); err != nil {
		return err
	}
	if err := writeOnce(r.revisionPath(repo, h), []byte(mt)); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if probe.Subject != nil && probe.Subject.Digest.Hex != "" {
		p := filepath.Join(r.repoDir(repo), "referrers", probe.Subject.Digest.Algorithm+"-"+probe.Subject.Digest.Hex, h.Algorithm+"-"+h.Hex)
		if err := writeOnce(p, nil); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		w.Header().Set("OCI-Subject", probe.Subject.Digest.String())
	}
	if !isDigest {
		if err := r.tag(repo, ref, h); err != nil {
			return err
		}
	}
	if r.cfg.Sign != nil && !isSignatureRef(ref, body) {
		if err := r.attachSignature(req.Host, repo, h); err != nil {
			return err
		}
	}
	w.Header().Set("Location", "/v2/"+repo+"/manifests/"+h.String())
	w.Header().Set("Docker-Content-Digest", h.String())
	w.WriteHeader(http.StatusCreated)
	return nil
}

// tag points tag at h unless it already points elsewhere. The link makes "create if absent"
// atomic across goroutines and processes alike.
func (r *Registry) tag(repo, tag string, h v1.Hash) error {
	p := r.tagPath(repo, tag)
	err := writeOnce(p, []byte(h.String()))
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	old, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(old)) == h.String() {
		return nil
	}
	return errf(http.StatusConflict, "DENIED",
		"tag %s of %s is immutable and already points at %s, not %s: push under a new tag, or refer to the artifact by digest",
		tag, repo, strings.TrimSpace(string(old)), h)
}

// checkReferences refuses a manifest whose blobs (image) or manifests (index) are not here,
// so that nothing tagged can fail to pull.
func (r *Registry) checkReferences(repo string, mt types.MediaType, body []byte) error {
	switch {
	case mt.IsImage() || mt == "application/vnd.oci.artifact.manifest.v1+json":
		m, err := v1.ParseManifest(bytes.NewReader(body))
		if err != nil {
			return errf(http.StatusBadRequest, "MANIFEST_INVALID", "the manifest does not parse as %s: %v", mt, err)
		}
		for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if !d.MediaType.IsDistributable() || d.Digest.Hex == "" {
				continue
			}
			if _, err := r.blobs.Stat(context.Background(), repo, d.Digest); err != nil {
				return errf(http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "blob %s (%s) is not in %s: push the blobs to this repository before the manifest", d.Digest, d.MediaType, repo)
			}
		}
	case mt.IsIndex():
		m, err := v1.ParseIndexManifest(bytes.NewReader(body))
		if err != nil {
			return errf(http.StatusBadRequest, "MANIFEST_INVALID", "the index does not parse as %s: %v", mt, err)
		}
		for _, d := range m.Manifests {
			if _, err := os.Stat(r.revisionPath(repo, d.Digest)); err != nil {
				return errf(http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "manifest %s is not in %s: push every manifest of the index first", d.Digest, repo)
			}
		}
	case mt == "":
		return errf(http.StatusBadRequest, "MANIFEST_INVALID", "no media type: send Content-Type with the manifest's media type")
	default:
		return errf(http.StatusBadRequest, "MANIFEST_INVALID", "media type %q is not supported: push an OCI or Docker v2 image manifest or index", mt)
	}
	return nil
}

// listQuery applies the ?n= and ?last= pagination of the spec to sorted names.
func listQuery(req *http.Request, names []string) ([]string, error) {
	if last := req.URL.Query().Get("last"); last != "" {
		i := sort.SearchStrings(names, last)
		if i < len(names) && names[i] == last {
			i++
		}
		names = names[i:]
	}
	if s := req.URL.Query().Get("n"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, errf(http.StatusBadRequest, "UNSUPPORTED", "n=%q is not a count: give a whole number", s)
		}
		if n < len(names) {
			names = names[:n]
		}
	}
	return names, nil
}

func writeJSON(w http.ResponseWriter, req *http.Request, contentType string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return nil
}

func (r *Registry) tagList(w http.ResponseWriter, req *http.Request, repo string) error {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return errf(http.StatusMethodNotAllowed, "UNSUPPORTED", "tags/list takes GET")
	}
	ents, err := os.ReadDir(filepath.Join(r.repoDir(repo), "tags"))
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(r.repoDir(repo)); err != nil {
			return errf(http.StatusNotFound, "NAME_UNKNOWN", "repository %s is not in this registry", repo)
		}
	} else if err != nil {
		return err
	}
	tags := []string{}
	for _, e := range ents {
		if ValidTag(e.Name()) {
			tags = append(tags, e.Name())
		}
	}
	sort.Strings(tags)
	if tags, err = listQuery(req, tags); err != nil {
		return err
	}
	return writeJSON(w, req, "application/json", map[string]any{"name": repo, "tags": tags})
}

func (r *Registry) catalog(w http.ResponseWriter, req *http.Request) error {
	root := filepath.Join(r.cfg.Dir, "repositories")
	repos := []string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "_manifests" {
			rel, err := filepath.Rel(root, filepath.Dir(p))
			if err != nil {
				return err
			}
			repos = append(repos, filepath.ToSlash(rel))
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(repos)
	if repos, err = listQuery(req, repos); err != nil {
		return err
	}
	return writeJSON(w, req, "application/json", map[string]any{"repositories": repos})
}

// referrers answers the OCI 1.1 referrers API, so that clients attach signatures and SBOMs
// to a digest without the tag-schema fallback (which would move a sha256-<hex> tag and be
// refused as a tag change).
func (r *Registry) referrers(w http.ResponseWriter, req *http.Request, repo, ref string) error {
	subject, err := v1.NewHash(ref)
	if err != nil {
		return errf(http.StatusBadRequest, "DIGEST_INVALID", "%q is not a digest: write sha256:<64 hex digits>", ref)
	}
	ents, err := os.ReadDir(filepath.Join(r.repoDir(repo), "referrers", subject.Algorithm+"-"+subject.Hex))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	want := req.URL.Query().Get("artifactType")
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	for _, e := range ents {
		alg, hx, ok := strings.Cut(e.Name(), "-")
		if !ok || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		h := v1.Hash{Algorithm: alg, Hex: hx}
		mt, err := os.ReadFile(r.revisionPath(repo, h))
		if err != nil {
			return err
		}
		body, err := r.blobs.read(h, r.cfg.MaxManifestBytes)
		if err != nil {
			return err
		}
		var m struct {
			ArtifactType string            `json:"artifactType"`
			Config       v1.Descriptor     `json:"config"`
			Annotations  map[string]string `json:"annotations"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return err
		}
		at := m.ArtifactType
		if at == "" {
			at = string(m.Config.MediaType)
		}
		if want != "" && at != want {
			continue
		}
		idx.Manifests = append(idx.Manifests, v1.Descriptor{
			MediaType: types.MediaType(mt), Size: int64(len(body)), Digest: h, ArtifactType: at, Annotations: m.Annotations,
		})
	}
	sort.Slice(idx.Manifests, func(i, j int) bool { return idx.Manifests[i].Digest.Hex < idx.Manifests[j].Digest.Hex })
	if want != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, req, string(types.OCIImageIndex), idx)
}
