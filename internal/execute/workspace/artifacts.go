package workspace

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute"
)

// StoreArtifacts stores what the globs match in the workspace in blobs and lists it, sorted
// by path. The workspace was written by the steps and is not trusted: it is read through an
// os.Root (no symlink leads out of it) and a symlink is recorded as a link, never followed,
// so an artifact cannot be a host file such as paved's database. Each file is hashed while
// it is copied into the store, so its bytes are read once.
func StoreArtifacts(ws string, globs []string, blobs *cache.Blobs) ([]execute.Artifact, error) {
	if len(globs) == 0 {
		return nil, nil
	}
	root, err := os.OpenRoot(ws)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	// Every glob is matched before anything is stored: a glob that matches nothing fails
	// the stage without leaving blobs that no run names.
	type match struct{ glob, path string }
	var matches []match
	for _, g := range globs {
		found, err := cache.Glob(root, g)
		if err != nil {
			return nil, fmt.Errorf("artifact %q: %w", g, err)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("artifact %q matched nothing in the workspace: %w", g, execute.ErrArtifactMissing)
		}
		// A matched directory is taken whole, so anything else matched below it (as
		// "out/**" matches "out" and all its files) is in already.
		slices.Sort(found)
		walked := ""
		for _, m := range found {
			if walked != "" && (m == walked || strings.HasPrefix(m, walked+"/")) {
				continue
			}
			matches = append(matches, match{g, m})
			if fi, err := root.Lstat(m); err == nil && fi.IsDir() {
				walked = m
			}
		}
	}
	s := &artifactStorer{blobs: blobs, found: map[string]execute.Artifact{}}
	for _, m := range matches {
		fi, err := root.Lstat(m.path)
		if err != nil {
			return nil, fmt.Errorf("artifact %q: %w", m.glob, err)
		}
		if err := s.add(root, m.path, m.path, fi); err != nil {
			return nil, fmt.Errorf("artifact %q: %w", m.glob, err)
		}
	}
	out := make([]execute.Artifact, 0, len(s.found))
	for _, a := range s.found {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b execute.Artifact) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

type artifactStorer struct {
	blobs *cache.Blobs
	found map[string]execute.Artifact // by path: two globs matching one file store it once
}

// add stores the entry name of dir, which is rel in the workspace. Each directory is opened
// as its own os.Root so that reading an entry is a one-component operation (an openat), as
// in copyTree.
func (s *artifactStorer) add(dir *os.Root, name, rel string, fi fs.FileInfo) error {
	if _, ok := s.found[rel]; ok {
		return nil
	}
	switch mode := fi.Mode(); {
	case mode.IsDir():
		d, entries, err := listRoot(dir, name)
		if err != nil {
			return err
		}
		defer d.Close()
		if len(entries) == 0 && rel != "." {
			// Listed only when empty: a directory with entries is made by its entries.
			s.found[rel] = execute.Artifact{Path: rel, Mode: fs.ModeDir | mode.Perm()}
			return nil
		}
		for _, efi := range entries {
			if err := s.add(d, efi.Name(), path.Join(rel, efi.Name()), efi); err != nil {
				return err
			}
		}
		return nil
	case mode&fs.ModeSymlink != 0:
		target, err := dir.Readlink(name)
		if err != nil {
			return err
		}
		s.found[rel] = execute.Artifact{Path: rel, Mode: fs.ModeSymlink | fs.ModePerm, Link: target}
		return nil
	case mode.IsRegular():
		f, err := dir.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		// Lstat said regular; what was opened must be too (it cannot have been swapped
		// for a FIFO or a link: the steps have ended, but the check costs nothing).
		if ofi, err := f.Stat(); err != nil || !ofi.Mode().IsRegular() {
			return fmt.Errorf("%s: changed while being stored", rel)
		}
		digest, size, err := s.blobs.Put(f)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		s.found[rel] = execute.Artifact{Path: rel, Digest: digest, Size: size, Mode: mode.Perm()}
		return nil
	default:
		return nil // sockets, devices and pipes are not artifacts
	}
}

// Materialise writes the entries into the workspace, in order, from blobs. The
// workspace holds the checkout, which may have a symlink where an artifact goes: every
// operation goes through an os.Root, directories on the way are made real (a symlink or
// file in the way is replaced, never followed), and what is at an entry's path is replaced,
// except a directory onto a directory. Files are verified against their digest as they are
// written; they get the current time, so they are newer than the checkout's files and a
// build tool comparing modification times does not rebuild them.
func Materialise(ws string, entries []execute.Artifact, blobs *cache.Blobs) error {
	if len(entries) == 0 {
		return nil
	}
	root, err := os.OpenRoot(ws)
	if err != nil {
		return err
	}
	defer root.Close()
	m := &materialiser{root: root, blobs: blobs, real: map[string]bool{}}
	for _, a := range entries {
		if err := m.put(a); err != nil {
			return fmt.Errorf("artifact %s: %w", a.Path, err)
		}
	}
	return nil
}

type materialiser struct {
	root  *os.Root
	blobs *cache.Blobs
	// real are directories known to be directories (made or checked), so a tree of many
	// files costs one Lstat per directory, not per file and level.
	real map[string]bool
}

func (m *materialiser) put(a execute.Artifact) error {
	if a.Path == "." || !fs.ValidPath(a.Path) {
		return errors.New("not a path relative to the workspace")
	}
	if dir := path.Dir(a.Path); dir != "." {
		if err := m.dir(dir); err != nil {
			return err
		}
	}
	switch {
	case a.Mode&fs.ModeDir != 0:
		if err := m.dir(a.Path); err != nil {
			return err
		}
		return m.root.Chmod(a.Path, a.Mode.Perm()|0o700) // we may have to fill it later
	case a.Mode&fs.ModeSymlink != 0:
		err := m.root.Symlink(a.Link, a.Path)
		if errors.Is(err, fs.ErrExist) {
			if err = m.remove(a.Path); err == nil {
				err = m.root.Symlink(a.Link, a.Path)
			}
		}
		return err
	case a.Mode.IsRegular():
		return m.file(a)
	default:
		return fmt.Errorf("mode %v: not a file, symlink or directory", a.Mode)
	}
}

func (m *materialiser) file(a execute.Artifact) error {
	blob, err := m.blobs.Open(a.Digest)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s is missing from the artifact store %s", a.Digest, m.blobs.Dir())
	}
	if err != nil {
		return err
	}
	defer blob.Close()
	const flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	out, err := m.root.OpenFile(a.Path, flags, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Removed rather than truncated: it may be a symlink or a hard link to a file
		// that must not change.
		if err = m.remove(a.Path); err == nil {
			out, err = m.root.OpenFile(a.Path, flags, 0o600)
		}
	}
	if err != nil {
		return err
	}
	v := cache.Verify(blob, a.Digest)
	if _, err := io.Copy(out, v); err != nil {
		out.Close()
		return err
	}
	if err := v.Check(); err != nil {
		out.Close()
		return fmt.Errorf("blob %s in the artifact store is corrupt: %w", a.Digest, err)
	}
	// Chmod after create: the umask would otherwise drop bits of the recorded mode.
	if err := out.Chmod(a.Mode.Perm()); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// dir makes rel and its parents real directories, replacing anything else in the way.
func (m *materialiser) dir(rel string) error {
	cur := ""
	for _, el := range strings.Split(rel, "/") {
		cur = path.Join(cur, el)
		if m.real[cur] {
			continue
		}
		fi, err := m.root.Lstat(cur)
		switch {
		case err == nil && fi.IsDir():
		case err == nil || errors.Is(err, fs.ErrNotExist):
			if err == nil {
				if err := m.remove(cur); err != nil {
					return err
				}
			}
			if err := m.root.Mkdir(cur, 0o755); err != nil {
				return err
			}
		default:
			return err
		}
		m.real[cur] = true
	}
	return nil
}

// remove deletes what is at rel and forgets the directories it held.
func (m *materialiser) remove(rel string) error {
	for d := range m.real {
		if d == rel || strings.HasPrefix(d, rel+"/") {
			delete(m.real, d)
		}
	}
	return m.root.RemoveAll(rel)
}
