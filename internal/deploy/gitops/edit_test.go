package gitops

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const newDigest = "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"

// cfgFor picks the file shape by the test file's name.
func cfgFor(name string) Config {
	if strings.HasPrefix(filepath.Base(name), "kustomize") {
		return Config{Kind: Kustomize, File: "kustomization.yaml", Image: "ghcr.io/acme/web"}
	}
	return Config{Kind: Helm, File: "values.yaml", Path: "image.digest"}
}

func inputs(t testing.TB) []string {
	files, _ := filepath.Glob("testdata/edit/*.yaml")
	var out []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".golden.yaml") {
			out = append(out, f)
		}
	}
	if len(out) < 6 {
		t.Fatalf("only %d inputs in testdata/edit", len(out))
	}
	return out
}

// Set on real-shaped kustomizations and Helm values: an existing key changes only its value's
// bytes (comments, order, flow style and quoting stay); a missing one is added.
func TestSetGolden(t *testing.T) {
	t.Parallel()
	for _, f := range inputs(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			src, _ := os.ReadFile(f)
			cfg := cfgFor(f)
			got, err := Set(cfg, src, newDigest)
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden.yaml"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			} else if want, err := os.ReadFile(golden); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s differs (%v):\n%s", golden, err, got)
			}
			tg := &Target{cfg: cfg}
			if d, err := tg.get(got); err != nil || d != newDigest {
				t.Errorf("read back %q, %v", d, err)
			}
			if again, _ := Set(cfg, got, newDigest); !bytes.Equal(again, got) {
				t.Errorf("setting the same digest again changed the file:\n%s", again)
			}
			for _, c := range []string{"# ", "#"} {
				if strings.Count(string(src), c) != strings.Count(string(got), c) {
					t.Errorf("comments lost:\n%s", got)
				}
			}
		})
	}
}

func TestSetInPlaceChangesOneLine(t *testing.T) {
	t.Parallel()
	src, _ := os.ReadFile("testdata/edit/kustomize-existing.yaml")
	got, err := Set(cfgFor("kustomize"), src, newDigest)
	if err != nil {
		t.Fatal(err)
	}
	a, b := strings.Split(string(src), "\n"), strings.Split(string(got), "\n")
	diff := 0
	for i := range a {
		if a[i] != b[i] {
			diff++
		}
	}
	if len(a) != len(b) || diff != 1 {
		t.Errorf("%d lines changed, want 1:\n%s", diff, got)
	}
}

func TestSetInvalid(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/edit/invalid/*.yaml")
	if len(files) < 5 {
		t.Fatalf("only %d invalid inputs", len(files))
	}
	for _, f := range files {
		src, _ := os.ReadFile(f)
		if out, err := Set(cfgFor(f), src, newDigest); !errors.Is(err, ErrEdit) {
			t.Errorf("%s: %s, %v; want ErrEdit", f, out, err)
		}
	}
}

func FuzzSet(f *testing.F) {
	for _, p := range inputs(f) {
		b, _ := os.ReadFile(p)
		f.Add(b, strings.HasPrefix(filepath.Base(p), "kustomize"))
	}
	files, _ := filepath.Glob("testdata/edit/invalid/*.yaml")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b, false)
	}
	f.Fuzz(func(t *testing.T, src []byte, kustomize bool) {
		cfg := cfgFor("values")
		if kustomize {
			cfg = cfgFor("kustomize")
		}
		out, err := Set(cfg, src, newDigest)
		if err != nil {
			if !errors.Is(err, ErrEdit) {
				t.Fatalf("error without ErrEdit: %v", err)
			}
			return
		}
		if d, err := (&Target{cfg: cfg}).get(out); err != nil || d != newDigest {
			t.Fatalf("wrote %q but reads back %q, %v", out, d, err)
		}
	})
}
