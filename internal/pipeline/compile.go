package pipeline

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// compile expands matrices, resolves needs, rejects cycles and orders the stages. It runs
// even when the file had other problems, so a bad need or a cycle is reported together with
// them; it builds a Pipeline only from a file without any.
func (c *compiler) compile(d *draft) *Pipeline {
	byName := map[string]*rawStage{}
	for _, r := range d.stages {
		byName[r.name] = r
	}
	expansions := make([][]*Stage, len(d.stages))
	owner := map[string]*rawStage{} // expansion name -> its stage in the file
	total := 0
	for _, r := range d.stages {
		expansions[r.index] = c.expand(r, d)
		if total += len(expansions[r.index]); total > maxStages {
			c.errorf(r.key, "the pipeline has more than %d stages once matrices are expanded (use fewer matrix values, or split the pipeline)", maxStages)
			return nil
		}
		for _, s := range expansions[r.index] {
			if s.Name != r.name {
				if owner[s.Name] != nil {
					c.errorf(r.matrixKey, "matrix: two combinations are both named %q (a value contains a comma; remove it)", s.Name)
				}
				owner[s.Name] = r
			}
		}
	}

	// edges[i] are the stages stage i needs, by file index: the DAG before expansion,
	// which is where cycles are found and named.
	edges := make([][]int, len(d.stages))
	for _, r := range d.stages {
		var names []string
		seen := map[string]bool{}
		for _, nd := range r.needs {
			var targets []*Stage
			var t *rawStage
			switch {
			case nd.name == r.name:
				c.errorf(nd.node, "stage %q needs itself (remove %q from its needs)", r.name, nd.name)
				continue
			case byName[nd.name] != nil:
				t = byName[nd.name]
				targets = expansions[t.index]
			case owner[nd.name] != nil:
				t = owner[nd.name]
				if t == r {
					c.errorf(nd.node, "stage %q needs its own expansion %q (a matrix stage cannot need itself)", r.name, nd.name)
					continue
				}
				targets = []*Stage{stageNamed(expansions[t.index], nd.name)}
			default:
				// An expansion of a matrix that could not be read is unknown, not wrong.
				if base, _, ok := strings.Cut(nd.name, "["); ok && byName[base] != nil && byName[base].badMatrix {
					continue
				}
				c.errorf(nd.node, "stage %q needs %q, which is not a stage (%s)", r.name, nd.name, stageHint(nd.name, r, d.stages))
				continue
			}
			if !slices.Contains(edges[r.index], t.index) {
				edges[r.index] = append(edges[r.index], t.index)
			}
			for _, s := range targets {
				if !seen[s.Name] {
					seen[s.Name] = true
					names = append(names, s.Name)
				}
			}
		}
		if !c.spend(len(names)*len(expansions[r.index]), r) {
			return nil
		}
		for _, s := range expansions[r.index] {
			s.Needs = slices.Clone(names)
		}
	}
	c.cycles(d.stages, edges)
	if len(c.errs) > 0 {
		return nil
	}

	p := &Pipeline{Name: d.name, On: d.on, Concurrency: d.concurrency, Manifests: d.manifests}
	for _, ex := range expansions {
		p.Stages = append(p.Stages, ex...)
	}
	p.Stages = topoOrder(p.Stages)
	return p
}

