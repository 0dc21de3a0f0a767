package pipeline

import (
	"fmt"
	"strings"
	"testing"
)

// Files built to make Compile work hard must fail fast with an error, not exhaust memory:
// the server compiles files from any repository it is pointed at.
func TestHostileFiles(t *testing.T) {
	t.Parallel()
	values := func(n int) string {
		v := make([]string, n)
		for i := range v {
			v[i] = fmt.Sprintf("v%d", i)
		}
		return "[" + strings.Join(v, ", ") + "]"
	}
	laughs := func() string {
		var b strings.Builder
		b.WriteString("x-0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
		for i := 1; i < 9; i++ {
			fmt.Fprintf(&b, "x-%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n", i, i,
				i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
		}
		b.WriteString("stages:\n  a: {steps: *l8}\n")
		return b.String()
	}
	chain := func(stages int) string {
		var b strings.Builder
		b.WriteString("stages:\n")
		for i := range stages {
			fmt.Fprintf(&b, "  s%d:\n    matrix: {a: %s, b: %s}\n    steps: [x]\n", i, values(16), values(16))
			if i > 0 {
				fmt.Fprintf(&b, "    needs: [s%d]\n", i-1)
			}
		}
		return b.String()
	}
	bigSteps := "x-big: &big " + values(20000) + "\nstages:\n  a:\n    matrix: {a: " + values(16) + ", b: " + values(16) + "}\n    steps: *big\n"
	for _, tt := range []struct{ name, src, want string }{
		{"billion laughs", laughs(), "aliases expand the file to more than"},
		{"too many stages", chain(5), "more than 1000 stages"},
		{"large aliased steps times a matrix", bigSteps, "the pipeline is too large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile("h.yml", []byte(tt.src), Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want an error containing %q, got %v", tt.want, err)
			}
			if n := len(err.(ErrorList)); n != 1 {
				t.Errorf("want one error, got %d:\n%v", n, err)
			}
		})
	}
	// Just under the limits compiles: 3 chained 256-way matrices are 768 stages and
	// 2 * 256 * 256 needs.
	p, err := Compile("h.yml", []byte(chain(3)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Stages) != 768 || len(p.Stages[767].Needs) != 256 {
		t.Errorf("got %d stages", len(p.Stages))
	}
}
