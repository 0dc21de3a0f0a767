package egress_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/egress"
)

func policy(t *testing.T, cfg egress.Config) *egress.Policy {
	t.Helper()
	p, err := egress.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsDenyInternalAddresses(t *testing.T) {
	t.Parallel()
	p := policy(t, egress.Config{})
	for _, ip := range []string{"127.0.0.1", "10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254", "100.100.100.200",
		"::1", "fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "0.0.0.0", "64:ff9b::a9fe:a9fe"} {
		if err := p.CheckIP("h", netip.MustParseAddr(ip)); !errors.Is(err, egress.ErrDenied) {
			t.Errorf("%s allowed by default", ip)
		}
	}
	for _, ip := range []string{"93.184.216.34", "140.82.112.3", "2606:4700::1111"} {
		if err := p.CheckIP("h", netip.MustParseAddr(ip)); err != nil {
			t.Errorf("%s denied: %v", ip, err)
		}
	}
}

func TestAllowAndDenyLists(t *testing.T) {
	t.Parallel()
	p := policy(t, egress.Config{Allow: []string{"127.0.0.1", "10.8.0.0/16", "git.corp.internal"}, Deny: []string{"203.0.113.0/24", "*.evil.example"}})
	for ip, ok := range map[string]bool{"127.0.0.1": true, "127.0.0.2": false, "10.8.3.4": true, "10.9.0.1": false, "203.0.113.9": false, "198.51.100.1": true} {
		if err := p.CheckIP("h", netip.MustParseAddr(ip)); (err == nil) != ok {
			t.Errorf("%s: err = %v, want allowed=%v", ip, err, ok)
		}
	}
	ctx := t.Context()
	for u, want := range map[string]string{
		"https://git.corp.internal/x.git":         "",
		"https://other.internal/x.git":            `deny rule "*.internal"`,
		"http://metadata.google.internal/":        "metadata.google.internal",
		"https://a.evil.example/":                 `"*.evil.example"`,
		"http://169.254.169.254/latest/meta-data": "--egress-allow 169.254.169.254",
		"http://[::1]:8080/":                      "::1",
		"ftp://example.com/":                      "only http and https",
		"http://user:hunter2@10.0.0.1/":           "range 10.0.0.0/8",
		"http://127.0.0.1:9/hook":                 "",
	} {
		err := p.CheckURL(ctx, u)
		switch {
		case want == "" && err != nil:
			t.Errorf("CheckURL(%s) = %v, want allowed", u, err)
		case want != "" && (!errors.Is(err, egress.ErrDenied) || !strings.Contains(err.Error(), want)):
			t.Errorf("CheckURL(%s) = %v, want denied saying %q", u, err, want)
		case err != nil && strings.Contains(err.Error(), "hunter2"):
			t.Errorf("the error shows the password: %v", err)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "[x", "a/b", ""} {
		if _, err := egress.New(egress.Config{Allow: []string{bad}}); err == nil {
			t.Errorf("entry %q accepted", bad)
		}
	}
}

// The dialer checks the address it connects to, not the name: "localhost" is dialed as
// 127.0.0.1 and refused, as a name that re-resolves to an internal address would be.
func TestDialChecksResolvedAddress(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://127.0.0.2:1/", http.StatusFound)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]

	deny := policy(t, egress.Config{}).Client(5 * time.Second)
	if _, err := deny.Get("http://localhost:" + port + "/"); !errors.Is(err, egress.ErrDenied) {
		t.Fatalf("localhost reached by default: %v", err)
	}
	allow := policy(t, egress.Config{Allow: []string{"127.0.0.1"}}).Client(5 * time.Second)
	resp, err := allow.Get("http://localhost:" + port + "/")
	if err != nil {
		t.Fatalf("127.0.0.1 allowed, yet: %v", err)
	}
	resp.Body.Close()
	// A redirect from an allowed server to a denied address is refused at its dial.
	if _, err := allow.Get(srv.URL + "/redirect"); !errors.Is(err, egress.ErrDenied) {
		t.Fatalf("redirect to 127.0.0.2 followed: %v", err)
	}
}
