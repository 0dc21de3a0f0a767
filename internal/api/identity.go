package api

import (
	"net/http"

	"github.com/go-jose/go-jose/v4"

	"github.com/paved/paved/internal/identity"
)

// Issuer publishes what verifies paved's workload identity tokens (internal/identity).
type Issuer interface {
	Discovery() identity.Metadata
	JWKS() jose.JSONWebKeySet
}

// identityRoutes serve the OpenID discovery document and the JWKS. They stay public when
// the API requires tokens: a cloud's STS or Vault fetches them with no credential.
func (s *Server) identityRoutes(r interface {
	Get(pattern string, h http.HandlerFunc)
}) {
	if s.cfg.Identity == nil {
		return
	}
	r.Get(identity.DiscoveryPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600") // changes only with --external-url
		writeJSON(w, http.StatusOK, s.cfg.Identity.Discovery())
	})
	r.Get(identity.JWKSPath, func(w http.ResponseWriter, _ *http.Request) {
		// Not cached: a freshly rotated key signs at once, and a verifier holding an old
		// copy would refuse its tokens until the copy expired.
		w.Header().Set("Cache-Control", "no-cache")
		writeJSON(w, http.StatusOK, s.cfg.Identity.JWKS())
	})
}
