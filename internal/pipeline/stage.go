package pipeline

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// rawStage is one stage key of the file as read: the fields it sets, and what compile still
// has to resolve (needs against the other stages, the matrix into expansions).
type rawStage struct {
	name  string
	key   *yaml.Node
	val   *yaml.Node
	index int   // file order among stages
	st    Stage // the fields the file sets; Name, Needs, Env and defaults come later
	env   map[string]EnvVar
	needs []need

	matrix    *matrix
	matrixKey *yaml.Node
	badMatrix bool // reported already; the stage's expansions are unknown
}

type need struct {
	name string
	node *yaml.Node
}

type matrix struct {
	keys    []string
	values  [][]string // values[i] belong to keys[i], in file order
	exclude []map[string]string
}

func (c *compiler) stage(f field, index int, d *draft) *rawStage {
	r := &rawStage{name: f.name, key: f.key, val: f.val, index: index}
	r.st.Pos = posOf(f.key)
	if !stageNameRE.MatchString(f.name) {
		c.errorf(f.key, "stage name %q is not valid (use letters, digits, _, . and -, starting with a letter or digit)", f.name)
	}
	where := fmt.Sprintf("stage %q", f.name)
	if isNull(f.val) {
		c.errorf(f.key, "stage %q is empty (give it steps:, uses: or deploy:)", f.name)
		return r
	}
	if v := resolve(f.val); v.Kind != yaml.MappingNode {
		c.errorf(f.val, "stage %q must be a map with steps:, uses: or deploy:, not %s", f.name, describe(v))
		return r
	}
	fs, _ := c.fields(f.val, where, nil)
	var kinds []field // which of steps, uses and deploy the stage sets, in file order
	var hinted []string
	var withField *field // read after the loop: its keys depend on uses:
	for _, e := range fs {
		switch e.name {
		case "needs":
			for _, it := range items(e.val) {
				if s, ok := c.str(it, "needs"); ok {
					r.needs = append(r.needs, need{name: s, node: it})
				}
			}
		case "steps":
			kinds = append(kinds, e)
			r.st.Steps = c.steps(e, where)
		case "uses":
			kinds = append(kinds, e)
			r.st.Uses = c.uses(e.val)
		case "deploy":
			kinds = append(kinds, e)
			r.st.Deploy = c.deploy(e)
		case "with":
			withField = &e
		case "env":
			r.env = c.env(e.val, "env")
		case "shell":
			r.st.Shell, _ = c.enum(e.val, "shell", shells)
		case "timeout":
			r.st.Timeout = c.timeout(e.val)
		case "retries":
			r.st.Retries, _ = c.integer(e.val, "retries", 0, maxRetries)
		case "when":
			r.st.When = c.when(e.val, where)
		case "matrix":
			r.matrixKey = e.key
			var ok bool
			r.matrix, ok = c.matrix(e.val, where)
			r.badMatrix = !ok
		case "artifacts":
			r.st.Artifacts = c.relGlobs(e.val, "artifacts")
		case "cache":
			r.st.Cache = c.caches(e.val, where)
		case "image":
			r.st.Image, _ = c.str(e.val, "image")
		case "runs_on":
			r.st.RunsOn = c.labels(e.val, "runs_on")
		case "resources":
			r.st.Resources = c.resources(e.val, where)
		case "reports":
			r.st.Reports = c.reports(e.val, where)
		case "phase":
			r.st.Phase, _ = c.enum(e.val, "phase", phases)
		case "id_token":
			r.st.IDToken = c.idToken(e, where)
		default:
			hinted = append(hinted, c.unknownKey(e, "in "+where, stageKeys))
		}
	}
	if withField != nil {
		r.st.With = c.with(*withField, r.st.Uses)
	}
	switch len(kinds) {
	case 0:
		if slices.ContainsFunc(hinted, func(s string) bool { return s == "steps" || s == "uses" || s == "deploy" }) {
			break
		}
		c.errorf(f.key, "stage %q has nothing to run (give it steps:, uses: or deploy:)", f.name)
	case 1:
	default:
		c.errorf(kinds[1].key, "stage %q has both %s: and %s: (a stage has exactly one of steps:, uses: and deploy:; split it into two stages)",
			f.name, kinds[0].name, kinds[1].name)
	}
	return r
}

