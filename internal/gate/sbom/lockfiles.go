package sbom

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"golang.org/x/mod/modfile"
	"gopkg.in/yaml.v3"
)

// OSV ecosystem names, as advisories spell them.
const (
	Go    = "Go"
	NPM   = "npm"
	PyPI  = "PyPI"
	Cargo = "crates.io"
	Maven = "Maven"
)

// Component is one dependency a lockfile pins (or a manifest declares).
type Component struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"` // Maven: group:artifact
	Version   string `json:"version,omitempty"`
	// File is the lockfile it came from, slash-separated, relative to the repository.
	File string `json:"file"`
}

// PURL is the component's package URL.
func (c Component) PURL() string {
	var typ, name string
	switch c.Ecosystem {
	case Go:
		typ, name = "golang", c.Name
	case NPM:
		typ, name = "npm", strings.Replace(c.Name, "@", "%40", 1)
	case PyPI:
		typ, name = "pypi", normalisePyPI(c.Name)
	case Cargo:
		typ, name = "cargo", c.Name
	case Maven:
		typ, name = "maven", strings.Replace(c.Name, ":", "/", 1)
	default:
		typ, name = "generic", c.Name
	}
	p := "pkg:" + typ + "/" + name
	if c.Version != "" {
		p += "@" + c.Version
	}
	return p
}

// ErrLockfile is wrapped by every parse error.
var ErrLockfile = errors.New("sbom: bad lockfile")

// parsers are the lockfiles read, by file name.
var parsers = map[string]func(b []byte) ([]Component, error){
	"go.mod":            parseGoMod,
	"go.sum":            parseGoSum,
	"package-lock.json": parsePackageLock,
	"yarn.lock":         parseYarnLock,
	"pnpm-lock.yaml":    parsePnpmLock,
	"requirements.txt":  parseRequirements,
	"poetry.lock":       parsePoetryLock,
	"Cargo.lock":        parseCargoLock,
	"pom.xml":           parsePom,
}

