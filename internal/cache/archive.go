package cache

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
)

var (
	// errWorkspace marks a restore that failed writing the workspace (not the cache's fault).
	errWorkspace = errors.New("cache: workspace")
	// errCorrupt marks an entry whose archive cannot be read.
	errCorrupt = errors.New("cache: entry unreadable")
)

// Key computes the key of r in the workspace ws: prefix (the pipeline's key:, or the stage
// name), a dash, and a hash of r's namespace (with OS/arch and paths) and the contents of every
// file the key_files globs match (sorted by path; symlinks by their target, not followed).
// A glob that matches nothing adds nothing, as GitHub's hashFiles.
func Key(ws string, r Request, prefix string, keyFiles []string) (string, error) {
	h := sha256.New()
	for _, p := range []string{"paved-cache-v1", r.namespace(), prefix} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	if len(keyFiles) > 0 {
		root, err := os.OpenRoot(ws)
		if err != nil {
			return "", fmt.Errorf("cache: key: %w", err)
		}
		defer root.Close()
		var files []string
		for _, g := range keyFiles {
			m, err := Glob(root, g)
			if err != nil {
				return "", fmt.Errorf("cache: key_files %q: %w", g, err)
			}
			files = append(files, m...)
		}
		slices.Sort(files)
		for _, f := range slices.Compact(files) {
			fi, err := root.Lstat(f)
			if err != nil {
				return "", fmt.Errorf("cache: key_files: %w", err)
			}
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				t, err := root.Readlink(f)
				if err != nil {
					return "", fmt.Errorf("cache: key_files: %w", err)
				}
				fmt.Fprintf(h, "L %s\x00%s\x00", f, t)
			case fi.Mode().IsRegular():
				fmt.Fprintf(h, "F %s\x00%d\x00", f, fi.Size())
				in, err := root.Open(f)
				if err != nil {
					return "", fmt.Errorf("cache: key_files: %w", err)
				}
				_, err = io.Copy(h, in)
				in.Close()
				if err != nil {
					return "", fmt.Errorf("cache: key_files: %w", err)
				}
			}
		}
	}
	return prefix + "-" + hex.EncodeToString(h.Sum(nil))[:24], nil
}

// Glob matches a workspace-relative pattern (doublestar) in root without following
// symlinks: a link is matched as itself, never as what it points at, so what steps left in a
// workspace cannot steer a copy out of it. The cache's paths and the executor's artifacts
// are matched with it.
func Glob(root *os.Root, g string) ([]string, error) {
	pattern := path.Clean(strings.TrimPrefix(g, "./"))
	if path.IsAbs(pattern) || pattern == ".." || strings.HasPrefix(pattern, "../") || !doublestar.ValidatePattern(pattern) {
		return nil, errors.New("not a glob relative to the workspace")
	}
	return doublestar.Glob(lstatFS{root}, pattern, doublestar.WithNoFollow(), doublestar.WithFailOnIOErrors())
}

// lstatFS is a workspace seen without following symlinks. doublestar calls fs.Stat on
// literal patterns and directory prefixes; through os.Root that follows a symlink and fails
// on one that points out of the workspace (or matches nothing for a dangling one), while
// the link itself is what is to be matched.
type lstatFS struct{ r *os.Root }

func (f lstatFS) Open(name string) (fs.File, error) { return f.r.FS().Open(name) }

func (f lstatFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	return f.r.Lstat(name)
}

func (f lstatFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(f.r.FS(), name) }

// writeArchive writes a gzip-compressed tar of what the path globs match in ws to w and
// returns how many entries it holds. The workspace was written by steps: it is read
// through os.Root, symlinks are archived as links, special files skipped.
func writeArchive(ctx context.Context, ws string, paths []string, w io.Writer) (int, error) {
	root, err := os.OpenRoot(ws)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	var matches []string
	for _, g := range paths {
		m, err := Glob(root, g)
		if err != nil {
			return 0, fmt.Errorf("paths %q: %w", g, err)
		}
		matches = append(matches, m...)
	}
	slices.Sort(matches)
	zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed) // restores wait on it; speed over ratio
	tw := tar.NewWriter(zw)
	a := &archiver{ctx: ctx, tw: tw, buf: make([]byte, 256<<10)}
	done := ""
	for _, m := range matches {
		if done != "" && (m == done || strings.HasPrefix(m, done+"/")) {
			continue // inside a directory archived whole
		}
		if m == "." {
			return 0, errors.New("paths: the workspace itself cannot be cached; name directories inside it")
		}
		if err := a.parents(root, m); err != nil {
			return 0, err
		}
		fi, err := root.Lstat(m)
		if err != nil {
			return 0, err
		}
		if err := a.entry(root, m, m, fi); err != nil {
			return 0, err
		}
		if fi.IsDir() {
			done = m
		}
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	return a.n, zw.Close()
}

type archiver struct {
	ctx  context.Context
	tw   *tar.Writer
	buf  []byte
	n    int
	dirs map[string]bool
}

// parents archives the directories above name (so a restore recreates them with their modes).
func (a *archiver) parents(root *os.Root, name string) error {
	if a.dirs == nil {
		a.dirs = map[string]bool{}
	}
	dir := path.Dir(name)
	if dir == "." || a.dirs[dir] {
		return nil
	}
	if err := a.parents(root, dir); err != nil {
		return err
	}
	a.dirs[dir] = true
	fi, err := root.Lstat(dir)
	if err != nil {
		return err
	}
	return a.header(fi, dir, "")
}

func (a *archiver) header(fi fs.FileInfo, name, link string) error {
	h, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	h.Name, h.Uname, h.Gname, h.Uid, h.Gid = name, "", "", 0, 0
	h.Format = tar.FormatPAX
	h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
	if fi.IsDir() {
		h.Name += "/"
	}
	a.n++
	return a.tw.WriteHeader(h)
}

