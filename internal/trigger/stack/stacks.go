package stack

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Each detector looks at one directory (dirInfo), records what it found and adds the
// stages that build and test it. Tool caches live in the workspace (cache paths must be
// inside it) under dot-directories, which Go's ./..., globs and most tools skip.

// goEnv points Go's caches into the workspace. Go wants them absolute, and pipeline env
// values are taken literally, so the step sets them from $PWD.
const goEnv = "GOMODCACHE=$PWD/.gomodcache GOCACHE=$PWD/.gocache "

func goModule(x *dirInfo) {
	if !x.has("go.mod") {
		return
	}
	mod, version := "", ""
	for _, line := range strings.Split(string(x.read("go.mod")), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "module" {
			mod = strings.Trim(f[1], `"`)
		}
		if len(f) == 2 && f[0] == "go" {
			version = f[1]
		}
	}
	what := "a Go module"
	if mod != "" {
		what = "Go module " + mod
	}
	if version != "" {
		what += " (go " + version + ")"
	}
	x.found("go.mod", "%s: go build, then go vet and go test", what)
	if x.has("go.sum") {
		x.found("go.sum", "pins its dependencies: the key of the Go module and build caches")
	}
	x.stack("go")
	mains := goMains(x)
	if len(mains) > 0 {
		x.found(mains[0], "package main: the build keeps its binaries in out/ as artifacts")
	}
	cache := []cacheEntry{{key: "go", keyFiles: []string{"go.mod", "go.sum"}, paths: []string{".gomodcache", ".gocache"}}}
	// -trimpath keeps absolute workspace paths out of the build cache's keys: every stage
	// attempt has its own workspace path, and without it the cache would never hit.
	env := [][2]string{{"GOFLAGS", "-trimpath"}}
	build := &stage{name: "build", env: env, cache: cache, steps: []string{goEnv + "go build ./..."}}
	if len(mains) > 0 {
		build.steps = []string{goEnv + "go build -o out/ ./..."}
		build.artifacts = []string{"out/*"}
	}
	x.add(build)
	x.add(&stage{name: "test", env: env, cache: []cacheEntry{{key: "go", keyFiles: cache[0].keyFiles, paths: cache[0].paths}},
		steps: []string{goEnv + "go vet ./...", goEnv + "go test ./..."}})
}

// goMains lists the files of main packages at the module's top and in cmd/*.
func goMains(x *dirInfo) []string {
	dirs := []string{"."}
	if slices.Contains(x.dirs, "cmd") {
		if entries, err := readDir(x, "cmd"); err == nil {
			for _, e := range entries {
				if e.IsDir() {
					dirs = append(dirs, "cmd/"+e.Name())
				}
			}
		}
	}
	var out []string
	for _, d := range dirs {
		entries, err := readDir(x, d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			n := e.Name()
			if !e.Type().IsRegular() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
				continue
			}
			name := path.Join(d, n)
			f, err := parser.ParseFile(token.NewFileSet(), name, x.read(name), parser.PackageClauseOnly)
			if err == nil && f.Name.Name == "main" {
				out = append(out, name)
			}
			break // one file names the directory's package
		}
		if len(out) >= 20 {
			break
		}
	}
	return out
}

