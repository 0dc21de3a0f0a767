package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/bmatcuk/doublestar/v4"
	"gopkg.in/yaml.v3"
)

// Options says what this build of paved can run. The zero value compiles pipelines whose
// stages all have steps.
type Options struct {
	// Kinds are the built-in stage kinds a `uses:` may name, such as "gate/secrets", plus
	// "deploy" when this build can run `deploy:` stages. Default: none.
	Kinds []string
	// KindKeys lists, per kind named in Kinds, the keys its stages may set under with:.
	// A kind without an entry takes no with: at all. Default: none.
	KindKeys map[string][]string
}

// Compile reads a pipeline file and returns it compiled: validated, defaults applied, matrix
// stages expanded and stages in topological order. file is only used to label errors.
//
// When the file has problems, Compile returns a nil Pipeline and an ErrorList holding every
// problem it found, in file order, so one edit can fix them all.
func Compile(file string, src []byte, opt Options) (*Pipeline, error) {
	c := &compiler{file: file, opt: opt}
	var p *Pipeline
	if root := c.decode(src); root != nil {
		d := c.document(root)
		p = c.compile(d)
	}
	if len(c.errs) > 0 {
		return nil, c.sorted()
	}
	return p, nil
}

// compiler collects errors while it walks the document; every check reports and goes on, so
// that one pass finds every problem.
type compiler struct {
	file string
	opt  Options
	errs ErrorList
	size map[*yaml.Node]int // nodes under each node with aliases expanded, by checkAliases
	work int                // spent of maxWork
}

func (c *compiler) errorAt(p Pos, format string, args ...any) {
	c.errs = append(c.errs, Error{File: c.file, Pos: p, Msg: oneLine(fmt.Sprintf(format, args...))})
}

// oneLine escapes control characters, so that a name from the file cannot break an error
// into lines or forge another one in a log.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (c *compiler) errorf(n *yaml.Node, format string, args ...any) {
	c.errorAt(posOf(n), format, args...)
}

// sorted orders the errors by position and drops repeats: a template merged into several
// stages would otherwise report its one mistake once per stage.
func (c *compiler) sorted() ErrorList {
	l := slices.Clone(c.errs)
	slices.SortStableFunc(l, func(a, b Error) int {
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line - b.Pos.Line
		}
		return a.Pos.Col - b.Pos.Col
	})
	return slices.Compact(l)
}

func posOf(n *yaml.Node) Pos {
	if n == nil || n.Line == 0 {
		return Pos{Line: 1, Col: 1}
	}
	return Pos{Line: n.Line, Col: n.Column}
}

