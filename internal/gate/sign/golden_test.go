package sign

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with the file, or rewrites it under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		// Atomic: with -update, TestProvenanceGolden reads a file this test rewrites.
		if err := writeAtomic(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func indentJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// envelopeView is what the envelope golden files show of a parsed envelope.
func envelopeView(data []byte) any {
	env, err := ParseEnvelope(data)
	if err != nil {
		return map[string]string{"error": err.Error()}
	}
	payload, _ := env.PayloadBytes()
	return map[string]any{"payloadType": env.PayloadType, "payload": string(payload), "signatures": env.Signatures}
}

func provenanceView(data []byte) any {
	p, err := ParseProvenance(data)
	if err != nil {
		return map[string]string{"error": err.Error()}
	}
	return p
}

// TestEnvelopeGolden reads each testdata/envelope/*.json and compares what the reader made
// of it with the .golden beside it.
func TestEnvelopeGolden(t *testing.T) {
	t.Parallel()
	runGolden(t, "envelope", envelopeView)
}

// TestProvenanceGolden does the same for statements (testdata/statement/*.json).
func TestProvenanceGolden(t *testing.T) {
	t.Parallel()
	runGolden(t, "statement", provenanceView)
}

func runGolden(t *testing.T, dir string, view func([]byte) any) {
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no inputs in testdata/%s: %v", dir, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(file, ".json")+".golden", indentJSON(t, view(src)))
		})
	}
}

// TestProvenanceStatementGolden pins the statement paved writes for a known build: the exact
// JSON shape others read. The file is also an input of TestProvenanceGolden and the fuzzer.
func TestProvenanceStatementGolden(t *testing.T) {
	t.Parallel()
	b := testBuild()
	st, err := ProvenanceStatement(Artifact{Name: "out/app", Digest: digestOf([]byte("app"))}, b)
	if err != nil {
		t.Fatal(err)
	}
	compact, err := MarshalStatement(st)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	golden(t, filepath.Join("testdata", "statement", "paved-provenance.json"), out.Bytes())

	bom := []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[{"type":"library","name":"golang.org/x/text","version":"v0.32.0","purl":"pkg:golang/golang.org/x/text@v0.32.0"}]}`)
	st, err = SBOMStatement(Artifact{Name: "out/app", Digest: digestOf([]byte("app"))}, bom)
	if err != nil {
		t.Fatal(err)
	}
	compact, _ = MarshalStatement(st)
	out.Reset()
	json.Indent(&out, compact, "", "  ")
	out.WriteByte('\n')
	golden(t, filepath.Join("testdata", "sbom-statement.golden"), out.Bytes())
}
