// Package sbom makes a CycloneDX software bill of materials from the lockfiles of a
// repository (go.mod/go.sum, package-lock.json, yarn.lock, pnpm-lock.yaml,
// requirements.txt, poetry.lock, Cargo.lock, pom.xml) and reads one back, checked against
// the CycloneDX JSON schema, for the vulnerability gate.
package sbom

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// skipDirs are directories that hold installed or generated dependencies, or test fixtures
// (testdata, as the go tool treats it), not the repository's own lockfiles.
var skipDirs = map[string]bool{".git": true, "node_modules": true, "vendor": true, "target": true, ".venv": true, "venv": true, "testdata": true}

// Scan finds and parses every lockfile under dir. A go.sum is read only where no go.mod is
// beside it: go.mod lists every module the build needs, go.sum also versions it pruned.
func Scan(ctx context.Context, dir string) ([]Component, error) {
	var all []Component
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() {
			if p != dir && skipDirs[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		if _, ok := parsers[d.Name()]; !ok || !d.Type().IsRegular() {
			return nil
		}
		if d.Name() == "go.sum" {
			if _, err := os.Stat(filepath.Join(filepath.Dir(p), "go.mod")); err == nil {
				return nil
			}
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		cs, err := Parse(filepath.ToSlash(rel), b)
		if err != nil {
			return err
		}
		all = append(all, cs...)
		return nil
	})
	return all, err
}

// New makes the BOM of components; name is what it describes (the repository).
func New(name, version string, cs []Component) *cdx.BOM {
	bom := cdx.NewBOM()
	bom.SpecVersion = cdx.SpecVersion1_6
	bom.Metadata = &cdx.Metadata{
		Component: &cdx.Component{Type: cdx.ComponentTypeApplication, Name: name, Version: version, BOMRef: "root"},
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: "paved gate/sbom"}}},
	}
	comps := make([]cdx.Component, 0, len(cs))
	var refs []string
	seen := map[string]bool{}
	for _, c := range cs {
		purl := c.PURL()
		if seen[purl] {
			continue // one package pinned by two lockfiles is one component
		}
		seen[purl] = true
		comp := cdx.Component{Type: cdx.ComponentTypeLibrary, BOMRef: purl, Name: c.Name, Version: c.Version, PackageURL: purl,
			Properties: &[]cdx.Property{{Name: "paved:lockfile", Value: c.File}, {Name: "paved:ecosystem", Value: c.Ecosystem}}}
		if c.Ecosystem == Maven {
			comp.Group, comp.Name, _ = strings.Cut(c.Name, ":")
		}
		comps = append(comps, comp)
		refs = append(refs, purl)
	}
	bom.Components = &comps
	bom.Dependencies = &[]cdx.Dependency{{Ref: "root", Dependencies: &refs}}
	return bom
}

// Encode writes bom as indented CycloneDX JSON.
func Encode(bom *cdx.BOM) ([]byte, error) {
	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	if err := enc.Encode(bom); err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}
	return buf.Bytes(), nil
}

// The CycloneDX JSON schemas 1.4 to 1.6 with the SPDX and JSF schemas they refer to, as
// published by the CycloneDX project (Apache-2.0, schema/LICENSE), copied from cyclonedx-go
// v0.12.0, which ships them for its tests only.
//
//go:embed schema/*.json
var schemaFS embed.FS

var (
	schemaOnce sync.Once
	schemas    map[string]*jsonschema.Schema
	schemaErr  error
)

// compileSchemas compiles the CycloneDX JSON schemas this package validates against, once.
func compileSchemas() (map[string]*jsonschema.Schema, error) {
	schemaOnce.Do(func() {
		c := jsonschema.NewCompiler()
		entries, _ := fs.ReadDir(schemaFS, "schema")
		for _, e := range entries {
			b, _ := schemaFS.ReadFile("schema/" + e.Name())
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				schemaErr = err
				return
			}
			if err := c.AddResource("http://cyclonedx.org/schema/"+e.Name(), doc); err != nil {
				schemaErr = err
				return
			}
		}
		schemas = map[string]*jsonschema.Schema{}
		for _, v := range []string{"1.4", "1.5", "1.6"} {
			s, err := c.Compile("http://cyclonedx.org/schema/bom-" + v + ".schema.json")
			if err != nil {
				schemaErr = err
				return
			}
			schemas[v] = s
		}
	})
	return schemas, schemaErr
}