func (c *compiler) steps(e field, where string) []Step {
	list := items(e.val)
	if len(list) == 0 {
		c.errorf(e.val, "steps: is empty (add a command, e.g. steps: [make test])")
		return nil
	}
	var out []Step
	for _, it := range list {
		st := Step{Pos: posOf(it)}
		if r := resolve(it); r.Kind == yaml.MappingNode {
			fs, _ := c.fields(it, "step", nil)
			hasRun := false
			var hinted []string
			for _, f := range fs {
				switch f.name {
				case "name":
					st.Name, _ = c.str(f.val, "step name")
				case "run":
					hasRun = true
					st.Run, _ = c.str(f.val, "run")
				default:
					hinted = append(hinted, c.unknownKey(f, "in a step of "+where, stepKeys))
				}
			}
			if !hasRun && !slices.Contains(hinted, "run") {
				c.errorf(it, "a step needs run: (the command to run, e.g. {name: build, run: make})")
			}
		} else {
			st.Run, _ = c.str(it, "step")
		}
		if st.Run == "" {
			continue
		}
		if st.Name == "" {
			st.Name = stepName(st.Run)
		}
		out = append(out, st)
	}
	return out
}

// stepName is a step's default name: its first non-blank line, short enough for the UI.
func stepName(run string) string {
	for line := range strings.SplitSeq(run, "\n") {
		if t := strings.TrimSpace(line); t != "" {
			if r := []rune(t); len(r) > maxName {
				return strings.TrimSpace(string(r[:maxName]))
			}
			return t
		}
	}
	return ""
}

// useKinds are the kinds a uses: may name; "deploy" in Options.Kinds enables deploy: instead.
func (c *compiler) useKinds() []string {
	var out []string
	for _, k := range c.opt.Kinds {
		if k != "deploy" {
			out = append(out, k)
		}
	}
	return out
}

func (c *compiler) uses(n *yaml.Node) string {
	s, ok := c.str(n, "uses")
	if !ok {
		return ""
	}
	if s == "deploy" {
		c.errorf(n, "uses: deploy is written as deploy: {environment: NAME} (see docs/pipeline.md)")
		return s
	}
	kinds := c.useKinds()
	if slices.Contains(kinds, s) {
		return s
	}
	hint := "none in this build; use steps: instead"
	if len(kinds) > 0 {
		hint = "available: " + strings.Join(kinds, ", ")
		if m := suggest(s, kinds); m != "" {
			hint = fmt.Sprintf("did you mean %q? %s", m, hint)
		}
	}
	c.errorf(n, "uses: %q is not a stage kind this build can run (%s)", s, hint)
	return s
}

