package api

import (
	"net/http"
	"time"

	"github.com/paved/paved/internal/gate/sign"
)

// KeyLister gives the public half of the server's signing keys (*sign.Keys is one).
type KeyLister interface {
	PublicKeys() ([]sign.PublicKey, error)
}

// keyJSON is one key in GET /api/v1/keys.
type keyJSON struct {
	ID      string    `json:"id"`
	Active  bool      `json:"active"`
	Created time.Time `json:"created"`
	PEM     string    `json:"pem"`
}

// keyList serves the public keys that verify paved's signatures: JSON by default;
// ?format=pem gives a PEM bundle, active key first, and with ?active=true the active key
// alone, the file `cosign verify-blob --key` wants.
func (s *Server) keyList(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Keys == nil {
		s.writeError(w, r, errorf(http.StatusNotFound, "this server has no signing keys"))
		return
	}
	keys, err := s.cfg.Keys.PublicKeys()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	activeOnly := q.Get("active") == "true"
	if activeOnly {
		kept := keys[:0:0]
		for _, k := range keys {
			if k.Active {
				kept = append(kept, k)
			}
		}
		keys = kept
	}
	switch q.Get("format") {
	case "", "json":
		out := make([]keyJSON, len(keys))
		for i, k := range keys {
			out[i] = keyJSON(k)
		}
		writeJSON(w, http.StatusOK, map[string]any{"keys": out})
	case "pem":
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(sign.PEMBundle(keys, activeOnly))
	default:
		s.writeError(w, r, errorf(http.StatusBadRequest, "format %q: want json or pem", q.Get("format")))
	}
}