// Lockfiles are the file names Parse reads.
func Lockfiles() []string {
	var out []string
	for k := range parsers {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Parse reads one lockfile; file is its path (its base name picks the format). Components
// are sorted and without duplicates.
func Parse(file string, b []byte) ([]Component, error) {
	p, ok := parsers[path.Base(file)]
	if !ok {
		return nil, fmt.Errorf("%w: %s: not a lockfile paved reads (it reads %s)", ErrLockfile, file, strings.Join(Lockfiles(), ", "))
	}
	cs, err := p(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s%s", ErrLockfile, file, err)
	}
	for i := range cs {
		cs[i].File = file
	}
	return dedup(cs), nil
}

func dedup(cs []Component) []Component {
	sort.Slice(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.Ecosystem != b.Ecosystem {
			return a.Ecosystem < b.Ecosystem
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Version < b.Version
	})
	out := cs[:0]
	for i, c := range cs {
		if i > 0 && c.Ecosystem == cs[i-1].Ecosystem && c.Name == cs[i-1].Name && c.Version == cs[i-1].Version {
			continue
		}
		out = append(out, c)
	}
	return out
}

// lineErr formats a parse error's position: ":LINE: msg" (or ": msg" without a line).
func lineErr(line int, format string, args ...any) error {
	if line > 0 {
		return fmt.Errorf(":%d: "+format, append([]any{line}, args...)...)
	}
	return fmt.Errorf(": "+format, args...)
}

func parseGoMod(b []byte) ([]Component, error) {
	f, err := modfile.Parse("go.mod", b, nil)
	if err != nil {
		// modfile's errors already start with "go.mod:LINE:"; keep the position.
		msg := err.Error()
		if i := strings.Index(msg, "go.mod:"); i >= 0 {
			msg = msg[i+len("go.mod"):]
			return nil, errors.New(strings.SplitN(msg, "\n", 2)[0])
		}
		return nil, lineErr(0, "%s", msg)
	}
	var cs []Component
	replaced := map[string]string{}
	for _, r := range f.Replace {
		if r.New.Version != "" {
			replaced[r.Old.Path] = r.New.Path + "@" + r.New.Version
		}
	}
	for _, r := range f.Require {
		name, version := r.Mod.Path, r.Mod.Version
		if rep, ok := replaced[name]; ok {
			name, version, _ = strings.Cut(rep, "@")
		}
		cs = append(cs, Component{Ecosystem: Go, Name: name, Version: version})
	}
	return cs, nil
}

func parseGoSum(b []byte) ([]Component, error) {
	var cs []Component
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		if len(fs) != 3 || !strings.HasPrefix(fs[2], "h1:") {
			return nil, lineErr(n, "want MODULE VERSION h1:HASH")
		}
		if strings.HasSuffix(fs[1], "/go.mod") {
			continue // the module's go.mod was read, not necessarily its code
		}
		cs = append(cs, Component{Ecosystem: Go, Name: fs[0], Version: fs[1]})
	}
	return cs, sc.Err()
}

func parsePackageLock(b []byte) ([]Component, error) {
	var lock struct {
		LockfileVersion int `json:"lockfileVersion"`
		Packages        map[string]struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			Link    bool   `json:"link"`
		} `json:"packages"`
		Dependencies map[string]json.RawMessage `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, jsonErr(b, err)
	}
	var cs []Component
	if lock.Packages != nil {
		for key, p := range lock.Packages {
			i := strings.LastIndex(key, "node_modules/")
			if key == "" || i < 0 || p.Link {
				continue // the root project, or a workspace link
			}
			name := key[i+len("node_modules/"):]
			if p.Name != "" {
				name = p.Name
			}
			cs = append(cs, Component{Ecosystem: NPM, Name: name, Version: p.Version})
		}
		return cs, nil
	}
	// lockfileVersion 1: nested dependencies.
	var walk func(deps map[string]json.RawMessage) error
	walk = func(deps map[string]json.RawMessage) error {
		for name, raw := range deps {
			var d struct {
				Version      string                     `json:"version"`
				Dependencies map[string]json.RawMessage `json:"dependencies"`
			}
			if err := json.Unmarshal(raw, &d); err != nil {
				return lineErr(0, "dependency %s: %v", name, err)
			}
			cs = append(cs, Component{Ecosystem: NPM, Name: name, Version: d.Version})
			if err := walk(d.Dependencies); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(lock.Dependencies); err != nil {
		return nil, err
	}
	return cs, nil
}

// jsonErr names the line of a JSON syntax error.
func jsonErr(b []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return lineErr(1+bytes.Count(b[:min(int(se.Offset), len(b))], []byte("\n")), "%v", err)
	case errors.As(err, &te):
		return lineErr(1+bytes.Count(b[:min(int(te.Offset), len(b))], []byte("\n")), "%v", err)
	}
	return lineErr(0, "%v", err)
}

// yarnKey matches a yarn.lock entry header's first specifier: name@range (v1) or
// name@npm:range (berry), the name possibly scoped.
var yarnKey = regexp.MustCompile(`^"?(@?[^@"\s,]+)@`)

func parseYarnLock(b []byte) ([]Component, error) {
	var cs []Component
	var name string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if line[0] != ' ' {
			name = ""
			if !strings.HasSuffix(trimmed, ":") {
				return nil, lineErr(n, "an entry header must end with ':'")
			}
			if strings.HasPrefix(trimmed, "__metadata") {
				continue
			}
			m := yarnKey.FindStringSubmatch(trimmed)
			if m == nil {
				return nil, lineErr(n, "entry %q does not name a package as name@range", trimmed)
			}
			name = m[1]
			continue
		}
		if name == "" || strings.HasPrefix(line, "    ") {
			continue
		}
		if v, ok := strings.CutPrefix(trimmed, "version"); ok && (strings.HasPrefix(v, " ") || strings.HasPrefix(v, ":")) {
			v = strings.Trim(strings.TrimSpace(strings.TrimPrefix(v, ":")), `"'`)
			if strings.Contains(v, "use.local") || v == "0.0.0-use.local" {
				continue // a workspace package
			}
			cs = append(cs, Component{Ecosystem: NPM, Name: name, Version: v})
		}
	}
	return cs, sc.Err()
}