// with reads a uses: stage's with: map; its keys are those its kind declares.
func (c *compiler) with(e field, kind string) map[string][]string {
	if kind == "" {
		c.errorf(e.key, "with: configures a uses: stage; this stage has none (remove with:, or add uses: KIND)")
		return nil
	}
	fs, ok := c.fields(e.val, "with", nil)
	if !ok {
		return nil
	}
	known, declared := c.opt.KindKeys[kind]
	out := map[string][]string{}
	for _, f := range fs {
		if !slices.Contains(known, f.name) {
			if !declared || len(known) == 0 {
				c.errorf(f.key, "with: %s takes no options (remove %s)", kind, f.name)
				continue
			}
			c.unknownKey(f, "in with of "+kind, known)
			continue
		}
		var vals []string
		for _, it := range items(f.val) {
			if r := resolve(it); r.Kind != yaml.ScalarNode {
				c.errorf(it, "with.%s: expected a value or a list of values, got %s", f.name, describe(r))
				continue
			}
			if s, ok := c.scalarText(it, "with."+f.name); ok {
				vals = append(vals, s)
			}
		}
		out[f.name] = vals
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (c *compiler) deploy(e field) *Deploy {
	if !slices.Contains(c.opt.Kinds, "deploy") {
		hint := "none in this build"
		if kinds := c.useKinds(); len(kinds) > 0 {
			hint = "available kinds: " + strings.Join(kinds, ", ")
		}
		c.errorf(e.key, "deploy: stages are not available in this build (%s)", hint)
	}
	fs, ok := c.fields(e.val, "deploy", nil)
	if !ok {
		return nil
	}
	dp := &Deploy{Strategy: "rolling"}
	var hinted []string
	for _, f := range fs {
		switch f.name {
		case "environment":
			s, ok := c.str(f.val, "deploy.environment")
			if ok && !stageNameRE.MatchString(s) {
				c.errorf(f.val, "deploy.environment: %q is not a valid environment name (use letters, digits, _, . and -, starting with a letter or digit)", s)
			}
			dp.Environment = s
		case "strategy":
			if s, ok := c.enum(f.val, "deploy.strategy", strategies); ok {
				dp.Strategy = s
			}
		default:
			if !c.deployOption(dp, f) {
				hinted = append(hinted, c.unknownKey(f, "in deploy", deployKeys))
			}
		}
	}
	if !c.has(fs, "environment") && !slices.Contains(hinted, "environment") {
		c.errorf(e.val, "deploy: needs an environment (e.g. deploy: {environment: staging})")
	}
	if k := dp.Kubernetes; k != nil && k.HTTPRoute != "" && dp.Strategy != "canary" {
		for _, f := range fs {
			if f.name == "kubernetes" {
				c.errorf(f.key, "deploy.kubernetes.http_route: only the canary strategy splits traffic by route weights (set strategy: canary, or remove http_route)")
			}
		}
	}
	return dp
}

func (c *compiler) timeout(n *yaml.Node) time.Duration {
	s, ok := c.str(n, "timeout")
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		c.errorf(n, "timeout: %q is not a duration (use Go durations like 90s, 10m, 1h30m)", s)
	case d <= 0:
		c.errorf(n, "timeout: %s must be more than 0 (leave it out for the default of %s)", s, shortDuration(DefaultTimeout))
	case d > maxTimeout:
		c.errorf(n, "timeout: %s is more than the limit of %s", s, shortDuration(maxTimeout))
	default:
		return d
	}
	return 0
}

// shortDuration drops the zero units time.Duration.String keeps: "1h" rather than "1h0m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func (c *compiler) when(n *yaml.Node, where string) *When {
	if isNull(n) {
		return nil
	}
	fs, ok := c.fields(n, "when", nil)
	if !ok {
		return nil
	}
	w := &When{}
	for _, f := range fs {
		switch f.name {
		case "branches":
			w.Branches = c.globs(f.val, "when.branches")
		case "events":
			for _, it := range items(f.val) {
				if ev, ok := c.enum(it, "when.events", events); ok {
					w.Events = append(w.Events, ev)
				}
			}
		case "paths":
			w.Paths = c.globs(f.val, "when.paths")
		default:
			c.unknownKey(f, "in when of "+where, whenKeys)
		}
	}
	if len(w.Branches) == 0 && len(w.Events) == 0 && len(w.Paths) == 0 {
		return nil
	}
	return w
}

func (c *compiler) matrix(n *yaml.Node, where string) (*matrix, bool) {
	fs, ok := c.fields(n, "matrix", nil)
	if !ok {
		return nil, false
	}
	m := &matrix{}
	good := true
	var exclude []*yaml.Node
	for _, f := range fs {
		if f.name == "exclude" {
			exclude = items(f.val)
			continue
		}
		if !c.varName(f, "matrix") {
			good = false
			continue
		}
		what := "matrix." + f.name
		list := items(f.val)
		if len(list) == 0 {
			c.errorf(f.val, "%s: has no values (list at least one)", what)
			good = false
			continue
		}
		var vals []string
		for _, it := range list {
			s, ok := c.str(it, what)
			switch {
			case !ok:
				good = false
			case strings.ContainsAny(s, "\r\n"):
				c.errorf(it, "%s: %q must fit on one line (it becomes part of the stage name)", what, s)
				good = false
			case slices.Contains(vals, s):
				c.errorf(it, "%s: %q is listed twice", what, s)
				good = false
			default:
				vals = append(vals, s)
			}
		}
		m.keys = append(m.keys, f.name)
		m.values = append(m.values, vals)
	}
	if len(m.keys) == 0 {
		if good {
			c.errorf(n, "matrix: has no keys (add KEY: [values], e.g. go: [\"1.22\", \"1.23\"])")
		}
		return nil, false
	}
	for _, it := range exclude {
		efs, ok := c.fields(it, "matrix.exclude", nil)
		if !ok {
			good = false
			continue
		}
		if len(efs) == 0 {
			c.errorf(it, "matrix.exclude: an empty entry would drop every combination (name at least one KEY: value)")
			good = false
			continue
		}
		combo := map[string]string{}
		for _, ef := range efs {
			i := slices.Index(m.keys, ef.name)
			if i < 0 {
				hint := didYouMean(ef.name, m.keys)
				if hint == "" {
					hint = fmt.Sprintf(" (matrix keys: %s)", strings.Join(m.keys, ", "))
				}
				c.errorf(ef.key, "matrix.exclude: %q is not a matrix key%s", ef.name, hint)
				good = false
				continue
			}
			v, ok := c.str(ef.val, "matrix.exclude."+ef.name)
			if !ok {
				good = false
				continue
			}
			if !slices.Contains(m.values[i], v) {
				c.errorf(ef.val, "matrix.exclude: %q is not a value of matrix.%s (values: %s)", v, ef.name, strings.Join(m.values[i], ", "))
				good = false
				continue
			}
			combo[ef.name] = v
		}
		m.exclude = append(m.exclude, combo)
	}
	return m, good
}