// ErrInvalid is wrapped when a BOM is not valid CycloneDX.
var ErrInvalid = errors.New("sbom: not a valid CycloneDX BOM")

// Decode reads a CycloneDX JSON BOM (spec 1.4 to 1.6), validated against its schema; name
// is the file, for messages.
func Decode(name string, b []byte) (*cdx.BOM, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s: want a JSON object", ErrInvalid, name)
	}
	if f, _ := m["bomFormat"].(string); f != "CycloneDX" {
		return nil, fmt.Errorf("%w: %s: bomFormat is %q, want \"CycloneDX\"", ErrInvalid, name, m["bomFormat"])
	}
	sv, _ := m["specVersion"].(string)
	ss, err := compileSchemas()
	if err != nil {
		return nil, fmt.Errorf("sbom: the CycloneDX schemas: %w", err)
	}
	s, ok := ss[sv]
	if !ok {
		return nil, fmt.Errorf("%w: %s: specVersion %q: paved reads CycloneDX 1.4, 1.5 and 1.6", ErrInvalid, name, sv)
	}
	if err := s.Validate(doc); err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrInvalid, name, schemaMessage(err))
	}
	var bom cdx.BOM
	if err := json.Unmarshal(b, &bom); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
	}
	return &bom, nil
}

var english = message.NewPrinter(language.English)

// schemaMessage is the validation error's deepest causes, one line each, with where in the
// document they are (a JSON pointer such as /components/0/type).
func schemaMessage(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	var lines []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			loc := "/" + strings.Join(e.InstanceLocation, "/")
			lines = append(lines, fmt.Sprintf("at %s: %s", loc, e.ErrorKind.LocalizedString(english)))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if len(lines) > 5 {
		lines = append(lines[:5], fmt.Sprintf("and %d more", len(lines)-5))
	}
	return strings.Join(lines, "; ")
}

// Components are the BOM's components that name a package paved can match (a package URL of
// a known type), flattening nested components. File is the lockfile when gate/sbom made the
// BOM (its paved:lockfile property), else empty.
func Components(bom *cdx.BOM) []Component {
	var out []Component
	var walk func(cs *[]cdx.Component)
	walk = func(cs *[]cdx.Component) {
		if cs == nil {
			return
		}
		for _, c := range *cs {
			if pc, ok := FromPURL(c.PackageURL); ok {
				if c.Properties != nil {
					for _, p := range *c.Properties {
						if p.Name == "paved:lockfile" {
							pc.File = p.Value
						}
					}
				}
				out = append(out, pc)
			}
			walk(c.Components)
		}
	}
	walk(bom.Components)
	return dedup(out)
}

// FromPURL reads a package URL of the types paved matches (golang, npm, pypi, cargo, maven).
func FromPURL(purl string) (Component, bool) {
	rest, ok := strings.CutPrefix(purl, "pkg:")
	if !ok {
		return Component{}, false
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	typ, nv, ok := strings.Cut(rest, "/")
	if !ok {
		return Component{}, false
	}
	name, version := nv, ""
	if i := strings.LastIndexByte(nv, '@'); i > 0 {
		name, version = nv[:i], nv[i+1:]
	}
	name, err1 := url.PathUnescape(name)
	version, err2 := url.PathUnescape(version)
	if err1 != nil || err2 != nil || name == "" {
		return Component{}, false
	}
	c := Component{Name: name, Version: version}
	switch strings.ToLower(typ) {
	case "golang":
		c.Ecosystem = Go
	case "npm":
		c.Ecosystem = NPM
	case "pypi":
		c.Ecosystem, c.Name = PyPI, normalisePyPI(name)
	case "cargo":
		c.Ecosystem = Cargo
	case "maven":
		c.Ecosystem = Maven
		g, a := path.Split(name)
		c.Name = strings.TrimSuffix(g, "/") + ":" + a
	default:
		return Component{}, false
	}
	return c, true
}
