package pipeline

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// draft is the file as read, before matrices are expanded and needs resolved.
type draft struct {
	name        string
	on          Triggers
	concurrency *Concurrency
	env         map[string]EnvVar
	shell       string
	manifests   []string
	stages      []*rawStage
}

func (c *compiler) document(root *yaml.Node) *draft {
	d := &draft{name: "pipeline", shell: "sh",
		// Without on:, a pipeline runs where a user trying paved expects it to: on every
		// push and pull request, and by hand.
		on: Triggers{Push: &Filter{}, PullRequest: &Filter{}, Manual: true}}
	fs, ok := c.fields(root, "the pipeline file", nil)
	if !ok {
		return d
	}
	hasStages := false
	var hinted []string
	for _, f := range fs {
		switch f.name {
		case "name":
			if s, ok := c.str(f.val, "name"); ok {
				d.name = s
			}
		case "on":
			d.on = c.triggers(f.val)
		case "concurrency":
			d.concurrency = c.concurrency(f.val)
		case "env":
			d.env = c.env(f.val, "env")
		case "shell":
			if s, ok := c.enum(f.val, "shell", shells); ok {
				d.shell = s
			}
		case "manifests":
			d.manifests = c.relGlobs(f.val, "manifests")
		case "stages":
			hasStages = true
			c.stages(f.val, d)
		default:
			// x- keys hold anchored templates, as in Compose files.
			if !strings.HasPrefix(f.name, "x-") {
				hinted = append(hinted, c.unknownKey(f, "at the top level", topKeys))
			}
		}
	}
	if !hasStages && !slices.Contains(hinted, "stages") {
		c.errorf(root, "the pipeline has no stages: (add a stages: map, see docs/pipeline.md)")
	}
	return d
}

func (c *compiler) stages(n *yaml.Node, d *draft) {
	fs, ok := c.fields(n, "stages", func(name string, first Pos) string {
		return fmt.Sprintf("stage %q is defined twice (first at %d:%d; rename or remove one)", name, first.Line, first.Col)
	})
	if !ok {
		return
	}
	for _, f := range fs {
		// Keys starting with "." are templates for anchors, as in GitLab CI; stage names
		// cannot start with one.
		if strings.HasPrefix(f.name, ".") {
			continue
		}
		d.stages = append(d.stages, c.stage(f, len(d.stages), d))
	}
	if len(d.stages) == 0 {
		c.errorf(n, "stages: has no stages (add one, e.g. build: {steps: [make]})")
	}
}

func (c *compiler) triggers(n *yaml.Node) Triggers {
	var t Triggers
	r := resolve(n)
	if isNull(r) || r.Kind == yaml.MappingNode && len(r.Content) == 0 {
		c.errorf(n, "on: is empty (list the events that start the pipeline, e.g. on: [push, pull_request])")
		return t
	}
	if r.Kind != yaml.MappingNode {
		// The GitHub Actions short form: on: push, or on: [push, pull_request].
		for _, it := range items(n) {
			ev, ok := c.enum(it, "on", []string{"push", "pull_request", "tag", "manual"})
			switch {
			case !ok:
			case ev == "push":
				t.Push = &Filter{}
			case ev == "pull_request":
				t.PullRequest = &Filter{}
			case ev == "tag":
				t.Tag = &Filter{}
			case ev == "manual":
				t.Manual = true
			}
		}
		return t
	}
	fs, _ := c.fields(n, "on", nil)
	for _, f := range fs {
		switch f.name {
		case "push":
			t.Push = c.filter(f.val, "on.push")
		case "pull_request":
			t.PullRequest = c.filter(f.val, "on.pull_request")
		case "tag":
			t.Tag = c.filter(f.val, "on.tag")
		case "manual":
			t.Manual, _ = c.boolean(f.val, "on.manual")
		case "cron":
			for _, it := range items(f.val) {
				if s, ok := c.str(it, "on.cron"); ok {
					if msg := checkCron(s); msg != "" {
						c.errorf(it, "on.cron: %q %s", s, msg)
						continue
					}
					t.Cron = append(t.Cron, s)
				}
			}
		default:
			c.unknownKey(f, "in on", onKeys)
		}
	}
	return t
}

