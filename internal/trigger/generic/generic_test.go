package generic_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/paved/paved/internal/trigger"
	"github.com/paved/paved/internal/trigger/generic"
	"github.com/paved/paved/internal/trigger/triggertest"
)

func header(name string) http.Header {
	return http.Header{generic.DeliveryHeader: {"d-" + name}}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	triggertest.Golden(t, generic.Provider, header)
}

func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"repo":"a/b"}`)
	h := http.Header{generic.SignatureHeader: {trigger.SignHMAC("sha256=", body, "k")}}
	if err := generic.Verify(h, body, "k"); err != nil {
		t.Fatal(err)
	}
	if err := generic.Verify(h, body, "other"); !errors.Is(err, trigger.ErrSignature) {
		t.Errorf("wrong secret verified: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	triggertest.Seed(f, header)
	f.Fuzz(func(t *testing.T, _ string, body []byte) {
		triggertest.Check(t, generic.Provider, http.Header{}, body)
	})
}
