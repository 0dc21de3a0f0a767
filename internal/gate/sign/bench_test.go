package sign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"path/filepath"
	"strconv"
	"testing"
)

// Costs the scheduler and the deploy layer pay per artifact. The floor is hashing the same
// bytes, which Verify must do anyway:
//
//	go test ./internal/gate/sign -run XXX -bench . -benchtime 2s
func benchFixture(b *testing.B, size int) (*Signer, *Verifier, Artifact, []byte) {
	b.Helper()
	dir := b.TempDir()
	keys, err := OpenKeys(KeysConfig{Dir: filepath.Join(dir, "keys")})
	if err != nil {
		b.Fatal(err)
	}
	index, err := OpenIndex(filepath.Join(dir, "attestations"))
	if err != nil {
		b.Fatal(err)
	}
	blob := bytes.Repeat([]byte("paved artifact "), size/15+1)[:size]
	a := Artifact{Name: "out/app", Digest: digestOf(blob)}
	return &Signer{Keys: keys, Index: index}, &Verifier{Keys: keys, Index: index}, a, blob
}

func BenchmarkAttest(b *testing.B) {
	s, _, a, _ := benchFixture(b, 1<<10)
	build := testBuild()
	ctx := context.Background()
	for b.Loop() {
		if err := s.Attest(ctx, a, build); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 20} {
		s, v, a, blob := benchFixture(b, size)
		if err := s.Attest(context.Background(), a, testBuild()); err != nil {
			b.Fatal(err)
		}
		b.Run(sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := v.Verify(context.Background(), a.Digest, bytes.NewReader(blob), Policy{Repos: []string{"acme/*"}, Refs: []string{"main"}}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(sizeName(size)+"/floor-sha256", func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				h := sha256.New()
				io.Copy(h, bytes.NewReader(blob))
				h.Sum(nil)
			}
		})
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MiB"
	}
	return strconv.Itoa(n>>10) + "KiB"
}