func stageNamed(list []*Stage, name string) *Stage {
	for _, s := range list {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// stageHint suggests a stage for an unknown need and lists the others.
func stageHint(name string, from *rawStage, all []*rawStage) string {
	var names []string
	for _, r := range all {
		if r != from {
			names = append(names, r.name)
		}
	}
	if len(names) == 0 {
		return "it is the only stage"
	}
	list := names
	const show = 15
	more := ""
	if len(list) > show {
		list, more = list[:show], fmt.Sprintf(", and %d more", len(names)-show)
	}
	hint := "stages: " + strings.Join(list, ", ") + more
	if s := suggest(name, names); s != "" {
		hint = fmt.Sprintf("did you mean %q? %s", s, hint)
	}
	return hint
}

// expand turns one stage of the file into its DAG nodes with defaults applied: itself, or
// one per matrix combination. A stage whose matrix could not be read has none.
func (c *compiler) expand(r *rawStage, d *draft) []*Stage {
	base := r.st
	base.Base = r.name
	if base.Shell == "" {
		base.Shell = d.shell
	}
	if base.Timeout == 0 {
		base.Timeout = DefaultTimeout
	}
	if base.Phase == "" {
		base.Phase = phaseOf(r)
	}
	env := mergeEnv(d.env, r.env)
	if r.badMatrix {
		return nil
	}
	if r.matrix == nil {
		s := base
		s.Name, s.Env = r.name, env
		return []*Stage{&s}
	}
	combos := c.combinations(r)
	if !c.spend(len(combos)*c.size[r.val], r) {
		r.badMatrix = true
		return nil
	}
	out := make([]*Stage, 0, len(combos))
	for _, combo := range combos {
		s := base.clone()
		s.Name = r.name + "[" + strings.Join(combo, ",") + "]"
		s.Matrix = make(map[string]string, len(combo))
		vars := make(map[string]EnvVar, len(combo))
		for i, k := range r.matrix.keys {
			s.Matrix[k] = combo[i]
			vars[k] = EnvVar{Value: combo[i]}
		}
		// The matrix value wins over an env of the same name: the combination is what the
		// stage is for.
		s.Env = mergeEnv(env, vars)
		out = append(out, s)
	}
	return out
}

// spend takes n from the work budget, or reports that the file asks for too much.
func (c *compiler) spend(n int, r *rawStage) bool {
	if c.work += n; c.work <= maxWork {
		return true
	}
	if c.work-n > maxWork {
		return false // reported already
	}
	c.errorf(r.key, "the pipeline is too large once matrices and aliases are expanded (use fewer matrix values or aliases, or split the pipeline)")
	return false
}

// combinations lists a matrix's value tuples with the first key varying slowest, so they
// come out in the order the lists are written, and drops the excluded ones.
func (c *compiler) combinations(r *rawStage) [][]string {
	m := r.matrix
	total := 1
	for _, v := range m.values {
		total *= len(v)
		if total > maxCombinations {
			c.errorf(r.matrixKey, "matrix: has more than %d combinations (at most %d stages are allowed; use fewer values)", maxCombinations, maxExpansions)
			r.badMatrix = true
			return nil
		}
	}
	// Each combination is checked against every exclude entry.
	if !c.spend(total*max(1, len(m.exclude)), r) {
		r.badMatrix = true
		return nil
	}
	var out [][]string
	idx := make([]int, len(m.keys))
	for range total {
		combo := make([]string, len(m.keys))
		for i, j := range idx {
			combo[i] = m.values[i][j]
		}
		if !m.excluded(combo) {
			out = append(out, combo)
		}
		for i := len(idx) - 1; i >= 0; i-- {
			if idx[i]++; idx[i] < len(m.values[i]) {
				break
			}
			idx[i] = 0
		}
	}
	switch {
	case len(out) == 0:
		c.errorf(r.matrixKey, "matrix: exclude drops every combination (remove an exclude entry)")
		r.badMatrix = true
	case len(out) > maxExpansions:
		c.errorf(r.matrixKey, "matrix: has %d combinations; the limit is %d per stage (use fewer values or exclude some)", len(out), maxExpansions)
		r.badMatrix = true
		return nil
	}
	return out
}

func (m *matrix) excluded(combo []string) bool {
	for _, ex := range m.exclude {
		all := len(ex) > 0
		for k, v := range ex {
			if combo[slices.Index(m.keys, k)] != v {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// phaseOf is the phase of a stage that sets none; see Stage.Phase.
func phaseOf(r *rawStage) string {
	switch {
	case r.st.Deploy != nil:
		return "deploy"
	case strings.HasPrefix(r.st.Uses, "gate/"):
		return "test"
	}
	name := strings.ToLower(r.name)
	for _, w := range []string{"test", "lint", "check", "scan", "vet"} {
		if strings.Contains(name, w) {
			return "test"
		}
	}
	return "build"
}

// mergeEnv returns over laid on under, or nil when both are empty (so that a stage without
// env round-trips through JSON unchanged).
func mergeEnv(under, over map[string]EnvVar) map[string]EnvVar {
	if len(under)+len(over) == 0 {
		return nil
	}
	out := make(map[string]EnvVar, len(under)+len(over))
	maps.Copy(out, under)
	maps.Copy(out, over)
	return out
}

// clone copies a stage deeply enough that expansions share nothing a caller may change.
func (s Stage) clone() *Stage {
	s.Steps = slices.Clone(s.Steps)
	s.Artifacts = slices.Clone(s.Artifacts)
	if s.Cache != nil {
		cs := make([]Cache, len(s.Cache))
		for i, k := range s.Cache {
			k.KeyFiles = slices.Clone(k.KeyFiles)
			k.Paths = slices.Clone(k.Paths)
			k.RestoreKeys = slices.Clone(k.RestoreKeys)
			cs[i] = k
		}
		s.Cache = cs
	}
	if s.When != nil {
		w := When{Branches: slices.Clone(s.When.Branches), Events: slices.Clone(s.When.Events), Paths: slices.Clone(s.When.Paths)}
		s.When = &w
	}
	if s.With != nil {
		w := make(map[string][]string, len(s.With))
		for k, v := range s.With {
			w[k] = slices.Clone(v)
		}
		s.With = w
	}
	if s.Deploy != nil {
		dp := *s.Deploy
		s.Deploy = &dp
	}
	if s.Reports != nil {
		rp := *s.Reports
		s.Reports = &rp
	}
	return &s
}