func node(x *dirInfo) {
	if !x.has("package.json") {
		return
	}
	var pkg struct {
		Name           string            `json:"name"`
		Scripts        map[string]string `json:"scripts"`
		PackageManager string            `json:"packageManager"`
	}
	if err := json.Unmarshal(x.read("package.json"), &pkg); err != nil {
		x.found("package.json", "not valid JSON (%v): skipped", err)
		return
	}
	x.stack("node")
	type manager struct {
		lock, install, run string
		cache              []string
		env                [][2]string
	}
	var m manager
	switch {
	case x.has("pnpm-lock.yaml"):
		m = manager{"pnpm-lock.yaml", "pnpm install --frozen-lockfile --store-dir .pnpm-store", "pnpm run", []string{".pnpm-store"}, nil}
	case x.has("yarn.lock") && (x.has(".yarnrc.yml") || strings.HasPrefix(pkg.PackageManager, "yarn@") && !strings.HasPrefix(pkg.PackageManager, "yarn@1")):
		m = manager{"yarn.lock", "yarn install --immutable", "yarn run", []string{".yarn/cache"}, [][2]string{{"YARN_ENABLE_GLOBAL_CACHE", "false"}}}
	case x.has("yarn.lock"):
		m = manager{"yarn.lock", "yarn install --frozen-lockfile --cache-folder .yarn-cache", "yarn run", []string{".yarn-cache"}, nil}
	case x.has("package-lock.json"):
		m = manager{"package-lock.json", "npm ci --cache .npm --prefer-offline --no-audit --no-fund", "npm run", []string{".npm"}, nil}
	case x.has("npm-shrinkwrap.json"):
		m = manager{"npm-shrinkwrap.json", "npm ci --cache .npm --prefer-offline --no-audit --no-fund", "npm run", []string{".npm"}, nil}
	default:
		m = manager{"", "npm install --cache .npm --no-audit --no-fund", "npm run", []string{".npm"}, nil}
	}
	tool := strings.Fields(m.install)[0]
	what := "a Node.js package"
	if pkg.Name != "" {
		what = "Node.js package " + pkg.Name
	}
	var scripts []string
	for _, s := range []string{"build", "test", "lint"} {
		if cmd := pkg.Scripts[s]; cmd != "" && !strings.Contains(cmd, "no test specified") {
			scripts = append(scripts, s)
		}
	}
	if len(scripts) > 0 {
		what += "; scripts " + strings.Join(scripts, ", ") + " each become a stage"
	}
	x.found("package.json", "%s", what)
	var cache []cacheEntry
	if m.lock != "" {
		x.found(m.lock, "%s lockfile: %s installs exactly it; the key of the %s cache", tool, strings.Join(strings.Fields(m.install)[:2], " "), tool)
		cache = []cacheEntry{{key: tool, keyFiles: []string{m.lock}, paths: m.cache}}
	} else {
		x.found("package.json", "no lockfile: npm install resolves versions anew on every run (commit package-lock.json)")
		cache = []cacheEntry{{key: tool, keyFiles: []string{"package.json"}, paths: m.cache}}
	}
	if len(scripts) == 0 {
		x.add(&stage{name: "build", comment: "package.json has no build, test or lint script: this only checks that the dependencies install.",
			env: m.env, cache: cache, steps: []string{m.install}})
		return
	}
	for _, s := range scripts {
		st := &stage{name: s, env: m.env, cache: cloneCache(cache), steps: []string{m.install, m.run + " " + s}}
		if s == "build" {
			st.comment = "Keep the build's output for later stages: add its directory, e.g. artifacts: [\"dist/**\"]."
		}
		x.add(st)
	}
}

func cloneCache(c []cacheEntry) []cacheEntry {
	out := make([]cacheEntry, len(c))
	for i, e := range c {
		out[i] = cacheEntry{key: e.key, keyFiles: slices.Clone(e.keyFiles), paths: slices.Clone(e.paths)}
	}
	return out
}