func (c *compiler) filter(n *yaml.Node, what string) *Filter {
	f := &Filter{}
	if isNull(n) {
		return f
	}
	if r := resolve(n); r.Kind != yaml.MappingNode {
		c.errorf(n, "%s: expected a map like {branches: [main]}, got %s (leave it empty for every branch)", what, describe(r))
		return f
	}
	fs, _ := c.fields(n, what, nil)
	for _, e := range fs {
		switch e.name {
		case "branches":
			f.Branches = c.globs(e.val, what+".branches")
		case "tags":
			f.Tags = c.globs(e.val, what+".tags")
		case "paths":
			f.Paths = c.globs(e.val, what+".paths")
		case "paths_ignore":
			f.PathsIgnore = c.globs(e.val, what+".paths_ignore")
		case "labels":
			if what != "on.pull_request" {
				c.errorf(e.key, "%s.labels: only pull requests have labels (move it to on.pull_request)", what)
				continue
			}
			for _, it := range items(e.val) {
				if s, ok := c.str(it, what+".labels"); ok {
					f.Labels = append(f.Labels, s)
				}
			}
		default:
			c.unknownKey(e, "in "+what, filterKeys)
		}
	}
	return f
}

func (c *compiler) concurrency(n *yaml.Node) *Concurrency {
	fs, ok := c.fields(n, "concurrency", nil)
	if !ok {
		return nil
	}
	cc := &Concurrency{Limit: 1}
	var hinted []string
	for _, f := range fs {
		switch f.name {
		case "group":
			cc.Group, _ = c.str(f.val, "concurrency.group")
		case "cancel_superseded":
			cc.CancelSuperseded, _ = c.boolean(f.val, "concurrency.cancel_superseded")
		case "limit":
			if v, ok := c.integer(f.val, "concurrency.limit", 1, math.MaxInt); ok {
				cc.Limit = v
			}
		default:
			hinted = append(hinted, c.unknownKey(f, "in concurrency", concurrencyKeys))
		}
	}
	if cc.Group == "" && !c.has(fs, "group") && !slices.Contains(hinted, "group") {
		c.errorf(n, "concurrency: needs a group (e.g. group: $PAVED_BRANCH)")
	}
	return cc
}

func (c *compiler) has(fs []field, name string) bool {
	for _, f := range fs {
		if f.name == name {
			return true
		}
	}
	return false
}

func (c *compiler) env(n *yaml.Node, what string) map[string]EnvVar {
	fs, ok := c.fields(n, what, nil)
	if !ok || len(fs) == 0 {
		return nil
	}
	env := make(map[string]EnvVar, len(fs))
	for _, f := range fs {
		if !c.varName(f, what) {
			continue
		}
		r := resolve(f.val)
		switch {
		case isNull(r):
			c.errorf(f.val, "%s: %s has no value (write %s: \"\" for an empty one)", what, f.name, f.name)
		case r.Kind == yaml.ScalarNode:
			if v, ok := c.scalarText(f.val, what+"."+f.name); ok {
				env[f.name] = EnvVar{Value: v}
			}
		case r.Kind == yaml.MappingNode:
			if v, ok := c.secretRef(f.val, what+"."+f.name); ok {
				env[f.name] = v
			}
		default:
			c.errorf(f.val, "%s: %s must be a string or {secret: NAME}, not %s", what, f.name, describe(r))
		}
	}
	if len(env) == 0 {
		return nil
	}
	return env
}

// varName checks the name of an environment variable the file sets. PAVED_ names are
// reserved: the scheduler sets them for each stage, and a pipeline that overrode
// PAVED_BRANCH would fool its own scripts.
func (c *compiler) varName(f field, what string) bool {
	why := ""
	if what == "matrix" {
		why = "matrix values become environment variables; "
	}
	switch {
	case !envNameRE.MatchString(f.name):
		c.errorf(f.key, "%s: %q is not a valid variable name (%suse letters, digits and _, not starting with a digit, e.g. %s)", what, f.name, why, envName(f.name))
	case strings.HasPrefix(strings.ToUpper(f.name), "PAVED_"):
		c.errorf(f.key, "%s: %q starts with PAVED_, which paved sets itself (rename it)", what, f.name)
	default:
		return true
	}
	return false
}

