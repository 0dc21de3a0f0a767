package forge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Object is one Kubernetes object of a rendered manifest directory.
type Object struct {
	Kind, Namespace, Name string
	Doc                   map[string]any
}

// Key names the object as the diff does: kind/namespace/name ("-" for no namespace).
func (o Object) Key() string {
	ns := o.Namespace
	if ns == "" {
		ns = "-"
	}
	return o.Kind + "/" + ns + "/" + o.Name
}

// Limits of what rendering reads from a commit: a repository may hold anything under a
// manifest-like name, and the comment is advice, not worth a server's memory.
const (
	maxManifestBytes = 8 << 20
	maxManifestFiles = 2000
	maxDetectDepth   = 4
)

var (
	// ErrHelmNotRendered is wrapped for a directory that is a Helm chart.
	ErrHelmNotRendered = errors.New("forge: helm charts are not rendered")
	errTooBig          = errors.New("forge: manifests too large to render")
)

var kustomizationFiles = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

func isYAML(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// Render reads the objects of the manifest directory dir of fsys: kustomize's output when
// dir holds a kustomization, else every YAML file in dir (not its subdirectories: list
// each directory). A directory missing in fsys
// renders to no objects (the pull request adds or removes it).
func Render(fsys fs.FS, dir string) ([]Object, error) {
	dir = path.Clean(dir)
	fi, err := fs.Stat(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("forge: %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("forge: manifests %s is not a directory", dir)
	}
	if exists(fsys, path.Join(dir, "Chart.yaml")) {
		return nil, fmt.Errorf("%w (%s): render it in a stage and commit or diff the output", ErrHelmNotRendered, dir)
	}
	for _, k := range kustomizationFiles {
		if exists(fsys, path.Join(dir, k)) {
			return kustomize(fsys, dir)
		}
	}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("forge: %s: %w", dir, err)
	}
	var objs []Object
	n := 0
	for i, e := range entries {
		if i > maxManifestFiles {
			return nil, fmt.Errorf("%w: %s has more than %d files", errTooBig, dir, maxManifestFiles)
		}
		p := path.Join(dir, e.Name())
		if e.IsDir() || !isYAML(p) {
			continue
		}
		b, err := readLimited(fsys, p, &n)
		if err != nil {
			return nil, fmt.Errorf("forge: %s: %w", p, err)
		}
		o, err := decode(b)
		if err != nil {
			return nil, fmt.Errorf("forge: %s: %w", p, err)
		}
		objs = append(objs, o...)
	}
	return objs, nil
}

func exists(fsys fs.FS, name string) bool {
	_, err := fs.Stat(fsys, name)
	return err == nil
}

func readLimited(fsys fs.FS, name string, total *int) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifestBytes-int64(*total)+1))
	if err != nil {
		return nil, err
	}
	*total += len(b)
	if *total > maxManifestBytes {
		return nil, fmt.Errorf("%w: more than %d MiB of YAML", errTooBig, maxManifestBytes>>20)
	}
	return b, nil
}

// decode reads the objects of a multi-document YAML file; documents that are not
// Kubernetes objects (no kind or name) are skipped, a List is opened.
func decode(b []byte) ([]Object, error) {
	var out []Object
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("not valid YAML: %w", err)
		}
		out = append(out, objects(doc)...)
	}
}

func objects(doc map[string]any) []Object {
	kind, _ := doc["kind"].(string)
	if strings.HasSuffix(kind, "List") {
		var out []Object
		items, _ := doc["items"].([]any)
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				out = append(out, objects(m)...)
			}
		}
		return out
	}
	meta, _ := doc["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	ns, _ := meta["namespace"].(string)
	if kind == "" || name == "" {
		return nil
	}
	return []Object{{Kind: kind, Namespace: ns, Name: name, Doc: doc}}
}

// kustomize builds dir with kustomize from an in-memory copy of its top-level directory
// (where its bases are, by convention: k8s/base beside k8s/overlays/prod). Remote bases
// are not fetched: the server reaches no forge but through its API.
func kustomize(fsys fs.FS, dir string) ([]Object, error) {
	top := strings.SplitN(dir, "/", 2)[0]
	mem := filesys.MakeFsInMemory()
	files, n := 0, 0
	err := fs.WalkDir(fsys, top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if files++; files > maxManifestFiles {
			return errTooBig
		}
		b, err := readLimited(fsys, p, &n)
		if err != nil {
			return err
		}
		return mem.WriteFile("/"+p, b)
	})
	if err != nil {
		return nil, fmt.Errorf("forge: kustomize %s: %w", dir, err)
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(mem, "/"+dir)
	if err != nil {
		return nil, fmt.Errorf("forge: kustomize %s: %w", dir, err)
	}
	y, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("forge: kustomize %s: %w", dir, err)
	}
	return decode(y)
}

// DetectManifests finds the manifest directories of a commit when the pipeline names
// none: each directory (down to 4 levels, not hidden, not vendored) holding a
// kustomization, and each other directory with YAML files that are Kubernetes objects
// and is not inside a kustomization's directory. Helm charts are listed too, to be said
// not rendered.
func DetectManifests(fsys fs.FS) []string {
	var found []string
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		entries, err := fs.ReadDir(fsys, dir)
		if err != nil {
			return
		}
		var yamls, subdirs []string
		for _, e := range entries {
			n := e.Name()
			switch {
			case e.IsDir():
				if !strings.HasPrefix(n, ".") && !slices.Contains([]string{"node_modules", "vendor", "testdata", "third_party"}, n) {
					subdirs = append(subdirs, path.Join(dir, n))
				}
			case slices.Contains(kustomizationFiles, n) || n == "Chart.yaml":
				found = append(found, dir)
				return // a chart's templates and an overlay's bases are its own business
			case isYAML(n) && n != ".paved.yml" && n != ".paved.yaml":
				yamls = append(yamls, path.Join(dir, n))
			}
		}
		for _, y := range yamls {
			n := 0
			b, err := readLimited(fsys, y, &n)
			if err != nil {
				continue
			}
			if objs, err := decode(b); err == nil && len(objs) > 0 {
				found = append(found, dir)
				break
			}
		}
		if depth < maxDetectDepth {
			for _, d := range subdirs {
				walk(d, depth+1)
			}
		}
	}
	walk(".", 0)
	return found
}
