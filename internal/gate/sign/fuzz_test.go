package sign

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func seed(f *testing.F, dir string) {
	files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if len(files) == 0 {
		f.Fatalf("no seeds in testdata/%s", dir)
	}
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
}

// FuzzParseEnvelope: no panic; a refusal wraps ErrEnvelope; an envelope that parses
// survives a round trip through its JSON unchanged.
func FuzzParseEnvelope(f *testing.F) {
	seed(f, "envelope")
	f.Fuzz(func(t *testing.T, src []byte) {
		env, err := ParseEnvelope(src)
		if err != nil {
			if !errors.Is(err, ErrEnvelope) {
				t.Fatalf("error does not wrap ErrEnvelope: %v", err)
			}
			return
		}
		b, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseEnvelope(b)
		if err != nil {
			t.Fatalf("re-encoded envelope does not parse: %v\n%s", err, b)
		}
		p1, _ := env.PayloadBytes()
		p2, _ := again.PayloadBytes()
		if again.PayloadType != env.PayloadType || !bytes.Equal(p1, p2) || len(again.Signatures) != len(env.Signatures) {
			t.Fatalf("round trip changed the envelope: %+v -> %+v", env, again)
		}
	})
}

// FuzzParseProvenance: no panic; a refusal wraps ErrStatement; a provenance that parses
// names at least one sha256 subject, which is what verification relies on.
func FuzzParseProvenance(f *testing.F) {
	seed(f, "statement")
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := ParseProvenance(src)
		if err != nil {
			if !errors.Is(err, ErrStatement) {
				t.Fatalf("error does not wrap ErrStatement: %v", err)
			}
			return
		}
		if p.BuildType != BuildType || p.BuilderID == "" {
			t.Fatalf("accepted without paved's build type and a builder: %+v", p)
		}
		for _, s := range p.Subjects {
			if _, err := parseDigest(s.Digest); err != nil {
				t.Fatalf("subject digest %q accepted: %v", s.Digest, err)
			}
		}
	})
}
