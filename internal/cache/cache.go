package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Restore and save statuses, as reported in Result.Status and the run's events.
const (
	Hit     = "hit"     // the exact key was restored
	Partial = "partial" // an entry matching a restore key was restored
	Miss    = "miss"    // nothing was restored

	Saved  = "saved"  // a new entry was stored under the key
	Exists = "exists" // the key had an entry already (a concurrent save won): nothing stored
	Empty  = "empty"  // the paths held nothing: nothing stored
	Failed = "failed" // the store or the workspace could not be read or written: nothing stored (Note says why)
)

var errStoreEnded = errors.New("cache: store write ended")

// Config configures a Cache.
type Config struct {
	// Dir holds the blobs, the index and the lock. Required.
	Dir string
	// MaxBytes caps the sum of the stored entries' sizes (compressed); least recently used
	// entries are evicted past it. Default: 10 GiB.
	MaxBytes int64
	// Logger receives what a restore or save could not do (they never fail a stage for
	// it). Default: slog.Default().
	Logger *slog.Logger
	// Now is the clock of entry times. Default: time.Now.
	Now func() time.Time
}

func (c *Config) validate() error {
	if c.Dir == "" {
		return errors.New("cache: Dir is required")
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 10 << 30
	}
	if c.MaxBytes < 0 {
		return fmt.Errorf("cache: MaxBytes %d must be positive", c.MaxBytes)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Cache is the dependency cache of one data directory. Its methods may be called
// concurrently, also by several processes sharing the directory.
type Cache struct {
	cfg   Config
	blobs *Blobs
	index string
	lock  string
	log   *slog.Logger

	hits, partials, misses, corrupt, saves, skipped, evictions atomic.Int64
	restored, saved                                            atomic.Int64
}

// Stats counts what a Cache did since it was opened, for metrics.
type Stats struct {
	Hits, Partials, Misses int64 // restores by outcome
	Corrupt                int64 // entries found not to match their digest, ignored and removed
	Saves                  int64 // entries stored
	SavesSkipped           int64 // saves that stored nothing (exists, empty)
	Evictions              int64 // entries evicted by the size cap
	BytesRestored          int64 // compressed bytes read by successful restores
	BytesSaved             int64 // compressed bytes stored
}

// Open opens (creating) the cache in cfg.Dir.
func Open(cfg Config) (*Cache, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	blobs, err := NewBlobs(filepath.Join(cfg.Dir, "blobs"))
	if err != nil {
		return nil, err
	}
	c := &Cache{cfg: cfg, blobs: blobs, index: filepath.Join(cfg.Dir, "index"), lock: filepath.Join(cfg.Dir, "lock"), log: cfg.Logger}
	if err := os.MkdirAll(c.index, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return c, nil
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits: c.hits.Load(), Partials: c.partials.Load(), Misses: c.misses.Load(), Corrupt: c.corrupt.Load(),
		Saves: c.saves.Load(), SavesSkipped: c.skipped.Load(), Evictions: c.evictions.Load(),
		BytesRestored: c.restored.Load(), BytesSaved: c.saved.Load(),
	}
}

// Scopes says which entries a stage may read and where its saves go.
type Scopes struct {
	Write string   // the scope a save goes to
	Read  []string // scopes searched in order; Write first
}

// ScopesFor derives a run's scopes from its trigger: a branch push (or manual or cron run)
// reads and writes its branch and falls back to the default branch; a pull request writes a
// scope of its own, never the default branch's, and reads it and then the default branch; a
// tag likewise. defaultBranch "" means "main".
func ScopesFor(kind, branch, tag, defaultBranch string) Scopes {
	if defaultBranch == "" {
		defaultBranch = "main"
	}
	base := "branch:" + defaultBranch
	var own string
	switch {
	case kind == "pull_request":
		own = "pull_request:" + branch
	case tag != "" || kind == "tag":
		own = "tag:" + tag
	case branch != "":
		own = "branch:" + branch
	default:
		own = "detached"
	}
	s := Scopes{Write: own, Read: []string{own}}
	if own != base {
		s.Read = append(s.Read, base)
	}
	return s
}

// Request is one cache of one stage attempt.
type Request struct {
	// Namespace says which stages share entries: the executor passes the repository,
	// pipeline and stage; the OS/arch and Paths are added here.
	Namespace string
	// Key is the entry's key, from Key.
	Key string
	// RestoreKeys are prefixes of older keys to restore from when Key misses, in order.
	RestoreKeys []string
	// Paths are globs of the directories to keep, relative to the workspace.
	Paths  []string
	Scopes Scopes
}

func (r Request) namespace() string {
	return strings.Join(append([]string{r.Namespace, runtime.GOOS + "/" + runtime.GOARCH}, r.Paths...), "\x00")
}

// Result is what a restore or save did.
type Result struct {
	Status  string // Hit, Partial or Miss; Saved, Exists or Empty
	Key     string // the key asked for
	Matched string // the restored entry's key (hit, partial)
	Scope   string // the scope restored from or saved to
	Digest  string // the restored or saved blob
	Size    int64  // its size in bytes (compressed)
	Note    string // what went wrong on the way (a corrupt entry ignored, an I/O error), if anything
}

// entry is an index file.
type entry struct {
	Scope     string    `json:"scope"`
	Namespace string    `json:"namespace"`
	Key       string    `json:"key"`
	Digest    string    `json:"digest"`
	Size      int64     `json:"size"`
	Created   time.Time `json:"created"`

	file string // where it was read from
}

func hashHex(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func (c *Cache) bucket(scope string, r Request) string {
	return filepath.Join(c.index, hashHex(scope, r.namespace()))
}

func (c *Cache) entryFile(scope string, r Request, key string) string {
	return filepath.Join(c.bucket(scope, r), hashHex(key)+".json")
}

func readEntry(file string) (*entry, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var e entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("cache: index file %s: %w", file, err)
	}
	if _, err := ParseDigest(e.Digest); err != nil {
		return nil, fmt.Errorf("cache: index file %s: %w", file, err)
	}
	e.file = file
	return &e, nil
}

// candidates lists what Restore tries, best first: per scope, the exact key, then the
// newest entry for each restore key.
func (c *Cache) candidates(r Request) []*entry {
	var out []*entry
	seen := map[string]bool{}
	add := func(e *entry) {
		if !seen[e.file] {
			seen[e.file] = true
			out = append(out, e)
		}
	}
	for _, scope := range r.Scopes.Read {
		if e, err := readEntry(c.entryFile(scope, r, r.Key)); err == nil && e.Key == r.Key {
			add(e)
		}
		if len(r.RestoreKeys) == 0 {
			continue
		}
		dir := c.bucket(scope, r)
		ents, _ := os.ReadDir(dir)
		var all []*entry
		for _, de := range ents {
			if strings.HasSuffix(de.Name(), ".json") {
				if e, err := readEntry(filepath.Join(dir, de.Name())); err == nil {
					all = append(all, e)
				}
			}
		}
		slices.SortFunc(all, func(a, b *entry) int { return b.Created.Compare(a.Created) })
		for _, rk := range r.RestoreKeys {
			// The newest match first; older ones follow only for when it cannot be read.
			for _, e := range all {
				if strings.HasPrefix(e.Key, rk) {
					add(e)
				}
			}
		}
	}
	return out
}

// Restore restores the best entry for r into the workspace ws. Nothing the cache finds
// wrong fails it: a corrupt entry is removed and the next one tried, an unreadable store is
// a miss with a Note. It returns an error only when ctx ends or the workspace cannot be
// written.
func (c *Cache) Restore(ctx context.Context, ws string, r Request) (Result, error) {
	res := Result{Status: Miss, Key: r.Key}
	var notes []string
	for _, e := range c.candidates(r) {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		err := c.restoreEntry(ws, e)
		if errors.Is(err, errWorkspace) {
			return res, err
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("entry %s ignored: %v", e.Key, err))
			if errors.Is(err, ErrDigest) || errors.Is(err, errCorrupt) {
				c.corrupt.Add(1)
				c.log.Warn("cache entry is corrupt; ignored and removed", "key", e.Key, "scope", e.Scope, "digest", e.Digest, "err", err)
				c.drop(e)
			}
			continue
		}
		now := c.cfg.Now()
		_ = os.Chtimes(e.file, now, now) // last use, for eviction
		res.Status, res.Matched, res.Scope, res.Digest, res.Size = Partial, e.Key, e.Scope, e.Digest, e.Size
		if e.Key == r.Key {
			res.Status = Hit
			c.hits.Add(1)
		} else {
			c.partials.Add(1)
		}
		c.restored.Add(e.Size)
		res.Note = strings.Join(notes, "; ")
		return res, nil
	}
	c.misses.Add(1)
	res.Note = strings.Join(notes, "; ")
	return res, nil
}

// drop removes a corrupt entry: its index file, and its blob when nothing else names it.
func (c *Cache) drop(e *entry) {
	unlock, err := c.lockDir()
	if err != nil {
		return
	}
	defer unlock()
	if cur, err := readEntry(e.file); err == nil && cur.Digest == e.Digest {
		os.Remove(e.file)
	}
	c.gc(nil)
}

// Save archives r's paths from ws and stores them under r.Key in r.Scopes.Write, unless
// that key has an entry already. A cache is an optimisation: trouble with the store or the
// workspace is reported as status Failed with a Note, and an error is returned only when
// ctx ends.
func (c *Cache) Save(ctx context.Context, ws string, r Request) (Result, error) {
	res := Result{Key: r.Key, Scope: r.Scopes.Write}
	file := c.entryFile(r.Scopes.Write, r, r.Key)
	if _, err := os.Stat(file); err == nil {
		c.skipped.Add(1)
		res.Status = Exists
		return res, nil
	}
	pr, pw := io.Pipe()
	archived := make(chan archiveResult, 1)
	go func() {
		n, err := writeArchive(ctx, ws, r.Paths, pw)
		pw.CloseWithError(err)
		archived <- archiveResult{n, err}
	}()
	p, werr := c.blobs.write(pr)
	pr.CloseWithError(errStoreEnded)
	ar := <-archived
	if ar.err != nil || werr != nil {
		if p != nil {
			p.discard()
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		err := ar.err
		if err == nil || errors.Is(err, errStoreEnded) {
			err = werr
		}
		c.skipped.Add(1)
		res.Status, res.Note = Failed, fmt.Sprintf("nothing saved: %v", err)
		c.log.Warn("cannot save cache entry", "key", r.Key, "err", err)
		return res, nil
	}
	if ar.files == 0 {
		p.discard()
		c.skipped.Add(1)
		res.Status = Empty
		return res, nil
	}
	res.Digest, res.Size = p.digest, p.size
	status, err := c.commit(p, file, entry{
		Scope: r.Scopes.Write, Namespace: r.namespace(), Key: r.Key, Digest: p.digest, Size: p.size, Created: c.cfg.Now().UTC(),
	})
	if err != nil {
		res.Status, res.Note = Failed, fmt.Sprintf("nothing saved: %v", err)
		c.skipped.Add(1)
		c.log.Warn("cannot save cache entry", "key", r.Key, "err", err)
		return res, nil
	}
	res.Status = status
	if status == Saved {
		c.saves.Add(1)
		c.saved.Add(p.size)
	} else {
		c.skipped.Add(1)
	}
	return res, nil
}

type archiveResult struct {
	files int
	err   error
}

// commit names the blob and links the index file under the lock, then evicts.
func (c *Cache) commit(p *pending, file string, e entry) (string, error) {
	unlock, err := c.lockDir()
	if err != nil {
		p.discard()
		return "", err
	}
	defer unlock()
	if _, err := p.commit(); err != nil {
		return "", err
	}
	b, _ := json.Marshal(e)
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".entry-")
	if err != nil {
		return "", err
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	defer os.Remove(tmp.Name())
	if err == nil {
		err = os.Chtimes(tmp.Name(), e.Created, e.Created) // its last use, for eviction
	}
	if err == nil {
		// A link, not a rename: the first save of a key wins and later ones see it exists.
		err = os.Link(tmp.Name(), file)
	}
	status := Saved
	if errors.Is(err, fs.ErrExist) {
		status, err = Exists, nil
	}
	c.gc(&e)
	return status, err
}

// lockDir takes the directory's exclusive flock (between goroutines too: each call opens
// its own file description).
func (c *Cache) lockDir() (func(), error) {
	f, err := os.OpenFile(c.lock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cache: lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cache: lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// gc runs under the lock: it removes blobs no entry names (a save that lost a race, a
// corrupt entry dropped, a crash between blob and index) and evicts least recently used
// entries while the blobs exceed MaxBytes. keep is the entry just saved, evicted last.
func (c *Cache) gc(keep *entry) {
	type used struct {
		e     *entry
		mtime time.Time
	}
	var entries []used
	refs := map[string]int{}
	_ = filepath.WalkDir(c.index, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return nil
		}
		e, err := readEntry(p)
		if err != nil {
			if !strings.HasPrefix(d.Name(), ".") {
				os.Remove(p) // unreadable: it can never be restored
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		entries = append(entries, used{e, fi.ModTime()})
		refs[e.Digest]++
		return nil
	})
	sizes := map[string]int64{}
	var total int64
	blobDir := filepath.Join(c.blobs.dir, "sha256")
	names, _ := os.ReadDir(blobDir)
	for _, de := range names {
		d := "sha256:" + de.Name()
		if refs[d] == 0 {
			os.Remove(filepath.Join(blobDir, de.Name()))
			continue
		}
		if fi, err := de.Info(); err == nil {
			sizes[d] = fi.Size()
			total += fi.Size()
		}
	}
	if total <= c.cfg.MaxBytes {
		return
	}
	slices.SortFunc(entries, func(a, b used) int {
		ak, bk := keep != nil && a.e.file == c.fileOf(keep), keep != nil && b.e.file == c.fileOf(keep)
		if ak != bk {
			if ak {
				return 1
			}
			return -1
		}
		return a.mtime.Compare(b.mtime)
	})
	for _, u := range entries {
		if total <= c.cfg.MaxBytes {
			break
		}
		if err := os.Remove(u.e.file); err != nil {
			continue
		}
		c.evictions.Add(1)
		c.log.Debug("cache entry evicted", "key", u.e.Key, "scope", u.e.Scope, "size", u.e.Size)
		if refs[u.e.Digest]--; refs[u.e.Digest] == 0 {
			if p, err := c.blobs.Path(u.e.Digest); err == nil && os.Remove(p) == nil {
				total -= sizes[u.e.Digest]
			}
		}
	}
}

func (c *Cache) fileOf(e *entry) string {
	return filepath.Join(c.index, hashHex(e.Scope, e.Namespace), hashHex(e.Key)+".json")
}

// Blobs is the cache's blob store.
func (c *Cache) Blobs() *Blobs { return c.blobs }