func parsePnpmLock(b []byte) ([]Component, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, yamlErr(err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, lineErr(top.Line, "want a mapping with lockfileVersion and packages")
	}
	var cs []Component
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != "packages" {
			continue
		}
		pk := top.Content[i+1]
		if pk.Kind != yaml.MappingNode {
			continue
		}
		for j := 0; j+1 < len(pk.Content); j += 2 {
			key := pk.Content[j]
			name, version, ok := pnpmKey(key.Value)
			if !ok {
				return nil, lineErr(key.Line, "package key %q is not name@version", key.Value)
			}
			cs = append(cs, Component{Ecosystem: NPM, Name: name, Version: version})
		}
	}
	return cs, nil
}

// pnpmKey reads a packages: key: /name/1.2.3 (v5), /name@1.2.3 (v6), name@1.2.3 (v9), each
// possibly scoped and followed by a peer suffix in parentheses or after an underscore.
func pnpmKey(k string) (name, version string, ok bool) {
	k = strings.TrimPrefix(k, "/")
	if i := strings.IndexByte(k, '('); i >= 0 {
		k = k[:i]
	}
	if m := pnpmV5.FindStringSubmatch(k); m != nil {
		name, version = m[1], m[2]
		// v5 appends peers after an underscore: 7.22.5_supports-color@8.1.1.
		if i := strings.IndexByte(version, '_'); i >= 0 {
			version = version[:i]
		}
	} else if at := strings.LastIndexByte(k, '@'); at > 0 {
		name, version = k[:at], k[at+1:]
	}
	return name, version, name != "" && version != ""
}

// pnpmV5 is a v5 key: name/version, the name possibly scoped (@scope/name).
var pnpmV5 = regexp.MustCompile(`^((?:@[^/@]+/)?[^/@]+)/([^/]+)$`)

func yamlErr(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := regexp.MustCompile(`^line (\d+): (.*)$`).FindStringSubmatch(msg); m != nil {
		return fmt.Errorf(":%s: %s", m[1], m[2])
	}
	return lineErr(0, "%s", msg)
}

