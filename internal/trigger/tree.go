package trigger

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FS returns the tree of a commit as a read-only file system, read lazily: a directory is
// listed (git ls-tree) when first opened, a file's content read (git cat-file) when first
// read. It is for inspecting a few files of a commit, such as stack detection does; ctx
// bounds every git command it runs. Symbolic links and submodules are left out.
func (g *Git) FS(ctx context.Context, rev Revision) fs.FS {
	return &treeFS{ctx: ctx, src: rev.Source, sha: rev.SHA, dirs: map[string][]treeEntry{}}
}

type treeFS struct {
	ctx      context.Context
	src, sha string

	mu   sync.Mutex
	dirs map[string][]treeEntry // listed directories, by path ("." for the top)
}

type treeEntry struct {
	name string
	dir  bool
	mode fs.FileMode
	obj  string // the blob's or tree's object id
	size int64
}

var (
	_ fs.FS        = (*treeFS)(nil)
	_ fs.ReadDirFS = (*treeFS)(nil)
)

// list returns the entries of directory dir, sorted by name.
func (t *treeFS) list(dir string) ([]treeEntry, error) {
	t.mu.Lock()
	entries, ok := t.dirs[dir]
	t.mu.Unlock()
	if ok {
		return entries, nil
	}
	obj := t.sha + "^{tree}"
	if dir != "." {
		obj = t.sha + ":" + dir
	}
	out, err := gitRaw(t.ctx, t.src, "ls-tree", "-z", "-l", obj)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: fs.ErrNotExist}
	}
	for rec := range strings.SplitSeq(string(out), "\x00") {
		// <mode> SP <type> SP <object> SP+ <size> TAB <name>
		meta, name, ok := strings.Cut(rec, "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 4 {
			continue
		}
		e := treeEntry{name: name, obj: f[2]}
		switch {
		case f[1] == "tree":
			e.dir, e.mode = true, fs.ModeDir|0o555
		case f[1] == "blob" && (f[0] == "100644" || f[0] == "100755"):
			e.mode = 0o444
			if f[0] == "100755" {
				e.mode = 0o555
			}
			e.size, _ = strconv.ParseInt(f[3], 10, 64)
		default:
			continue // a symbolic link or a submodule
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b treeEntry) int { return strings.Compare(a.name, b.name) })
	t.mu.Lock()
	t.dirs[dir] = entries
	t.mu.Unlock()
	return entries, nil
}

// stat finds the entry of name.
func (t *treeFS) stat(op, name string) (treeEntry, error) {
	if !fs.ValidPath(name) {
		return treeEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return treeEntry{name: ".", dir: true, mode: fs.ModeDir | 0o555}, nil
	}
	entries, err := t.list(path.Dir(name))
	if err != nil {
		return treeEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	i, ok := slices.BinarySearchFunc(entries, path.Base(name), func(e treeEntry, n string) int { return strings.Compare(e.name, n) })
	if !ok {
		return treeEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return entries[i], nil
}

func (t *treeFS) Open(name string) (fs.File, error) {
	e, err := t.stat("open", name)
	if err != nil {
		return nil, err
	}
	if e.dir {
		entries, err := t.list(name)
		if err != nil {
			return nil, err
		}
		return &treeDir{info: treeInfo{e}, entries: entries}, nil
	}
	return &treeFile{t: t, info: treeInfo{e}}, nil
}

func (t *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	e, err := t.stat("readdir", name)
	if err != nil {
		return nil, err
	}
	if !e.dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fmt.Errorf("not a directory")}
	}
	entries, err := t.list(name)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, len(entries))
	for i, e := range entries {
		out[i] = fs.FileInfoToDirEntry(treeInfo{e})
	}
	return out, nil
}

type treeInfo struct{ e treeEntry }

func (i treeInfo) Name() string       { return path.Base(i.e.name) }
func (i treeInfo) Size() int64        { return i.e.size }
func (i treeInfo) Mode() fs.FileMode  { return i.e.mode }
func (i treeInfo) ModTime() time.Time { return time.Time{} }
func (i treeInfo) IsDir() bool        { return i.e.dir }
func (i treeInfo) Sys() any           { return nil }

// treeFile reads its blob at the first Read.
type treeFile struct {
	t    *treeFS
	info treeInfo
	r    *bytes.Reader
}

func (f *treeFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *treeFile) Close() error               { return nil }

func (f *treeFile) Read(p []byte) (int, error) {
	if f.r == nil {
		out, err := gitRaw(f.t.ctx, f.t.src, "cat-file", "blob", f.info.e.obj)
		if err != nil {
			return 0, &fs.PathError{Op: "read", Path: f.info.e.name, Err: err}
		}
		f.r = bytes.NewReader(out)
	}
	return f.r.Read(p)
}

type treeDir struct {
	info    treeInfo
	entries []treeEntry
	off     int
}

func (d *treeDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *treeDir) Close() error               { return nil }
func (d *treeDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.e.name, Err: fmt.Errorf("is a directory")}
}

func (d *treeDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n > 0 && len(rest) == 0 {
		return nil, io.EOF
	}
	if n > 0 && n < len(rest) {
		rest = rest[:n]
	}
	d.off += len(rest)
	out := make([]fs.DirEntry, len(rest))
	for i, e := range rest {
		out[i] = fs.FileInfoToDirEntry(treeInfo{e})
	}
	return out, nil
}
