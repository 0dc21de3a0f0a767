package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestGreeting(t *testing.T) {
	for name, want := range map[string]string{
		"":    "hello, world (version dev)",
		"ana": "hello, ana (version dev)",
	} {
		if got := greeting(name); got != want {
			t.Errorf("greeting(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for v, want := range map[string]behaviour{
		"1.0.0":            {},
		"1.1.0-err20":      {errorRate: 0.2},
		"1.2.0-slow50ms":   {latency: 50 * time.Millisecond},
		"2-err5-slow1s":    {errorRate: 0.05, latency: time.Second},
		"3-crash":          {crash: true},
		"4-errx-slowsoon":  {},
		"5-err101-slow-1s": {},
	} {
		if got := parseVersion(v); got != want {
			t.Errorf("parseVersion(%q) = %+v, want %+v", v, got, want)
		}
	}
}

func TestErrorRate(t *testing.T) {
	h := handler(behaviour{errorRate: 1})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("healthz status %d, want 200", rec.Code)
	}
}
