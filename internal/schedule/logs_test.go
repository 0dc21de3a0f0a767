package schedule

import (
	"context"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

const testSecret = "pa$$w0rd/with spaces&=+?é"

// secretForms are the ways a step may print testSecret that must never be stored.
func secretForms(s string) []string {
	return []string{s,
		base64.StdEncoding.EncodeToString([]byte(s)), base64.URLEncoding.EncodeToString([]byte(s)),
		base64.RawStdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s)),
		url.QueryEscape(s), url.PathEscape(s), escapeAll(s, "%%%02X"), escapeAll(s, "%%%02x")}
}

func TestMaskerForms(t *testing.T) {
	t.Parallel()
	m := masker([]string{testSecret, "short"})
	for _, f := range secretForms(testSecret) {
		line := "before " + f + " after"
		if got := m.Replace(line); got != "before *** after" {
			t.Errorf("%q masks to %q", line, got)
		}
	}
	// Inside a longer base64 text (a basic-auth header, a base64'd config), at each of the
	// three byte offsets.
	for _, prefix := range []string{"", "u:", "user:"} {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			blob := enc.EncodeToString([]byte(prefix + testSecret + "\n--rest of the config--"))
			got := m.Replace("Authorization: Basic " + blob)
			if !strings.Contains(got, "***") {
				t.Errorf("prefix %q: base64 text not masked: %s", prefix, got)
			}
			// What is left cannot be decoded to the secret.
			for _, piece := range strings.Split(strings.TrimPrefix(got, "Authorization: Basic "), "***") {
				if dec, _ := enc.DecodeString(piece); strings.Contains(string(dec), testSecret[:8]) {
					t.Errorf("prefix %q: %q still decodes to the secret", prefix, piece)
				}
			}
		}
	}
	if got := m.Replace("nothing to see"); got != "nothing to see" {
		t.Errorf("masked plain text: %q", got)
	}
	if masker(nil) != nil || masker([]string{""}) != nil {
		t.Error("a mask of no secrets")
	}
}

// TestMaskAcrossChunks writes a secret split across write calls and straddling the cut of a
// line longer than maxLine, in every form, and checks what was stored and published.
func TestMaskAcrossChunks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ":memory:", nil)
	id := h.create(stages([3]string{"a", "", "echo hi"}))
	h.wait(id)
	for fi, form := range secretForms(testSecret) {
		for _, at := range []int{maxLine - 1, maxLine - len(form)/2, maxLine, 10} {
			stage := "mask-" + string(rune('a'+fi)) + "-" + strings.Repeat("x", at%7)
			a := &active{state: &run.State{ID: id}, logSeq: map[string]int64{}, created: true, secrets: []string{testSecret}}
			w := h.sched.newLogWriter(context.Background(), a, stage)
			text := strings.Repeat("y", at) + form + strings.Repeat("z", 2*maxLine) + form + "\n"
			// In chunks of 7 bytes: forms are split across writes everywhere.
			for i := 0; i < len(text); i += 7 {
				w.write([]byte(text[i:min(i+7, len(text))]))
			}
			w.close()
			lines, err := h.store.LogList(context.Background(), store.LogListParams{RunID: id, Stage: stage})
			if err != nil {
				t.Fatal(err)
			}
			var all strings.Builder
			total := 0
			for _, l := range lines {
				all.WriteString(l.Text)
				total += len(l.Text)
				if len(l.Text) > maxLine+len(form) {
					t.Errorf("a stored piece of %d bytes", len(l.Text))
				}
			}
			if strings.Contains(all.String(), form) || strings.Count(all.String(), "***") != 2 {
				t.Errorf("form %d at %d: not masked twice in %d lines (stored %d bytes)", fi, at, len(lines), total)
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range h.logs {
		for _, f := range secretForms(testSecret) {
			if strings.Contains(l.Text, f) {
				t.Fatalf("published line holds the secret: %.80q", l.Text)
			}
		}
	}
}

// FuzzMask: whatever the secret and the text, no form of the secret survives masking (a
// secret holding '*' is left out: the mask itself would contain it).
func FuzzMask(f *testing.F) {
	for _, form := range secretForms(testSecret) {
		f.Add(testSecret, "x "+form+" y")
	}
	f.Add("ab", "aab abab b64:YWI=")
	f.Fuzz(func(t *testing.T, secret, text string) {
		if secret == "" || strings.Contains(secret, "*") {
			return
		}
		m := masker([]string{secret})
		got := m.Replace(text)
		for _, form := range secretForms(secret) {
			if len(form) >= 4 || form == secret {
				if strings.Contains(got, form) && !strings.Contains(form, "*") {
					t.Fatalf("secret %q: form %q survives in %q", secret, form, got)
				}
			}
		}
	})
}