// decode parses the YAML into a node tree, or reports why it cannot and returns nil.
func (c *compiler) decode(src []byte) (root *yaml.Node) {
	if !utf8.Valid(src) {
		c.errorAt(invalidUTF8(src), "the file is not valid UTF-8 (save it as UTF-8)")
		return nil
	}
	defer func() {
		// A parser bug must not take the server down with it; the user still learns that
		// this file is the problem.
		if r := recover(); r != nil {
			c.errorAt(Pos{Line: 1, Col: 1}, "invalid YAML: the parser failed (%v)", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		c.syntaxError(err, src)
		return nil
	}
	if len(doc.Content) == 0 {
		c.errorAt(Pos{Line: 1, Col: 1}, "the file is empty (a pipeline needs at least stages:, see docs/pipeline.md)")
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil && len(extra.Content) > 0:
		c.errorf(extra.Content[0], "a second YAML document starts here; a pipeline file holds one (remove the --- before it)")
	case err != nil && !errors.Is(err, io.EOF):
		c.syntaxError(err, src)
	}
	root = doc.Content[0]
	if !c.checkAliases(root) {
		return nil
	}
	return root
}

func invalidUTF8(src []byte) Pos {
	line, col := 1, 1
	for len(src) > 0 {
		r, size := utf8.DecodeRune(src)
		if r == utf8.RuneError && size <= 1 {
			break
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		src = src[size:]
	}
	return Pos{Line: line, Col: col}
}

var (
	yamlLineRE   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlAnchorRE = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// parserProblems are the yaml.v3 messages raised by its parser rather than its scanner. The
// two count lines differently (the parser's are 0-based), so the line in the message is
// only right once we know which one spoke.
var parserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"found undefined tag handle",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found duplicate %TAG directive",
}

// syntaxHints say what usually fixes a yaml.v3 complaint.
var syntaxHints = map[string]string{
	"mapping values are not allowed in this context":         `quote values that contain ": ", or check the indentation`,
	"found character that cannot start any token":            "indent with spaces, not tabs, and quote values starting with @ or `",
	"found a tab character that violates indentation":        "indent with spaces, not tabs",
	"did not find expected key":                              "check the indentation of the lines here",
	"did not find expected '-' indicator":                    "check the indentation of this list",
	"did not find expected node content":                     "a value is missing",
	"did not find expected ',' or ']'":                       "close the [ list that starts here, or quote items containing commas",
	"did not find expected ',' or '}'":                       "close the { map that starts here, or quote values containing commas",
	"found unexpected end of stream":                         "close the quote that starts here",
	"found unknown escape character":                         `in double quotes write \\ for a backslash, or use single quotes`,
	"block sequence entries are not allowed in this context": "put the list on its own lines under the key",
}

func (c *compiler) syntaxError(err error, src []byte) {
	msg := err.Error()
	pos := Pos{Line: 1, Col: 1}
	if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(src, []byte("*"+m[1])); i >= 0 {
			pos = offsetPos(src, i)
		}
		c.errorAt(pos, "alias *%s names no anchor (define &%s before using it)", m[1], m[1])
		return
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		pos.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if slices.Contains(parserProblems, msg) {
			pos.Line++
		}
		// A problem found at the end of the input is reported on the line after the last.
		pos.Line = max(1, min(pos.Line, bytes.Count(bytes.TrimRight(src, "\r\n"), []byte("\n"))+1))
	}
	if msg == "control characters are not allowed" {
		pos = controlChar(src)
		c.errorAt(pos, "the file contains a control character (remove it, or write it as an escape in double quotes)")
		return
	}
	hint := syntaxHints[msg]
	if hint == "" {
		hint = "check the YAML syntax here"
	}
	// A tab in the indentation is the most common cause of several scanner messages;
	// point at the tab itself.
	if lines := bytes.Split(src, []byte("\n")); pos.Line <= len(lines) {
		line := lines[pos.Line-1]
		indent := line[:len(line)-len(bytes.TrimLeft(line, " \t"))]
		if i := bytes.IndexByte(indent, '\t'); i >= 0 {
			pos.Col = i + 1
			hint = "indent with spaces, not tabs"
		}
	}
	c.errorAt(pos, "invalid YAML: %s (%s)", msg, hint)
}

// controlChar finds the first character YAML does not allow in a file (YAML 1.2, 5.1).
func controlChar(src []byte) Pos {
	for i, r := range string(src) {
		allowed := r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r < 0x7f || r == 0x85 ||
			r >= 0xa0 && r <= 0xd7ff || r >= 0xe000 && r <= 0xfffd || r >= 0x10000
		if !allowed {
			return offsetPos(src, i)
		}
	}
	return Pos{Line: 1, Col: 1}
}

func offsetPos(src []byte, off int) Pos {
	line := 1 + bytes.Count(src[:off], []byte("\n"))
	start := bytes.LastIndexByte(src[:off], '\n') + 1
	return Pos{Line: line, Col: 1 + utf8.RuneCount(src[start:off])}
}

// checkAliases rejects anchors that contain themselves and documents whose aliases expand to
// more than maxNodes nodes. After it, every walk of the tree ends, and ends soon.
func (c *compiler) checkAliases(root *yaml.Node) bool {
	const (
		visiting = 1
		done     = 2
	)
	state := map[*yaml.Node]uint8{}
	size := map[*yaml.Node]int{}
	c.size = size
	ok := true
	var walk func(n *yaml.Node) int
	walk = func(n *yaml.Node) int {
		switch state[n] {
		case visiting:
			return 0
		case done:
			return size[n]
		}
		state[n] = visiting
		total := 1
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			if state[n.Alias] == visiting {
				c.errorf(n, "alias *%s is inside the value of its own anchor &%s (an anchor cannot contain itself)", n.Value, n.Value)
				ok = false
			} else {
				total += walk(n.Alias)
			}
		}
		for _, ch := range n.Content {
			total = min(total+walk(ch), maxNodes+1)
		}
		state[n], size[n] = done, total
		return total
	}
	if walk(root) > maxNodes {
		c.errorf(root, "aliases expand the file to more than %d values (use fewer nested aliases)", maxNodes)
		ok = false
	}
	return ok
}

// Node helpers. Each reads one kind of value, reports a mismatch and says whether the value
// is usable; what names the value in messages ("timeout", "when.events").

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node is, for "expected X, got Y".
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch {
	case isNull(n):
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a map"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	}
	if r := []rune(n.Value); len(r) > 40 {
		return fmt.Sprintf("%q...", string(r[:40]))
	}
	return fmt.Sprintf("%q", n.Value)
}

type field struct {
	name     string
	key, val *yaml.Node
}

// fields returns the entries of a map in file order, with << merges applied the YAML way
// (keys written in the map win over merged ones; earlier merges win over later ones).
// A key given twice is reported with dup, or a generic message when dup is nil.
func (c *compiler) fields(n *yaml.Node, what string, dup func(name string, first Pos) string) ([]field, bool) {
	r := resolve(n)
	if r == nil || r.Kind != yaml.MappingNode {
		c.errorf(n, "%s: expected a map, got %s", what, describe(r))
		return nil, false
	}
	explicit := map[string]*yaml.Node{}
	for i := 0; i+1 < len(r.Content); i += 2 {
		k := resolve(r.Content[i])
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			continue
		}
		if first, ok := explicit[k.Value]; ok {
			if dup != nil {
				c.errorf(r.Content[i], "%s", dup(k.Value, posOf(first)))
			} else {
				p := posOf(first)
				c.errorf(r.Content[i], "key %q is given twice in %s (first at %d:%d; remove one)", k.Value, what, p.Line, p.Col)
			}
			continue
		}
		explicit[k.Value] = r.Content[i]
	}
	var out []field
	seen := map[string]bool{}
	for i := 0; i+1 < len(r.Content); i += 2 {
		kn, v := r.Content[i], r.Content[i+1]
		k := resolve(kn)
		switch {
		case k.Kind != yaml.ScalarNode:
			c.errorf(kn, "%s: keys must be plain names, not %s", what, describe(k))
		case k.ShortTag() == "!!merge":
			for _, m := range c.mergeSources(v, what) {
				sub, _ := c.fields(m, what, dup)
				for _, f := range sub {
					if explicit[f.name] == nil && !seen[f.name] {
						seen[f.name] = true
						out = append(out, f)
					}
				}
			}
		case explicit[k.Value] == kn:
			seen[k.Value] = true
			out = append(out, field{name: k.Value, key: kn, val: v})
		}
	}
	return out, true
}

