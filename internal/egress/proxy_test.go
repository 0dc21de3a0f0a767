package egress_test

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/paved/paved/internal/egress"
)

func proxyClient(t *testing.T, cfg egress.Config) *http.Client {
	t.Helper()
	px, err := policy(t, cfg).StartProxy(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Stop)
	u, _ := url.Parse(px.URL)
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u), TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

func TestProxyForwardsOnlyWhatIsAllowed(t *testing.T) {
	t.Parallel()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "plain ok") }))
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "tls ok") }))
	defer tlsSrv.Close()

	denied := proxyClient(t, egress.Config{})
	resp, err := denied.Get(plain.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "--egress-allow 127.0.0.1") {
		t.Fatalf("forward to 127.0.0.1 by default: %s %s", resp.Status, b)
	}
	if _, err := denied.Get(tlsSrv.URL); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("CONNECT to 127.0.0.1 by default: %v", err)
	}

	allowed := proxyClient(t, egress.Config{Allow: []string{"127.0.0.1"}})
	for u, want := range map[string]string{plain.URL: "plain ok", tlsSrv.URL: "tls ok"} {
		resp, err := allowed.Get(u)
		if err != nil {
			t.Fatalf("%s through the proxy: %v", u, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Fatalf("%s: %q", u, b)
		}
	}
}
