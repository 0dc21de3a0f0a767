package local_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/execute/local"
)

// TestCacheRestoreAndSave: a stage's cache is missed and saved on the first run, restored
// (before the first step, where the steps see it) on the second, partially restored when
// the lockfile changes, and not saved when a step fails.
func TestCacheRestoreAndSave(t *testing.T) {
	t.Parallel()
	eachSandbox(t, func(t *testing.T, mode string) {
		c, err := cache.Open(cache.Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		l := newLocal(t, local.Config{Sandbox: mode, Cache: c})
		scopes := cache.ScopesFor("push", "main", "", "")
		job := func(lock string, cmds ...string) execute.Job {
			j := dirJob(t, cmds...)
			if err := os.WriteFile(filepath.Join(j.Source.Dir, "deps.lock"), []byte(lock), 0o644); err != nil {
				t.Fatal(err)
			}
			j.Caches = []execute.Cache{{Namespace: "acme/app\x00p\x00build", Key: "deps", KeyFiles: []string{"*.lock"},
				Paths: []string{".deps"}, RestoreKeys: []string{"deps-"}, WriteScope: scopes.Write, ReadScopes: scopes.Read}}
			return j
		}
		fill := `if test -f .deps/got; then echo "restored $(cat .deps/got)"; else echo cold; fi; mkdir -p .deps && cat deps.lock > .deps/got`

		res, rec := run(t, l, job("v1", fill))
		if res.Failed || rec.output(0) != "cold\n" {
			t.Fatalf("%+v %q", res, rec.output(0))
		}
		if got, want := rec.eventList(), "cache restore 0 miss, start 0, finish 0 0, cache save 0 saved"; got != want {
			t.Fatalf("events %s, want %s", got, want)
		}
		key := rec.caches[0].Key

		_, rec = run(t, l, job("v1", fill))
		if rec.output(0) != "restored v1\n" {
			t.Errorf("warm run saw %q", rec.output(0))
		}
		if got, want := rec.eventList(), "cache restore 0 hit, start 0, finish 0 0"; got != want {
			t.Errorf("events %s, want %s (an exact hit is not saved again)", got, want)
		}
		if rec.caches[0].Key != key || rec.caches[0].Digest == "" {
			t.Errorf("hit %+v", rec.caches[0])
		}

		_, rec = run(t, l, job("v2", fill))
		if rec.output(0) != "restored v1\n" {
			t.Errorf("partial run saw %q", rec.output(0))
		}
		if got, want := rec.eventList(), "cache restore 0 partial, start 0, finish 0 0, cache save 0 saved"; got != want {
			t.Errorf("events %s, want %s", got, want)
		}

		_, rec = run(t, l, job("v3", "mkdir -p .deps && echo x > .deps/got && exit 1"))
		if got, want := rec.eventList(), "cache restore 0 partial, start 0, finish 0 1"; got != want {
			t.Errorf("failed stage: events %s, want %s", got, want)
		}
	})
}
