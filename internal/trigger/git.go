package trigger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Git resolves refs and reads files of registered repositories with the git CLI. Local
// repositories are read in place; remote ones through a bare mirror under Dir, fetched on
// each resolve so a new push is seen.
type Git struct {
	Dir string // where mirrors of remote repositories are kept
	// Proxy is an HTTP proxy URL that http(s) clones and fetches go through (the egress
	// proxy, which refuses internal addresses). Default "": git dials by itself.
	Proxy string

	mu    sync.Mutex
	locks map[string]*sync.Mutex // one fetch at a time per mirror
}

// ErrUnknownRef is wrapped when a ref names no branch, tag or commit.
var ErrUnknownRef = errors.New("trigger: unknown ref")

// Revision is a ref resolved to a commit.
type Revision struct {
	SHA    string
	Branch string // set when the ref is a branch
	Tag    string // set when the ref is a tag
	// Source is the repository stage workspaces are checked out from (local path or mirror).
	Source string
	// CommittedAt is the commit's committer time (zero when git could not say): where lead
	// time to production starts.
	CommittedAt time.Time
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{7,64}$`)

// Resolve turns ref (a branch, a tag or a commit sha; empty means the default branch) into
// a commit of the repository.
func (g *Git) Resolve(ctx context.Context, repo Repo, ref string) (Revision, error) {
	rev, err := g.resolve(ctx, repo, ref)
	if err == nil {
		if out, terr := git(ctx, rev.Source, "show", "-s", "--format=%cI", rev.SHA); terr == nil {
			rev.CommittedAt, _ = time.Parse(time.RFC3339, out)
		}
	}
	return rev, err
}

func (g *Git) resolve(ctx context.Context, repo Repo, ref string) (Revision, error) {
	src, err := g.source(ctx, repo)
	if err != nil {
		return Revision{}, err
	}
	rev := Revision{Source: src}
	if ref == "" {
		head, err := git(ctx, src, "symbolic-ref", "--short", "HEAD")
		if err != nil {
			return Revision{}, fmt.Errorf("trigger: %s has no default branch: %w", repo.FullName, err)
		}
		ref = head
	}
	candidates := []struct{ full, branch, tag string }{
		{"refs/heads/" + ref, ref, ""},
		{"refs/tags/" + ref, "", ref},
	}
	for _, c := range candidates {
		if sha, err := git(ctx, src, "rev-parse", "--verify", "--quiet", c.full+"^{commit}"); err == nil {
			rev.SHA, rev.Branch, rev.Tag = sha, c.branch, c.tag
			return rev, nil
		}
	}
	if shaRE.MatchString(ref) {
		if sha, err := git(ctx, src, "rev-parse", "--verify", "--quiet", ref+"^{commit}"); err == nil {
			rev.SHA = sha
			return rev, nil
		}
	}
	return Revision{}, fmt.Errorf("%w: %q is not a branch, tag or commit of %s", ErrUnknownRef, ref, repo.FullName)
}

// ReadFile returns a file's content at a commit; os.ErrNotExist when the commit lacks it.
func (g *Git) ReadFile(ctx context.Context, rev Revision, path string) ([]byte, error) {
	out, err := gitRaw(ctx, rev.Source, "show", rev.SHA+":"+path)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "exists on disk, but not in") {
			return nil, fmt.Errorf("trigger: %s at %s: %w", path, rev.SHA[:min(12, len(rev.SHA))], os.ErrNotExist)
		}
		return nil, err
	}
	return out, nil
}

// ChangedFiles lists the files that differ between two commits (nil when before is unknown).
func (g *Git) ChangedFiles(ctx context.Context, rev Revision, before string) ([]string, error) {
	if before == "" || strings.Trim(before, "0") == "" {
		return nil, nil
	}
	if !shaRE.MatchString(before) { // it comes from a webhook: never let it read as an option
		return nil, fmt.Errorf("trigger: before %q is not a commit sha", before)
	}
	out, err := git(ctx, rev.Source, "diff", "--name-only", before, rev.SHA)
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// source is the repository to read: the local path itself, or a fetched mirror.
func (g *Git) source(ctx context.Context, repo Repo) (string, error) {
	if isLocal(repo.CloneURL) {
		path, err := filepath.Abs(repo.CloneURL)
		if err != nil {
			return "", err
		}
		if _, err := git(ctx, path, "rev-parse", "--git-dir"); err != nil {
			return "", fmt.Errorf("trigger: clone_url %s of %s is not a git repository: %w", repo.CloneURL, repo.FullName, err)
		}
		return path, nil
	}
	sum := sha256.Sum256([]byte(repo.CloneURL))
	mirror := filepath.Join(g.Dir, hex.EncodeToString(sum[:8])+".git")
	lock := g.lock(mirror)
	lock.Lock()
	defer lock.Unlock()
	if _, err := os.Stat(mirror); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(g.Dir, 0o700); err != nil {
			return "", err
		}
		if _, err := git(ctx, g.Dir, g.remote(repo.CloneURL, "clone", "--quiet", "--mirror", repo.CloneURL, mirror)...); err != nil {
			return "", fmt.Errorf("trigger: clone %s: %w", repo.FullName, err)
		}
		return mirror, nil
	}
	if _, err := git(ctx, mirror, g.remote(repo.CloneURL, "fetch", "--quiet", "--prune", "origin")...); err != nil {
		return "", fmt.Errorf("trigger: fetch %s: %w", repo.FullName, err)
	}
	return mirror, nil
}

func (g *Git) lock(key string) *sync.Mutex {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.locks == nil {
		g.locks = map[string]*sync.Mutex{}
	}
	if g.locks[key] == nil {
		g.locks[key] = &sync.Mutex{}
	}
	return g.locks[key]
}

// remote is the git command line for talking to the remote at url: through Proxy when it
// is http(s).
func (g *Git) remote(url string, args ...string) []string {
	if g.Proxy != "" && (strings.HasPrefix(url, "http://") || strings.HasPrefix(url, "https://")) {
		return append([]string{"-c", "http.proxy=" + g.Proxy}, args...)
	}
	return args
}

func isLocal(url string) bool {
	return !strings.Contains(url, "://") && !strings.Contains(url, "@")
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	out, err := gitRaw(ctx, dir, args...)
	return strings.TrimSpace(string(out)), err
}

func gitRaw(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := fmt.Sprintf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		return nil, errors.New(RedactURLs(msg))
	}
	return out, nil
}

var urlUserinfo = regexp.MustCompile(`(://)[^/@\s]+@`)

// RedactURLs hides credentials in URLs (https://user:token@host/...), which a clone_url may
// carry and git echoes in its errors: errors end up in logs, notes and API answers.
func RedactURLs(s string) string { return urlUserinfo.ReplaceAllString(s, "${1}***@") }
