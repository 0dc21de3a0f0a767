package stack

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// ErrNothingFound is returned by Detect when no directory holds a stack it knows.
var ErrNothingFound = errors.New("stack: nothing to build found")

// Detection is what Detect found in a repository.
type Detection struct {
	Projects []*Project
}

// Project is one directory with something to build: the repository's top ("."), or a
// top-level subdirectory of a monorepo.
type Project struct {
	Dir      string    // "." or a directory relative to the repository's top
	Prefix   string    // prepended to its stage names: "" for ".", else "DIR-"
	Findings []Finding // what each file told, in the order found
	Stacks   []string  // go, node, python, maven, gradle, cargo, helm, kubernetes, terraform, docker, make

	stages []*stage
}

// Finding is one detected file and what it means for the pipeline.
type Finding struct {
	Path    string // relative to the repository's top
	Meaning string
}

// maxRead bounds what detection reads of one file: manifests are small, and a repository
// (or a commit pushed to the server) may hold huge files under manifest-like names.
const maxRead = 1 << 20

// skipDirs are top-level directories that never hold a project of their own.
var skipDirs = []string{"node_modules", "vendor", "testdata", "third_party", "target", "build", "dist", "out"}

// Detect inspects the repository in fsys (its top is ".") and returns its projects.
// It wraps ErrNothingFound when no directory holds a known stack.
func Detect(fsys fs.FS) (*Detection, error) {
	d := &Detection{}
	top, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("stack: read the repository: %w", err)
	}
	if p := detectDir(fsys, ".", top); p != nil {
		d.Projects = append(d.Projects, p)
	}
	for _, e := range top {
		name := e.Name()
		if !e.IsDir() || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || slices.Contains(skipDirs, name) || !plainDir(name) {
			continue
		}
		entries, err := fs.ReadDir(fsys, name)
		if err != nil {
			continue // unreadable: nothing to say about it
		}
		if p := detectDir(fsys, name, entries); p != nil {
			d.Projects = append(d.Projects, p)
			continue
		}
		// charts/NAME/Chart.yaml: the usual home of a repository's Helm charts.
		for _, sub := range entries {
			if !sub.IsDir() || strings.HasPrefix(sub.Name(), ".") || !plainDir(sub.Name()) {
				continue
			}
			dir := name + "/" + sub.Name()
			if exists(fsys, dir+"/Chart.yaml") {
				if p := detectDir(fsys, dir, nil); p != nil {
					d.Projects = append(d.Projects, p)
				}
			}
		}
	}
	// Directories whose names differ only in characters a stage name cannot hold ("a b",
	// "a-b") would share stage names: later ones get a number.
	seen := map[string]bool{}
	for _, p := range d.Projects {
		for _, st := range p.stages {
			name := st.name
			for i := 2; seen[name]; i++ {
				name = fmt.Sprintf("%s-%d", st.name, i)
			}
			st.name, seen[name] = name, true
		}
	}
	if len(d.Projects) == 0 {
		return nil, fmt.Errorf("%w (looked for go.mod, package.json, pom.xml, build.gradle, requirements.txt, pyproject.toml, Cargo.toml, Chart.yaml, Kubernetes manifests, *.tf, Dockerfile and Makefile at the top and in each top-level directory)", ErrNothingFound)
	}
	return d, nil
}

// detectDir runs every detector on one directory; nil when none found anything.
func detectDir(fsys fs.FS, dir string, entries []fs.DirEntry) *Project {
	if entries == nil {
		var err error
		if entries, err = fs.ReadDir(fsys, dir); err != nil {
			return nil
		}
	}
	p := &Project{Dir: dir}
	if dir != "." {
		p.Prefix = stageName(dir) + "-"
	}
	x := &dirInfo{fsys: fsys, dir: dir, p: p, files: map[string]bool{}}
	for _, e := range entries {
		if e.Type().IsRegular() {
			x.files[e.Name()] = true
		} else if e.IsDir() {
			x.dirs = append(x.dirs, e.Name())
		}
	}
	for _, det := range detectors {
		det(x)
	}
	if len(p.stages) == 0 {
		makefile(x) // only when nothing else says how to build
	}
	if len(p.stages) == 0 {
		return nil
	}
	// Two stacks in one directory (a Go module with a Python tool beside it) both have a
	// build and a test: such names get their stack's name in front.
	count := map[string]int{}
	for _, s := range p.stages {
		count[s.name]++
	}
	for _, s := range p.stages {
		if count[s.name] > 1 {
			s.name = p.Prefix + s.stack + "-" + strings.TrimPrefix(s.name, p.Prefix)
		}
	}
	return p
}

// detectors run in this order; their stages come out in it.
var detectors = []func(*dirInfo){goModule, node, python, maven, gradle, cargo, helm, kubernetes, terraform, docker}

// dirInfo is one directory being inspected.
type dirInfo struct {
	fsys  fs.FS
	dir   string
	p     *Project
	files map[string]bool // regular files directly in dir
	dirs  []string        // subdirectories
	cur   string          // the stack being detected
}

// rel is a path of the directory relative to the repository's top.
func (x *dirInfo) rel(name string) string { return path.Join(x.dir, name) }

func (x *dirInfo) has(name string) bool { return x.files[name] }

// read returns a file of the directory, at most maxRead bytes; nil when it cannot.
func (x *dirInfo) read(name string) []byte {
	return readFile(x.fsys, x.rel(name))
}

func (x *dirInfo) found(name, format string, args ...any) {
	x.p.Findings = append(x.p.Findings, Finding{Path: x.rel(name), Meaning: fmt.Sprintf(format, args...)})
}

func (x *dirInfo) stack(name string) {
	x.cur = name
	if !slices.Contains(x.p.Stacks, name) {
		x.p.Stacks = append(x.p.Stacks, name)
	}
}

// add appends a stage of the project; cmd lines run in the project's directory.
func (x *dirInfo) add(s *stage) {
	s.name = x.p.Prefix + s.name
	s.stack = x.cur
	s.cache = cloneCache(s.cache) // detectors share entries between their stages
	if x.dir != "." {
		s.dir = x.dir
		for i, k := range s.cache {
			s.cache[i].keyFiles = prefixAll(x.dir, k.keyFiles)
			s.cache[i].paths = prefixAll(x.dir, k.paths)
		}
		s.artifacts = prefixAll(x.dir, s.artifacts)
	}
	x.p.stages = append(x.p.stages, s)
}

func prefixAll(dir string, list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = dir + "/" + s
	}
	return out
}

func readFile(fsys fs.FS, name string) []byte {
	f, err := fsys.Open(name)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRead))
	if err != nil {
		return nil
	}
	return b
}

func exists(fsys fs.FS, name string) bool {
	_, err := fs.Stat(fsys, name)
	return err == nil
}

// plainDir says whether a directory's name can stand in the cache paths, key files and
// artifacts of its project, which are globs: one with glob syntax, a colon or a control
// character is not looked into.
func plainDir(name string) bool {
	return !strings.ContainsAny(name, "*?[]{}\\:") && strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

var nameBad = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// stageName turns a directory path into a stage name's prefix: "services/api" → "services-api".
func stageName(dir string) string {
	s := strings.Trim(nameBad.ReplaceAllString(strings.ReplaceAll(dir, "/", "-"), "-"), "-._")
	if s == "" {
		return "project"
	}
	return s
}
