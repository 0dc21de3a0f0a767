package cache_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/cache"
)

func openCache(t *testing.T, max int64) *cache.Cache {
	t.Helper()
	c, err := cache.Open(cache.Config{Dir: t.TempDir(), MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// workspace makes a workspace with the given files ("name": content; a content starting
// with "->" makes a symlink).
func workspace(t *testing.T, files map[string]string) string {
	t.Helper()
	ws := t.TempDir()
	for name, content := range files {
		p := filepath.Join(ws, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ws
}

func request(t *testing.T, ws string, scopes cache.Scopes, prefix string, restore ...string) cache.Request {
	t.Helper()
	r := cache.Request{Namespace: "acme/app\x00build", Paths: []string{".deps"}, RestoreKeys: restore, Scopes: scopes}
	key, err := cache.Key(ws, r, prefix, []string{"go.sum"})
	if err != nil {
		t.Fatal(err)
	}
	r.Key = key
	return r
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

var main = cache.ScopesFor("push", "main", "", "main")

func TestHitMissPartial(t *testing.T) {
	t.Parallel()
	c := openCache(t, 0)
	ctx := context.Background()

	ws1 := workspace(t, map[string]string{"go.sum": "v1", ".deps/a/lib.go": "lib v1", ".deps/link": "->a/lib.go"})
	r1 := request(t, ws1, main, "go", "go-")
	if !strings.HasPrefix(r1.Key, "go-") {
		t.Fatalf("key %q", r1.Key)
	}
	res, err := c.Restore(ctx, t.TempDir(), r1)
	if err != nil || res.Status != cache.Miss {
		t.Fatalf("first restore: %+v %v", res, err)
	}
	if res, err := c.Save(ctx, ws1, r1); err != nil || res.Status != cache.Saved || !strings.HasPrefix(res.Digest, "sha256:") {
		t.Fatalf("save: %+v %v", res, err)
	}
	if res, _ := c.Save(ctx, ws1, r1); res.Status != cache.Exists {
		t.Errorf("second save of one key: %+v", res)
	}

	// Same lockfile: a hit, restored byte for byte with the symlink as a symlink.
	ws2 := workspace(t, map[string]string{"go.sum": "v1"})
	r2 := request(t, ws2, main, "go", "go-")
	if r2.Key != r1.Key {
		t.Fatalf("same files, different keys %s %s", r1.Key, r2.Key)
	}
	res, err = c.Restore(ctx, ws2, r2)
	if err != nil || res.Status != cache.Hit || res.Matched != r1.Key {
		t.Fatalf("restore: %+v %v", res, err)
	}
	if got := read(t, filepath.Join(ws2, ".deps/a/lib.go")); got != "lib v1" {
		t.Errorf("restored file: %q", got)
	}
	if l, err := os.Readlink(filepath.Join(ws2, ".deps/link")); err != nil || l != "a/lib.go" {
		t.Errorf("restored link: %q %v", l, err)
	}
	if ents, _ := os.ReadDir(ws2); len(ents) != 2 {
		t.Errorf("staging left in the workspace: %v", ents)
	}

	// The lockfile changed: another key; the restore key finds the old entry (partial).
	ws3 := workspace(t, map[string]string{"go.sum": "v2"})
	r3 := request(t, ws3, main, "go", "go-")
	if r3.Key == r1.Key {
		t.Fatal("key did not change with the key file")
	}
	res, _ = c.Restore(ctx, ws3, r3)
	if res.Status != cache.Partial || res.Matched != r1.Key {
		t.Fatalf("partial: %+v", res)
	}
	if got := read(t, filepath.Join(ws3, ".deps/a/lib.go")); got != "lib v1" {
		t.Errorf("partial restore: %q", got)
	}
	// Without restore keys it is a miss.
	if res, _ := c.Restore(ctx, t.TempDir(), request(t, ws3, main, "go")); res.Status != cache.Miss {
		t.Errorf("no restore keys: %+v", res)
	}
	// Another namespace (stage) shares nothing.
	other := r1
	other.Namespace = "acme/app\x00test"
	if res, _ := c.Restore(ctx, t.TempDir(), other); res.Status != cache.Miss {
		t.Errorf("other stage: %+v", res)
	}
	st := c.Stats()
	if st.Hits != 1 || st.Partials != 1 || st.Misses != 3 || st.Saves != 1 || st.SavesSkipped != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestPullRequestCannotPoisonMain: a pull request reads the default branch's entries but its
// saves stay in its own scope, so a build of main never restores what a PR's steps wrote.
func TestPullRequestCannotPoisonMain(t *testing.T) {
	t.Parallel()
	c := openCache(t, 0)
	ctx := context.Background()
	pr := cache.ScopesFor("pull_request", "main", "", "main") // a fork's branch may be called main too
	if pr.Write == main.Write {
		t.Fatalf("a pull request writes to %q, the default branch's scope", pr.Write)
	}
	evil := workspace(t, map[string]string{"go.sum": "v1", ".deps/lib.go": "poisoned"})
	r := request(t, evil, pr, "go", "go-")
	if res, _ := c.Restore(ctx, t.TempDir(), r); res.Status != cache.Miss {
		t.Fatalf("%+v", res)
	}
	if res, _ := c.Save(ctx, evil, r); res.Status != cache.Saved || res.Scope != pr.Write {
		t.Fatalf("PR save: %+v", res)
	}
	ws := workspace(t, map[string]string{"go.sum": "v1"})
	if res, _ := c.Restore(ctx, ws, request(t, ws, main, "go", "go-")); res.Status != cache.Miss {
		t.Fatalf("main restored the PR's entry: %+v (%q)", res, read(t, filepath.Join(ws, ".deps/lib.go")))
	}
	// main saves its own; the PR then reads it (fallback), and a feature branch too.
	good := workspace(t, map[string]string{"go.sum": "v1", ".deps/lib.go": "good"})
	if res, _ := c.Save(ctx, good, request(t, good, main, "go")); res.Status != cache.Saved {
		t.Fatalf("%+v", res)
	}
	feature := cache.ScopesFor("push", "feature", "", "main")
	ws = workspace(t, map[string]string{"go.sum": "v1"})
	if res, _ := c.Restore(ctx, ws, request(t, ws, feature, "go")); res.Status != cache.Hit || res.Scope != main.Write {
		t.Errorf("feature falls back to main: %+v", res)
	}
	if got := read(t, filepath.Join(ws, ".deps/lib.go")); got != "good" {
		t.Errorf("restored %q", got)
	}
}

func TestEvictionLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Minute); return now }
	// Incompressible entries of ~64 KiB; the cap holds two.
	c, err := cache.Open(cache.Config{Dir: t.TempDir(), MaxBytes: 150 << 10, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	save := func(v string) (string, cache.Request) {
		junk := make([]byte, 64<<10)
		if _, err := io.ReadFull(randReader{}, junk); err != nil {
			t.Fatal(err)
		}
		ws := workspace(t, map[string]string{"go.sum": v, ".deps/blob": string(junk)})
		r := request(t, ws, main, "k")
		res, err := c.Save(ctx, ws, r)
		if err != nil || res.Status != cache.Saved {
			t.Fatalf("save %s: %+v %v", v, res, err)
		}
		return ws, r
	}
	_, r1 := save("1")
	_, r2 := save("2")
	// Use 1, so 2 is the least recently used when 3 arrives.
	if res, _ := c.Restore(ctx, t.TempDir(), r1); res.Status != cache.Hit {
		t.Fatalf("%+v", res)
	}
	_, r3 := save("3")
	for _, c2 := range []struct {
		r    cache.Request
		want string
	}{{r1, cache.Hit}, {r2, cache.Miss}, {r3, cache.Hit}} {
		if res, _ := c.Restore(ctx, t.TempDir(), c2.r); res.Status != c2.want {
			t.Errorf("after eviction %s: %s, want %s", c2.r.Key, res.Status, c2.want)
		}
	}
	if st := c.Stats(); st.Evictions != 1 {
		t.Errorf("stats %+v", st)
	}
	if n := countFiles(t, c, "blobs/sha256"); n != 2 {
		t.Errorf("%d blobs left, want 2", n)
	}
}

type randReader struct{}

func (randReader) Read(p []byte) (int, error) {
	f, err := os.Open("/dev/urandom")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Read(p)
}

func cacheDir(c *cache.Cache) string { return filepath.Dir(c.Blobs().Dir()) }

func countFiles(t *testing.T, c *cache.Cache, sub string) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(cacheDir(c), sub))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestCorruptEntryIgnored: an entry whose blob no longer matches its digest is never
// restored, even in part; it is removed and the restore goes on to the next candidate.
func TestCorruptEntryIgnored(t *testing.T) {
	t.Parallel()
	for _, damage := range []string{"flip", "truncate"} {
		t.Run(damage, func(t *testing.T) {
			t.Parallel()
			c := openCache(t, 0)
			ctx := context.Background()
			old := workspace(t, map[string]string{"go.sum": "old", ".deps/lib.go": "old but sound"})
			if res, _ := c.Save(ctx, old, request(t, old, main, "go")); res.Status != cache.Saved {
				t.Fatal(res)
			}
			big := strings.Repeat("0123456789", 100000)
			ws := workspace(t, map[string]string{"go.sum": "v1", ".deps/lib.go": big, ".deps/z": "z"})
			r := request(t, ws, main, "go", "go-")
			res, err := c.Save(ctx, ws, r)
			if err != nil || res.Status != cache.Saved {
				t.Fatal(res, err)
			}
			p, err := c.Blobs().Path(res.Digest)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if damage == "flip" {
				b[len(b)-12] ^= 0xff // inside the gzip trailer's CRC or the last block: the digest catches it either way
			} else {
				b = b[:len(b)/2]
			}
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			dst := workspace(t, map[string]string{"go.sum": "v1"})
			res, err = c.Restore(ctx, dst, r)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != cache.Partial || !strings.Contains(res.Note, "ignored") {
				t.Fatalf("restore after corruption: %+v", res)
			}
			if got := read(t, filepath.Join(dst, ".deps/lib.go")); got != "old but sound" {
				t.Errorf("restored %d bytes of the corrupt entry", len(got))
			}
			if _, err := os.Lstat(filepath.Join(dst, ".deps/z")); err == nil {
				t.Error("a file of the corrupt entry reached the workspace")
			}
			if c.Stats().Corrupt != 1 {
				t.Errorf("stats %+v", c.Stats())
			}
			// Removed: the next restore does not try it again, and a save may store the key anew.
			if res, _ := c.Restore(ctx, t.TempDir(), request(t, dst, main, "go")); res.Status != cache.Miss {
				t.Errorf("corrupt entry still found: %+v", res)
			}
			if res, _ := c.Save(ctx, ws, r); res.Status != cache.Saved {
				t.Errorf("save after removal: %+v", res)
			}
		})
	}
}

// TestConcurrentSavesOfOneKey: many stages finishing at once with one key leave exactly one
// entry, one blob, no temporary files, and a restore of one whole save.
func TestConcurrentSavesOfOneKey(t *testing.T) {
	t.Parallel()
	c := openCache(t, 0)
	ctx := context.Background()
	const n = 8
	var wss []string
	for i := range n {
		wss = append(wss, workspace(t, map[string]string{"go.sum": "same", ".deps/who": fmt.Sprint(i), ".deps/big": strings.Repeat(fmt.Sprint(i), 200000)}))
	}
	r := request(t, wss[0], main, "go")
	var wg sync.WaitGroup
	results := make([]cache.Result, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := c.Save(ctx, wss[i], r)
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	close(start)
	wg.Wait()
	saved := 0
	for _, res := range results {
		switch res.Status {
		case cache.Saved:
			saved++
		case cache.Exists:
		default:
			t.Errorf("save: %+v", res)
		}
	}
	if saved != 1 {
		t.Errorf("%d saves stored the key, want 1", saved)
	}
	if got := countFiles(t, c, "blobs/sha256"); got != 1 {
		t.Errorf("%d blobs, want 1", got)
	}
	if got := countFiles(t, c, "blobs/tmp"); got != 0 {
		t.Errorf("%d temporary files left", got)
	}
	dst := t.TempDir()
	if res, _ := c.Restore(ctx, dst, r); res.Status != cache.Hit {
		t.Fatalf("%+v", res)
	}
	who := read(t, filepath.Join(dst, ".deps/who"))
	if big := read(t, filepath.Join(dst, ".deps/big")); big != strings.Repeat(who, 200000) {
		t.Errorf("restored a mix of saves: who=%q", who)
	}
}

// TestRestoreDoesNotFollowWorkspaceSymlinks: a repository can hold a symlink where a cache
// path goes; restoring must not write through it onto the host.
func TestRestoreDoesNotFollowWorkspaceSymlinks(t *testing.T) {
	t.Parallel()
	c := openCache(t, 0)
	ctx := context.Background()
	src := workspace(t, map[string]string{"go.sum": "v1", ".deps/lib.go": "lib"})
	r := request(t, src, main, "go")
	if res, _ := c.Save(ctx, src, r); res.Status != cache.Saved {
		t.Fatal(res)
	}
	host := t.TempDir()
	dst := workspace(t, map[string]string{"go.sum": "v1", ".deps": "->" + host})
	if res, err := c.Restore(ctx, dst, r); err != nil || res.Status != cache.Hit {
		t.Fatalf("%+v %v", res, err)
	}
	if ents, _ := os.ReadDir(host); len(ents) != 0 {
		t.Errorf("written through the symlink: %v", ents)
	}
	if got := read(t, filepath.Join(dst, ".deps/lib.go")); got != "lib" {
		t.Errorf("restored %q", got)
	}
}

func TestBlobsStoreOnce(t *testing.T) {
	t.Parallel()
	b, err := cache.NewBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d1, n, err := b.Put(strings.NewReader("hello"))
	if err != nil || n != 5 || d1 != "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" {
		t.Fatalf("%s %d %v", d1, n, err)
	}
	p, _ := b.Path(d1)
	before, _ := os.Stat(p)
	d2, _, _ := b.Put(bytes.NewReader([]byte("hello")))
	after, _ := os.Stat(p)
	if d2 != d1 || !os.SameFile(before, after) {
		t.Error("the same digest was stored again")
	}
	f, err := b.Open(d1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := cache.Verify(f, d1).Check(); err != nil {
		t.Error(err)
	}
	if _, err := cache.ParseDigest("sha256:../../etc"); err == nil {
		t.Error("a path accepted as a digest")
	}
}