func python(x *dirInfo) {
	reqs := []string{}
	for _, n := range []string{"requirements.txt", "requirements-dev.txt", "dev-requirements.txt", "requirements-test.txt", "test-requirements.txt"} {
		if x.has(n) {
			reqs = append(reqs, n)
		}
	}
	poetry := x.has("poetry.lock")
	var pp *tomlDoc
	if x.has("pyproject.toml") {
		pp = parseTOML(x.read("pyproject.toml"))
		if pp.tables["tool.poetry"] {
			poetry = true
		}
	}
	if len(reqs) == 0 && !poetry && pp == nil && !x.has("setup.py") {
		return
	}
	x.stack("python")
	var text []byte // every dependency file, to see whether pytest is among them
	venv := "python3 -m venv .venv"
	cacheFiles := []string{}
	cache := []string{".pip-cache"}
	var install []string
	var build []string
	var artifacts []string
	var env [][2]string
	name := ""
	if pp != nil {
		name = pp.str("project", "name")
		if name == "" {
			name = pp.str("tool.poetry", "name")
		}
		text = append(text, x.read("pyproject.toml")...)
	}
	switch {
	case poetry:
		if x.has("poetry.lock") {
			x.found("poetry.lock", "Poetry lockfile: poetry install installs exactly it; the key of the pip and Poetry caches")
			cacheFiles = append(cacheFiles, "poetry.lock")
			text = append(text, x.read("poetry.lock")...)
		}
		x.found("pyproject.toml", "Poetry project %s: poetry install, tests, poetry build into dist/", name)
		// Poetry installs into the venv it runs from when told not to make its own.
		env = [][2]string{{"POETRY_VIRTUALENVS_CREATE", "false"}}
		install = []string{venv, ".venv/bin/pip install --cache-dir .pip-cache poetry",
			"POETRY_CACHE_DIR=$PWD/.poetry-cache .venv/bin/poetry install --no-interaction"}
		cache = append(cache, ".poetry-cache")
		build = []string{venv, install[1], ".venv/bin/poetry build"}
		artifacts = []string{"dist/*"}
	case pp != nil || x.has("setup.py"):
		file := "setup.py"
		if pp != nil {
			file = "pyproject.toml"
			cacheFiles = append(cacheFiles, "pyproject.toml")
		}
		what := "a Python package"
		if name != "" {
			what = "Python package " + name
		}
		x.found(file, "%s: pip install, tests, a wheel in dist/", what)
		install = []string{venv, ".venv/bin/pip install --cache-dir .pip-cache -e ."}
		build = []string{venv, ".venv/bin/pip wheel --cache-dir .pip-cache --no-deps -w dist ."}
		artifacts = []string{"dist/*.whl"}
	default:
		install = []string{venv}
	}
	for _, r := range reqs {
		x.found(r, "pinned requirements: pip install -r; the key of the pip cache")
		cacheFiles = append(cacheFiles, r)
		text = append(text, x.read(r)...)
		if !poetry {
			install = append(install, ".venv/bin/pip install --cache-dir .pip-cache -r "+r)
		}
	}
	test := ".venv/bin/python -m unittest discover -v"
	runner := "Python tests run with unittest (pytest is not among the dependencies)"
	if pytest.Match(text) {
		test = ".venv/bin/python -m pytest"
		runner = "Python tests run with pytest, one of the dependencies"
	}
	if n := len(x.p.Findings); n > 0 {
		x.found(path.Base(x.p.Findings[n-1].Path), "%s", runner)
	}
	keyed := []cacheEntry{{key: "pip", keyFiles: cacheFiles, paths: cache}}
	if build != nil {
		x.add(&stage{name: "build", env: env, cache: cloneCache(keyed), steps: build, artifacts: artifacts})
	}
	x.add(&stage{name: "test", env: env, cache: cloneCache(keyed), steps: append(install, test)})
}

var pytest = regexp.MustCompile(`(?i)(^|[^a-z0-9_-])pytest([^a-z0-9_-]|$)`)

func maven(x *dirInfo) {
	if !x.has("pom.xml") {
		return
	}
	var pom struct {
		ArtifactID string   `xml:"artifactId"`
		Packaging  string   `xml:"packaging"`
		Modules    []string `xml:"modules>module"`
	}
	if err := xml.Unmarshal(x.read("pom.xml"), &pom); err != nil {
		x.found("pom.xml", "not readable XML (%v): skipped", err)
		return
	}
	x.stack("maven")
	mvn := "mvn"
	if x.has("mvnw") {
		mvn = "./mvnw"
		x.found("mvnw", "the Maven wrapper: stages run it instead of mvn")
	}
	mvn += " -B -ntp -Dmaven.repo.local=$PWD/.m2/repository"
	what := "Maven project " + pom.ArtifactID
	var artifacts []string
	switch {
	case len(pom.Modules) > 0:
		what += fmt.Sprintf(" with %d modules (%s)", len(pom.Modules), strings.Join(pom.Modules, ", "))
		artifacts = []string{"**/target/*.jar"}
	case pom.Packaging == "" || pom.Packaging == "jar":
		artifacts = []string{"target/*.jar"}
	case pom.Packaging == "war":
		artifacts = []string{"target/*.war"}
	}
	x.found("pom.xml", "%s: mvn package, then mvn verify runs the tests; the key of the Maven cache", what)
	cache := []cacheEntry{{key: "maven", keyFiles: []string{"**/pom.xml"}, paths: []string{".m2/repository"}}}
	x.add(&stage{name: "build", cache: cache, steps: []string{mvn + " -DskipTests package"}, artifacts: artifacts})
	x.add(&stage{name: "test", cache: cloneCache(cache), steps: []string{mvn + " verify"}})
}