func (c *compiler) caches(n *yaml.Node, where string) []Cache {
	var out []Cache
	for _, it := range items(n) {
		fs, ok := c.fields(it, "cache", nil)
		if !ok {
			continue
		}
		var k Cache
		var hinted []string
		for _, f := range fs {
			switch f.name {
			case "key":
				k.Key, _ = c.str(f.val, "cache.key")
			case "key_files":
				k.KeyFiles = c.relGlobs(f.val, "cache.key_files")
			case "paths":
				if len(items(f.val)) == 0 {
					c.errorf(f.val, "cache.paths: is empty (name the directories to keep, e.g. paths: [.gocache])")
				}
				k.Paths = c.relGlobs(f.val, "cache.paths")
			case "restore_keys":
				k.RestoreKeys = c.strs(f.val, "cache.restore_keys")
			default:
				hinted = append(hinted, c.unknownKey(f, "in cache of "+where, cacheKeys))
			}
		}
		if !c.has(fs, "paths") && !slices.Contains(hinted, "paths") {
			c.errorf(it, "cache: needs paths (the directories to keep, e.g. paths: [.gocache])")
		}
		if len(k.Paths) > 0 {
			out = append(out, k)
		}
	}
	return out
}

func (c *compiler) reports(n *yaml.Node, where string) *Reports {
	fs, ok := c.fields(n, "reports", nil)
	if !ok {
		return nil
	}
	rp := &Reports{}
	for _, f := range fs {
		switch f.name {
		case "junit":
			rp.JUnit, _ = c.relGlob(f.val, "reports.junit")
		case "coverage":
			rp.Coverage, _ = c.relGlob(f.val, "reports.coverage")
		default:
			c.unknownKey(f, "in reports of "+where, reportsKeys)
		}
	}
	if *rp == (Reports{}) {
		return nil
	}
	return rp
}

// Bounds of id_token.lifetime: a token outliving an hour is a stored credential again, and
// one under a minute may expire before the step that needs it runs.
const (
	minIDTokenLifetime = time.Minute
	maxIDTokenLifetime = time.Hour
)

func (c *compiler) idToken(e field, where string) *IDToken {
	fs, ok := c.fields(e.val, "id_token", nil)
	if !ok {
		return nil
	}
	t := &IDToken{}
	var hinted []string
	for _, f := range fs {
		switch f.name {
		case "audience":
			t.Audience, _ = c.str(f.val, "id_token.audience")
		case "lifetime":
			s, ok := c.str(f.val, "id_token.lifetime")
			if !ok {
				continue
			}
			d, err := time.ParseDuration(s)
			switch {
			case err != nil:
				c.errorf(f.val, "id_token.lifetime: %q is not a duration (use Go durations like 5m or 30m)", s)
			case d < minIDTokenLifetime || d > maxIDTokenLifetime:
				c.errorf(f.val, "id_token.lifetime: %s must be between %s and %s (leave it out for the default of 10m)",
					s, shortDuration(minIDTokenLifetime), shortDuration(maxIDTokenLifetime))
			default:
				t.Lifetime = d
			}
		default:
			hinted = append(hinted, c.unknownKey(f, "in id_token of "+where, idTokenKeys))
		}
	}
	// An empty audience: was reported by str already.
	if t.Audience == "" && !c.has(fs, "audience") && !slices.Contains(hinted, "audience") {
		c.errorf(e.val, "id_token: needs an audience (e.g. id_token: {audience: sts.amazonaws.com})")
	}
	return t
}

// labels reads runs_on: a map of agent labels to the values the stage needs.
func (c *compiler) labels(n *yaml.Node, what string) map[string]string {
	fs, ok := c.fields(n, what, nil)
	if !ok {
		return nil
	}
	if len(fs) == 0 {
		c.errorf(n, "%s: is empty (name at least one agent label, e.g. {os: linux}, or remove it)", what)
		return nil
	}
	out := make(map[string]string, len(fs))
	for _, f := range fs {
		if v, ok := c.str(f.val, what+"."+f.name); ok {
			out[f.name] = v
		}
	}
	return out
}