// scalarText is a scalar as written, empty allowed: env values are taken literally.
func (c *compiler) scalarText(n *yaml.Node, what string) (string, bool) {
	r := resolve(n)
	if r.Value == "" {
		return "", true
	}
	return c.str(n, what)
}

func (c *compiler) secretRef(n *yaml.Node, what string) (EnvVar, bool) {
	fs, _ := c.fields(n, what, nil)
	var v EnvVar
	var hinted []string
	for _, f := range fs {
		if f.name != "secret" {
			hinted = append(hinted, c.unknownKey(f, "in "+what, []string{"secret"}))
			continue
		}
		s, ok := c.str(f.val, what+".secret")
		if !ok {
			continue
		}
		if !envNameRE.MatchString(s) {
			c.errorf(f.val, "%s.secret: %q is not a valid secret name (use letters, digits and _, not starting with a digit)", what, s)
			continue
		}
		v.Secret = s
	}
	if v.Secret == "" && !c.has(fs, "secret") && !slices.Contains(hinted, "secret") {
		c.errorf(n, "%s: expected {secret: NAME}", what)
	}
	return v, v.Secret != ""
}

// envName turns s into a valid variable name, for the "e.g." of an error.
func envName(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z':
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "NAME"
	}
	return b.String()
}

type cronField struct {
	name     string
	min, max int
	names    []string // names[i] stands for min+i
}

var cronFields = []cronField{
	{"minute", 0, 59, nil},
	{"hour", 0, 23, nil},
	{"day of month", 1, 31, nil},
	{"month", 1, 12, []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	{"day of week", 0, 7, []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
}

var cronDescriptors = []string{"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}

// checkCron returns what is wrong with a schedule, or "". It checks shape and ranges only;
// the scheduler's parser has the last word, but most mistakes are a missing field or an
// hour of 24.
func checkCron(s string) string {
	f := strings.Fields(s)
	if len(f) == 1 && strings.HasPrefix(f[0], "@") {
		if slices.Contains(cronDescriptors, f[0]) {
			return ""
		}
		return fmt.Sprintf("is not a known schedule (use 5 fields or one of %s)", strings.Join(cronDescriptors, ", "))
	}
	if len(f) == 2 && f[0] == "@every" {
		if d, err := time.ParseDuration(f[1]); err != nil || d <= 0 {
			return "has no valid duration after @every (e.g. @every 1h30m)"
		}
		return ""
	}
	if len(f) != 5 {
		return fmt.Sprintf("has %d fields; it needs 5: minute hour day-of-month month day-of-week (e.g. \"0 3 * * *\")", len(f))
	}
	for i, spec := range cronFields {
		if msg := spec.check(f[i]); msg != "" {
			return fmt.Sprintf("has a bad %s field %q: %s", spec.name, f[i], msg)
		}
	}
	return ""
}

func (spec cronField) check(field string) string {
	for _, part := range strings.Split(field, ",") {
		base, step, hasStep := strings.Cut(part, "/")
		if hasStep {
			if n, err := strconv.Atoi(step); err != nil || n < 1 {
				return fmt.Sprintf("step %q is not a positive number", step)
			}
		}
		if base == "*" || base == "?" && (spec.name == "day of month" || spec.name == "day of week") {
			continue
		}
		lo, hi, isRange := strings.Cut(base, "-")
		a, msg := spec.value(lo)
		if msg != "" {
			return msg
		}
		if isRange {
			b, msg := spec.value(hi)
			if msg != "" {
				return msg
			}
			if a > b {
				return fmt.Sprintf("range %s runs backwards", base)
			}
		}
	}
	return ""
}

func (spec cronField) value(s string) (int, string) {
	for i, name := range spec.names {
		if strings.EqualFold(s, name) {
			return spec.min + i, ""
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		switch {
		case s == "":
			return 0, "a value is missing"
		case spec.names != nil:
			return 0, fmt.Sprintf("%q is not a number or a name like %s", s, spec.names[0])
		}
		return 0, fmt.Sprintf("%q is not a number", s)
	}
	if n < spec.min || n > spec.max {
		return 0, fmt.Sprintf("%d is out of range %d-%d", n, spec.min, spec.max)
	}
	return n, ""
}