func gradle(x *dirInfo) {
	file := ""
	for _, n := range []string{"build.gradle.kts", "build.gradle"} {
		if x.has(n) {
			file = n
			break
		}
	}
	if file == "" {
		return
	}
	x.stack("gradle")
	src := x.read(file)
	gw := "gradle"
	if x.has("gradlew") {
		gw = "./gradlew"
		x.found("gradlew", "the Gradle wrapper: stages run it instead of gradle")
	}
	gw += " --no-daemon -g $PWD/.gradle-home"
	multi := false
	for _, n := range []string{"settings.gradle.kts", "settings.gradle"} {
		if x.has(n) && bytes.Contains(x.read(n), []byte("include")) {
			multi = true
			x.found(n, "a multi-project build: artifacts from every project's build/libs")
		}
	}
	var artifacts []string
	if jvmPlugin.Match(src) {
		artifacts = []string{"build/libs/*.jar"}
		if multi {
			artifacts = []string{"**/build/libs/*.jar"}
		}
	}
	x.found(file, "Gradle build: gradle assemble, then gradle check runs the tests")
	keys := []string{"**/*.gradle", "**/*.gradle.kts", "gradle/wrapper/gradle-wrapper.properties", "gradle/libs.versions.toml"}
	cache := []cacheEntry{{key: "gradle", keyFiles: keys, paths: []string{".gradle-home/caches", ".gradle-home/wrapper"}}}
	x.add(&stage{name: "build", cache: cache, steps: []string{gw + " assemble"}, artifacts: artifacts})
	x.add(&stage{name: "test", cache: cloneCache(cache), steps: []string{gw + " check"}})
}

// jvmPlugin finds the Gradle plugins whose assemble writes a jar to build/libs.
var jvmPlugin = regexp.MustCompile(`(?m)\b(java|java-library|application|org\.springframework\.boot|kotlin\("jvm"\)|org\.jetbrains\.kotlin\.jvm)\b`)

func cargo(x *dirInfo) {
	if !x.has("Cargo.toml") {
		return
	}
	x.stack("cargo")
	t := parseTOML(x.read("Cargo.toml"))
	name := t.str("package", "name")
	locked := ""
	if x.has("Cargo.lock") {
		locked = " --locked"
	}
	var bins []string
	if t.tables["[bin]"] || slices.Contains(x.dirs, "src") && exists(x.fsys, x.rel("src/main.rs")) {
		if name != "" && !t.tables["workspace"] {
			bins = []string{name}
		}
	}
	switch {
	case t.tables["workspace"]:
		x.found("Cargo.toml", "a Cargo workspace: cargo build, cargo test")
	case name != "":
		x.found("Cargo.toml", "Rust crate %s: cargo build --release, cargo test", name)
	default:
		x.found("Cargo.toml", "a Rust crate: cargo build --release, cargo test")
	}
	keys := []string{"Cargo.toml"}
	if locked != "" {
		x.found("Cargo.lock", "pins its dependencies: builds use --locked; the key of the Cargo cache")
		keys = []string{"Cargo.lock"}
	}
	const home = "CARGO_HOME=$PWD/.cargo-home "
	cache := []cacheEntry{{key: "cargo", keyFiles: keys, paths: []string{".cargo-home/registry", ".cargo-home/git"}}}
	build := &stage{name: "build", cache: cache, steps: []string{home + "cargo build --release" + locked}}
	for _, b := range bins {
		build.artifacts = append(build.artifacts, "target/release/"+b)
	}
	x.add(build)
	x.add(&stage{name: "test", cache: cloneCache(cache), steps: []string{home + "cargo test" + locked}})
}

func helm(x *dirInfo) {
	if !x.has("Chart.yaml") {
		return
	}
	var chart struct {
		Name         string `yaml:"name"`
		Version      string `yaml:"version"`
		Dependencies []any  `yaml:"dependencies"`
	}
	if err := yaml.Unmarshal(x.read("Chart.yaml"), &chart); err != nil || chart.Name == "" {
		x.found("Chart.yaml", "not a readable Helm chart (no name): skipped")
		return
	}
	x.stack("helm")
	x.found("Chart.yaml", "Helm chart %s %s: helm lint, helm package into out/charts", chart.Name, chart.Version)
	var steps []string
	if len(chart.Dependencies) > 0 {
		steps = append(steps, "helm dependency build .")
	}
	steps = append(steps, "helm lint .", "helm package . -d out/charts")
	x.add(&stage{name: "chart", steps: steps, artifacts: []string{"out/charts/*.tgz"}})
}

