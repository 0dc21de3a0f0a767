package api_test

import (
	"net/http"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/paved/paved/internal/access"
)

// rootToken is the server-admin token of every test server (access.Service.Bootstrap), for
// the tests about something else than access.
const rootToken = "pvd_test-root-token-0123456789"

// newAccess makes the access service over st, with a server admin whose token is rootToken.
func newAccess(t testing.TB, st access.Store) *access.Service {
	t.Helper()
	// Open streams recheck their credentials often, so that a test sees a revoked token's
	// stream end at once.
	svc, err := access.New(access.Config{Store: st, BcryptCost: bcrypt.MinCost, RecheckEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Bootstrap(t.Context(), rootToken); err != nil {
		t.Fatal(err)
	}
	return svc
}

// asRoot authenticates req with rootToken.
func asRoot(req *http.Request) *http.Request { return withToken(req, rootToken) }

func withToken(req *http.Request, token string) *http.Request {
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// rootGet is http.Get with rootToken.
func rootGet(url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(asRoot(req))
}

// rootPost is http.Post with rootToken.
func rootPost(url, contentType string, body interface{ Read([]byte) (int, error) }) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	return http.DefaultClient.Do(asRoot(req))
}