func (c *compiler) mergeSources(v *yaml.Node, what string) []*yaml.Node {
	r := resolve(v)
	switch {
	case r != nil && r.Kind == yaml.MappingNode:
		return []*yaml.Node{r}
	case r != nil && r.Kind == yaml.SequenceNode:
		var out []*yaml.Node
		for _, it := range r.Content {
			if m := resolve(it); m != nil && m.Kind == yaml.MappingNode {
				out = append(out, m)
			} else {
				c.errorf(it, "%s: << merges maps, not %s", what, describe(m))
			}
		}
		return out
	}
	c.errorf(v, "%s: << merges a map or a list of maps, not %s", what, describe(r))
	return nil
}

// unknownKey reports a key that is not in known, suggesting the nearest one or listing all.
// It returns the suggestion, so that a check for a required key can stay quiet when the
// user has just been told that the key is misspelt.
func (c *compiler) unknownKey(f field, where string, known []string) string {
	s := suggest(f.name, known)
	if s != "" {
		c.errorf(f.key, "unknown key %q %s (did you mean %q?)", f.name, where, s)
	} else {
		c.errorf(f.key, "unknown key %q %s (known keys: %s)", f.name, where, strings.Join(known, ", "))
	}
	return s
}

// items returns a list's items; any other value stands for a list of one, and null for an
// empty list.
func items(n *yaml.Node) []*yaml.Node {
	r := resolve(n)
	switch {
	case isNull(r):
		return nil
	case r.Kind == yaml.SequenceNode:
		return r.Content
	}
	return []*yaml.Node{n}
}