// kubernetes finds manifests directly in the directory and, for a top-level directory
// such as k8s/, one level below it (the base/ and overlays/ of kustomize), and checks
// them with kubeconform.
func kubernetes(x *dirInfo) {
	if x.has("Chart.yaml") {
		return // a chart's YAML is its own business
	}
	var files []string
	kinds := map[string]bool{}
	look := func(dir string) {
		entries, err := readDir(x, dir)
		if err != nil {
			return
		}
		for _, e := range entries {
			n := path.Join(dir, e.Name())
			if !e.Type().IsRegular() || !isYAML(n) || n == ".paved.yml" || n == ".paved.yaml" {
				continue
			}
			if ks := manifestKinds(x.read(n)); len(ks) > 0 {
				files = append(files, n)
				for _, k := range ks {
					kinds[k] = true
				}
			}
			if len(files) >= 200 {
				return
			}
		}
	}
	look(".")
	if x.dir != "." { // the top's subdirectories are projects of their own
		for _, d := range x.dirs {
			if !strings.HasPrefix(d, ".") {
				look(d)
			}
		}
	}
	if len(files) == 0 {
		return
	}
	x.stack("kubernetes")
	list := slices.Sorted(mapKeys(kinds))
	for _, f := range files[:min(len(files), 3)] {
		x.found(f, "Kubernetes manifests (%s): checked with kubeconform, input of a Kubernetes deploy", strings.Join(list, ", "))
	}
	if len(files) > 3 {
		x.found(".", "%d more Kubernetes manifests", len(files)-3)
	}
	// The files themselves, not their directories: other YAML beside them (compose files,
	// configuration) is no manifest and would fail the check.
	args := files
	if len(args) > 20 {
		args = nil
		for _, f := range files {
			if d := path.Dir(f); !slices.Contains(args, d) {
				args = append(args, d)
			}
		}
	}
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	x.add(&stage{name: "manifests",
		comment: "Schema check of the manifests; needs kubeconform (github.com/yannh/kubeconform) on the executor.",
		steps:   []string{"kubeconform -strict -summary -ignore-missing-schemas " + strings.Join(args, " ")}})
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func terraform(x *dirInfo) {
	var tf []string
	for n := range x.files {
		if strings.HasSuffix(n, ".tf") {
			tf = append(tf, n)
		}
	}
	if len(tf) == 0 {
		return
	}
	slices.Sort(tf)
	x.stack("terraform")
	x.found(tf[0], "Terraform configuration (%s): fmt, init without a backend, validate", plural(len(tf), ".tf file"))
	keys := []string{"**/*.tf"}
	if x.has(".terraform.lock.hcl") {
		x.found(".terraform.lock.hcl", "pins the providers: the key of the provider cache")
		keys = []string{".terraform.lock.hcl"}
	}
	const plugins = "TF_PLUGIN_CACHE_DIR=$PWD/.terraform-plugins "
	x.add(&stage{name: "terraform",
		comment: "Plan and apply belong after it, with the backend's credentials as secrets.",
		cache:   []cacheEntry{{key: "terraform", keyFiles: keys, paths: []string{".terraform-plugins"}}},
		steps: []string{
			"terraform fmt -check -recursive",
			"mkdir -p .terraform-plugins && " + plugins + "terraform init -backend=false -input=false",
			"terraform validate",
		}})
}

func docker(x *dirInfo) {
	if !x.has("Dockerfile") {
		return
	}
	x.stack("docker")
	x.found("Dockerfile", "a container image: built with docker (the executor needs a container engine)")
	tag := strings.ToLower(stageName(strings.TrimSuffix(x.p.Prefix, "-")))
	if x.dir == "." {
		tag = "app"
	}
	x.add(&stage{name: "image", steps: []string{fmt.Sprintf(`docker build -t "%s:${PAVED_SHA:-dev}" .`, tag)}})
}

// makefile is the fallback when no other stack says how to build the directory.
func makefile(x *dirInfo) {
	if !x.has("Makefile") {
		return
	}
	x.stack("make")
	src := x.read("Makefile")
	x.found("Makefile", "a Makefile and no other build: make, and make test if it has that target")
	x.add(&stage{name: "build", steps: []string{"make"}})
	if regexp.MustCompile(`(?m)^test\s*:`).Match(src) {
		x.add(&stage{name: "test", steps: []string{"make test"}})
	}
}

func readDir(x *dirInfo, dir string) ([]fs.DirEntry, error) {
	return fs.ReadDir(x.fsys, x.rel(dir))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