var reqName = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$`)

// parseRequirements reads pip requirements: name==version pins the version; any other
// specifier declares the dependency without one.
func parseRequirements(b []byte) ([]Component, error) {
	var cs []Component
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), "\\"))
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "-") || strings.Contains(line, "://") {
			continue // options (-r, -e, --hash, --index-url), URLs
		}
		if i := strings.IndexByte(line, ';'); i >= 0 {
			line = strings.TrimSpace(line[:i]) // an environment marker
		}
		m := reqName.FindStringSubmatch(line)
		if m == nil {
			return nil, lineErr(n, "%q is not a requirement (name, optional [extras], optional version specifier)", line)
		}
		c := Component{Ecosystem: PyPI, Name: normalisePyPI(m[1])}
		spec := strings.TrimSpace(m[3])
		if v, ok := strings.CutPrefix(spec, "==="); ok {
			c.Version = strings.TrimSpace(v)
		} else if v, ok := strings.CutPrefix(spec, "=="); ok && !strings.ContainsAny(v, ",*") {
			c.Version = strings.TrimSpace(v)
		}
		cs = append(cs, c)
	}
	return cs, sc.Err()
}

// normalisePyPI is PEP 503's name normalisation.
func normalisePyPI(name string) string {
	return strings.ToLower(regexp.MustCompile(`[-_.]+`).ReplaceAllString(name, "-"))
}

type tomlPackages struct {
	Package []struct {
		Name    string `toml:"name"`
		Version string `toml:"version"`
		Source  any    `toml:"source"`
	} `toml:"package"`
}

func parseTOMLPackages(b []byte, eco string) ([]Component, error) {
	var lock tomlPackages
	if err := toml.Unmarshal(b, &lock); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			return nil, lineErr(row, "%s", de.Error())
		}
		return nil, lineErr(0, "%v", err)
	}
	var cs []Component
	for _, p := range lock.Package {
		if p.Name == "" {
			return nil, lineErr(0, "a [[package]] without a name")
		}
		name := p.Name
		if eco == PyPI {
			name = normalisePyPI(name)
		}
		cs = append(cs, Component{Ecosystem: eco, Name: name, Version: p.Version})
	}
	return cs, nil
}

func parsePoetryLock(b []byte) ([]Component, error) { return parseTOMLPackages(b, PyPI) }

func parseCargoLock(b []byte) ([]Component, error) {
	cs, err := parseTOMLPackages(b, Cargo)
	if err != nil {
		return nil, err
	}
	// Packages without a source are the workspace's own crates, not dependencies.
	var lock tomlPackages
	_ = toml.Unmarshal(b, &lock)
	out := cs[:0]
	for i, c := range cs {
		if lock.Package[i].Source != nil {
			out = append(out, c)
		}
	}
	return out, nil
}

type pomDep struct {
	GroupID    string `xml:"groupId"`
	ArtifactID string `xml:"artifactId"`
	Version    string `xml:"version"`
	Scope      string `xml:"scope"`
}

// parsePom reads the dependencies a pom.xml declares (not the transitive ones Maven would
// resolve), with ${property} versions filled from <properties> and the project's own.
func parsePom(b []byte) ([]Component, error) {
	var pom struct {
		Version string `xml:"version"`
		GroupID string `xml:"groupId"`
		Parent  struct {
			Version string `xml:"version"`
			GroupID string `xml:"groupId"`
		} `xml:"parent"`
		Properties struct {
			Entries []struct {
				XMLName xml.Name
				Value   string `xml:",chardata"`
			} `xml:",any"`
		} `xml:"properties"`
		Dependencies []pomDep `xml:"dependencies>dependency"`
		Managed      []pomDep `xml:"dependencyManagement>dependencies>dependency"`
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&pom); err != nil {
		line, _ := d.InputPos()
		return nil, lineErr(line, "%v", err)
	}
	props := map[string]string{
		"project.version": pom.Version, "version": pom.Version, "project.groupId": pom.GroupID,
		"project.parent.version": pom.Parent.Version,
	}
	if pom.Version == "" {
		props["project.version"] = pom.Parent.Version
	}
	if pom.GroupID == "" {
		props["project.groupId"] = pom.Parent.GroupID
	}
	for _, e := range pom.Properties.Entries {
		props[e.XMLName.Local] = strings.TrimSpace(e.Value)
	}
	expand := func(s string) string {
		for range 5 { // properties may refer to properties; bounded against cycles
			s2 := regexp.MustCompile(`\$\{([^}]+)\}`).ReplaceAllStringFunc(s, func(m string) string {
				if v, ok := props[m[2:len(m)-1]]; ok {
					return v
				}
				return m
			})
			if s2 == s {
				break
			}
			s = s2
		}
		return strings.TrimSpace(s)
	}
	managed := map[string]string{}
	for _, m := range pom.Managed {
		managed[expand(m.GroupID)+":"+expand(m.ArtifactID)] = expand(m.Version)
	}
	var cs []Component
	for _, dep := range pom.Dependencies {
		if dep.ArtifactID == "" {
			return nil, lineErr(0, "a <dependency> without an <artifactId>")
		}
		name := expand(dep.GroupID) + ":" + expand(dep.ArtifactID)
		v := expand(dep.Version)
		if v == "" {
			v = managed[name]
		}
		if strings.Contains(v, "${") {
			v = "" // a property from a parent POM this file does not have
		}
		cs = append(cs, Component{Ecosystem: Maven, Name: name, Version: v})
	}
	return cs, nil
}