// str reads a non-empty string; numbers and booleans are taken as written.
func (c *compiler) str(n *yaml.Node, what string) (string, bool) {
	r := resolve(n)
	switch {
	case isNull(r):
		c.errorf(n, "%s: has no value (give it one, or remove the key)", what)
		return "", false
	case r.Kind != yaml.ScalarNode:
		c.errorf(n, "%s: expected a string, got %s", what, describe(r))
		return "", false
	case strings.TrimSpace(r.Value) == "":
		c.errorf(n, "%s: is empty", what)
		return "", false
	case !utf8.ValidString(r.Value):
		// A double-quoted "\ud800" decodes to bytes that are not UTF-8; JSON would
		// silently replace them, so the stored pipeline would differ from the file.
		c.errorf(n, "%s: is not valid UTF-8 text", what)
		return "", false
	}
	return r.Value, true
}

func (c *compiler) strs(n *yaml.Node, what string) []string {
	var out []string
	for _, it := range items(n) {
		if s, ok := c.str(it, what); ok {
			out = append(out, s)
		}
	}
	return out
}

func (c *compiler) boolean(n *yaml.Node, what string) (bool, bool) {
	r := resolve(n)
	if r.Kind == yaml.ScalarNode && r.ShortTag() == "!!bool" {
		if b, err := strconv.ParseBool(strings.ToLower(r.Value)); err == nil {
			return b, true
		}
	}
	c.errorf(n, "%s: expected true or false, got %s", what, describe(r))
	return false, false
}

// integer reads a whole number from lo to hi; hi == math.MaxInt means no upper bound.
func (c *compiler) integer(n *yaml.Node, what string, lo, hi int) (int, bool) {
	want := fmt.Sprintf("from %d to %d", lo, hi)
	if hi == math.MaxInt {
		want = fmt.Sprintf("of at least %d", lo)
	}
	r := resolve(n)
	if r.Kind == yaml.ScalarNode && r.ShortTag() == "!!int" {
		if v, err := strconv.Atoi(r.Value); err == nil {
			if v < lo || v > hi {
				c.errorf(n, "%s: %d is out of range (use a number %s)", what, v, want)
				return 0, false
			}
			return v, true
		}
	}
	c.errorf(n, "%s: expected a whole number %s, got %s", what, want, describe(r))
	return 0, false
}

// enum reads a string that must be one of allowed.
func (c *compiler) enum(n *yaml.Node, what string, allowed []string) (string, bool) {
	s, ok := c.str(n, what)
	if !ok {
		return "", false
	}
	if !slices.Contains(allowed, s) {
		c.errorf(n, "%s: %q is not one of %s%s", what, s, strings.Join(allowed, ", "), didYouMean(s, allowed))
		return "", false
	}
	return s, true
}

// glob reads a doublestar pattern matched against names (branches, changed files).
func (c *compiler) glob(n *yaml.Node, what string) (string, bool) {
	s, ok := c.str(n, what)
	if !ok {
		return "", false
	}
	if !doublestar.ValidatePattern(s) {
		c.errorf(n, "%s: %q is not a valid glob (check its [ ] and { } pairs)", what, s)
		return "", false
	}
	return s, true
}

func (c *compiler) globs(n *yaml.Node, what string) []string {
	var out []string
	for _, it := range items(n) {
		if s, ok := c.glob(it, what); ok {
			out = append(out, s)
		}
	}
	return out
}

var driveRE = regexp.MustCompile(`^[A-Za-z]:`)

// relGlob reads a glob for files in the stage's workspace. Anything outside it is not kept
// between stages or runs, so a path that leaves it is a mistake worth stopping early.
func (c *compiler) relGlob(n *yaml.Node, what string) (string, bool) {
	s, ok := c.glob(n, what)
	if !ok {
		return "", false
	}
	switch {
	case strings.HasPrefix(s, "/") || strings.HasPrefix(s, `\`) || strings.HasPrefix(s, "~") || driveRE.MatchString(s):
		c.errorf(n, "%s: %q is not relative to the workspace (write it relative to the checkout, e.g. out/app)", what, s)
		return "", false
	case slices.Contains(strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == '\\' }), ".."):
		c.errorf(n, "%s: %q leaves the workspace through \"..\" (paths must stay inside the workspace)", what, s)
		return "", false
	}
	return s, true
}

func (c *compiler) relGlobs(n *yaml.Node, what string) []string {
	var out []string
	for _, it := range items(n) {
		if s, ok := c.relGlob(it, what); ok {
			out = append(out, s)
		}
	}
	return out
}
