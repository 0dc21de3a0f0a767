package triggertest

import (
	"net/http"
	"os"
	"strings"
	"testing"
)

// IndexHeaders reads testdata/payloads.tsv (file, event header value, ...) and returns a
// header function for Golden and Seed that sets eventHeader and a delivery id header.
func IndexHeaders(t testing.TB, eventHeader, deliveryHeader string) func(string) http.Header {
	b, err := os.ReadFile("testdata/payloads.tsv")
	if err != nil {
		t.Fatal(err)
	}
	events := map[string]string{}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Split(line, "\t")
		if len(f) >= 2 {
			events[strings.TrimSuffix(f[0], ".json")] = f[1]
		}
	}
	return func(name string) http.Header {
		h := http.Header{}
		h.Set(eventHeader, events[name])
		h.Set(deliveryHeader, "d-"+name)
		return h
	}
}