// entry archives one entry of dir (opened as its own root, so every open is one component).
func (a *archiver) entry(dir *os.Root, name, full string, fi fs.FileInfo) error {
	if err := a.ctx.Err(); err != nil {
		return err
	}
	switch mode := fi.Mode(); {
	case mode&fs.ModeSymlink != 0:
		t, err := dir.Readlink(name)
		if err != nil {
			return err
		}
		return a.header(fi, full, t)
	case mode.IsRegular():
		f, err := dir.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := a.header(fi, full, ""); err != nil {
			return err
		}
		// A file that grows while it is read (a background process) is cut at the size the
		// header promised; one that shrinks fails the save.
		_, err = io.CopyBuffer(a.tw, io.LimitReader(f, fi.Size()), a.buf)
		return err
	case mode.IsDir():
		if err := a.header(fi, full, ""); err != nil {
			return err
		}
		sub, err := dir.OpenRoot(name)
		if err != nil {
			return err
		}
		defer sub.Close()
		d, err := sub.Open(".")
		if err != nil {
			return err
		}
		ents, err := d.ReadDir(-1)
		d.Close()
		if err != nil {
			return err
		}
		slices.SortFunc(ents, func(x, y fs.DirEntry) int { return strings.Compare(x.Name(), y.Name()) })
		for _, e := range ents {
			efi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			if err := a.entry(sub, e.Name(), full+"/"+e.Name(), efi); err != nil {
				return err
			}
		}
		return nil
	default:
		return nil // sockets, pipes, devices
	}
}

// restoreEntry extracts e's blob into a staging directory in ws while hashing it, and
// moves what it holds into place only when the digest matched.
func (c *Cache) restoreEntry(ws string, e *entry) error {
	f, err := c.blobs.Open(e.Digest)
	if err != nil {
		return err // evicted meanwhile, or unreadable: try the next
	}
	defer f.Close()
	root, err := os.OpenRoot(ws)
	if err != nil {
		return fmt.Errorf("%w: %v", errWorkspace, err)
	}
	defer root.Close()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	stage := ".paved-cache-" + hex.EncodeToString(rnd[:])
	if err := root.Mkdir(stage, 0o700); err != nil {
		return fmt.Errorf("%w: %v", errWorkspace, err)
	}
	defer root.RemoveAll(stage)
	sr, err := root.OpenRoot(stage)
	if err != nil {
		return fmt.Errorf("%w: %v", errWorkspace, err)
	}
	defer sr.Close()

	v := Verify(f, e.Digest)
	top, err := extract(sr, v)
	if err != nil {
		// Unreadable is corrupt when the bytes do not match; else (a full disk) the workspace's.
		if verr := v.Check(); verr != nil {
			return verr
		}
		if errors.Is(err, errCorrupt) {
			return err
		}
		return fmt.Errorf("%w: %v", errWorkspace, err)
	}
	if err := v.Check(); err != nil {
		return err
	}
	for _, name := range top {
		if err := move(root, stage+"/"+name, name); err != nil {
			return fmt.Errorf("%w: restore %s: %v", errWorkspace, name, err)
		}
	}
	return nil
}

// extract unpacks a gzip-compressed tar into root and returns its top-level names.
func extract(root *os.Root, r io.Reader) ([]string, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	tr := tar.NewReader(zr)
	type dirMode struct {
		name  string
		mode  fs.FileMode
		mtime time.Time
	}
	var dirs []dirMode
	var top []string
	buf := make([]byte, 256<<10)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errCorrupt, err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if !fs.ValidPath(name) || name == "." {
			return nil, fmt.Errorf("%w: entry %q is not a relative path", errCorrupt, h.Name)
		}
		if first, _, _ := strings.Cut(name, "/"); !slices.Contains(top, first) {
			top = append(top, first)
		}
		if dir := path.Dir(name); dir != "." {
			if err := root.MkdirAll(dir, 0o700); err != nil {
				return nil, err
			}
		}
		mode := fs.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, err
			}
			dirs = append(dirs, dirMode{name, mode, h.ModTime})
		case tar.TypeSymlink:
			if err := root.Symlink(h.Linkname, name); err != nil {
				return nil, err
			}
		case tar.TypeReg:
			out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return nil, err
			}
			_, err = io.CopyBuffer(out, tr, buf)
			if err == nil {
				err = out.Chmod(mode)
			}
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gzip.ErrChecksum) {
					err = fmt.Errorf("%w: %v", errCorrupt, err)
				}
				return nil, err
			}
			if err := root.Chtimes(name, h.ModTime, h.ModTime); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%w: entry %q has type %s", errCorrupt, h.Name, strconv.QuoteRune(rune(h.Typeflag)))
		}
	}
	// Deepest first, so a read-only directory is closed after its contents are in.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if err := root.Chmod(d.name, d.mode|0o700); err != nil {
			return nil, err
		}
		_ = root.Chtimes(d.name, d.mtime, d.mtime)
	}
	return top, nil
}

// move puts from at to in root: renamed when nothing is there, merged into an existing
// directory entry by entry, replacing anything else.
func move(root *os.Root, from, to string) error {
	fi, err := root.Lstat(to)
	if errors.Is(err, fs.ErrNotExist) {
		return root.Rename(from, to)
	}
	if err != nil {
		return err
	}
	sfi, err := root.Lstat(from)
	if err != nil {
		return err
	}
	if !fi.IsDir() || !sfi.IsDir() {
		if err := root.RemoveAll(to); err != nil {
			return err
		}
		return root.Rename(from, to)
	}
	d, err := root.Open(from)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := move(root, from+"/"+n, to+"/"+n); err != nil {
			return err
		}
	}
	return nil
}
