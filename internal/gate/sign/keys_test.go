package sign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
)

func openKeys(t *testing.T, dir string) *Keys {
	t.Helper()
	k, err := OpenKeys(KeysConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func publicKeys(t *testing.T, k *Keys) []PublicKey {
	t.Helper()
	keys, err := k.PublicKeys()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestKeysSurviveRestartSealed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k := openKeys(t, dir)
	first := publicKeys(t, k)
	if len(first) != 1 || !first[0].Active || first[0].ID == "" || !strings.HasPrefix(first[0].PEM, "-----BEGIN PUBLIC KEY-----") {
		t.Fatalf("first start: %+v", first)
	}
	fi, err := os.Stat(filepath.Join(dir, kekFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("kek file mode %#o, want 0600", fi.Mode().Perm())
	}

	// The private key appears on disk in no form a reader could use.
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, keysFile))
	if err != nil {
		t.Fatal(err)
	}
	scalar := k.priv.D.Bytes()
	for name, secret := range map[string][]byte{
		"PKCS#8 DER": der, "PKCS#8 base64": []byte(base64.StdEncoding.EncodeToString(der)),
		"scalar": scalar, "scalar hex": []byte(hex.EncodeToString(scalar)),
		"scalar base64": []byte(base64.StdEncoding.EncodeToString(scalar)), "PEM header": []byte("PRIVATE KEY"),
	} {
		if bytes.Contains(onDisk, secret) {
			t.Errorf("keys.json holds the private key in plaintext (%s)", name)
		}
	}

	// A signature made before the restart verifies after it, and the same key signs.
	digest, sig, err := k.SignBlob(context.Background(), strings.NewReader("artifact"))
	if err != nil {
		t.Fatal(err)
	}
	k2 := openKeys(t, dir)
	if got := publicKeys(t, k2); len(got) != 1 || got[0] != first[0] {
		t.Fatalf("after restart: %+v, want %+v", got, first)
	}
	trust, err := k2.Trust()
	if err != nil {
		t.Fatal(err)
	}
	if id, err := trust.verifyDigest(digest, sig.Sig); err != nil || id != first[0].ID {
		t.Fatalf("verify after restart: %q %v", id, err)
	}
	_, sig2, err := k2.SignBlob(context.Background(), strings.NewReader("artifact"))
	if err != nil || sig2.KeyID != first[0].ID {
		t.Fatalf("sign after restart: key %q, %v", sig2.KeyID, err)
	}
}

func TestKeysRefuseWrongKEK(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	openKeys(t, dir)
	other := make([]byte, 32)
	rand.Read(other)
	_, err := OpenKeys(KeysConfig{Dir: dir, KEK: other})
	if !errors.Is(err, ErrKEK) || !strings.Contains(err.Error(), "not the key the store was sealed with") {
		t.Fatalf("wrong KEK: %v", err)
	}
}

func TestKeysRefuseOpenKEKFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	openKeys(t, dir)
	if err := os.Chmod(filepath.Join(dir, kekFile), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := OpenKeys(KeysConfig{Dir: dir})
	if !errors.Is(err, ErrKEK) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("kek file 0644: %v", err)
	}
}

func TestKeysKEKFromEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kek, err := ParseKEK(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	k, err := OpenKeys(KeysConfig{Dir: dir, KEK: kek})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, kekFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a kek file was written although the KEK came from the environment: %v", err)
	}
	// Without the environment's KEK the store refuses to start rather than make a kek file.
	if _, err := OpenKeys(KeysConfig{Dir: dir}); !errors.Is(err, ErrKEK) || !strings.Contains(err.Error(), "set PAVED_KEY_ENCRYPTION_KEY") {
		t.Fatalf("no KEK for sealed keys: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, kekFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a kek file was left behind: %v", err)
	}
	hexKEK, _ := ParseKEK(strings.Repeat("07", 32) + "\n")
	k2, err := OpenKeys(KeysConfig{Dir: dir, KEK: hexKEK})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := publicKeys(t, k), publicKeys(t, k2); a[0].ID != b[0].ID {
		t.Fatal("the same KEK in hex opened another key")
	}
}

func TestParseKEK(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "short", strings.Repeat("ab", 31), base64.StdEncoding.EncodeToString(make([]byte, 16))} {
		if _, err := ParseKEK(bad); !errors.Is(err, ErrKEK) || !strings.Contains(err.Error(), "openssl rand -base64 32") {
			t.Errorf("ParseKEK(%q) = %v", bad, err)
		}
	}
}

func TestRotateKeepsOldKeysForVerification(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	k, err := OpenKeys(KeysConfig{Dir: dir, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	// A second process (paved keys rotate) shares the directory.
	other := openKeys(t, dir)
	old := publicKeys(t, k)[0]
	digest, oldSig, err := k.SignBlob(ctx, strings.NewReader("v1"))
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	next, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if next.ID == old.ID || !next.Active || !next.Created.Equal(now) {
		t.Fatalf("rotated to %+v", next)
	}
	keys := publicKeys(t, k)
	if len(keys) != 2 || keys[0].ID != old.ID || keys[0].Active || keys[1].ID != next.ID || !keys[1].Active {
		t.Fatalf("after rotation: %+v", keys)
	}
	// The other process sees the rotation without a restart, and so does a new one.
	for name, ks := range map[string]*Keys{"running": other, "restarted": openKeys(t, dir)} {
		_, sig, err := ks.SignBlob(ctx, strings.NewReader("v2"))
		if err != nil || sig.KeyID != next.ID {
			t.Fatalf("%s store signs with %q (%v), want the new key %s", name, sig.KeyID, err, next.ID)
		}
		trust, err := ks.Trust()
		if err != nil {
			t.Fatal(err)
		}
		if id, err := trust.verifyDigest(digest, oldSig.Sig); err != nil || id != old.ID {
			t.Fatalf("%s store: old signature: %q %v", name, id, err)
		}
	}
	pemAll, err := k.PEM(false)
	if err != nil {
		t.Fatal(err)
	}
	pemActive, _ := k.PEM(true)
	if !strings.HasPrefix(string(pemAll), next.PEM) || string(pemActive) != next.PEM || strings.Count(string(pemAll), "BEGIN PUBLIC KEY") != 2 {
		t.Fatalf("PEM export:\n%s\nactive:\n%s", pemAll, pemActive)
	}
}

// TestBlobSignatureIsCosignFormat verifies the way cosign verify-blob --key does: load the
// PEM public key, base64-decode the signature, verify it over the file's bytes.
func TestBlobSignatureIsCosignFormat(t *testing.T) {
	t.Parallel()
	k := openKeys(t, t.TempDir())
	blob := []byte("the artifact's bytes\n")
	_, sig, err := k.SignBlob(context.Background(), bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	pemKey, _ := k.PEM(true)
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(sig.Base64())
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifySignature(bytes.NewReader(raw), bytes.NewReader(blob)); err != nil {
		t.Fatalf("sigstore rejects paved's blob signature: %v", err)
	}
	if err := v.VerifySignature(bytes.NewReader(raw), bytes.NewReader(append(blob, 'x'))); err == nil {
		t.Fatal("the signature verifies over other bytes")
	}
}

// TestEnvelopeIsDSSE verifies paved's envelope with sigstore's own DSSE verifier.
func TestEnvelopeIsDSSE(t *testing.T) {
	t.Parallel()
	k := openKeys(t, t.TempDir())
	env, err := k.SignEnvelope(context.Background(), PayloadTypeInToto, []byte(`{"hello":"world"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := jsonIndent(env)
	if err != nil {
		t.Fatal(err)
	}
	pemKey, _ := k.PEM(true)
	pub, _ := cryptoutils.UnmarshalPEMToPublicKey(pemKey)
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var payload []byte
	dv := sigdsse.WrapVerifier(v, sigdsse.WithExpectedPayloadType(PayloadTypeInToto), sigdsse.WithDecodedPayload(&payload))
	if err := dv.VerifySignature(bytes.NewReader(b), nil); err != nil {
		t.Fatalf("sigstore's DSSE verifier rejects paved's envelope: %v", err)
	}
	if string(payload) != `{"hello":"world"}` {
		t.Fatalf("payload %q", payload)
	}
}

// TestRemovedKeyIsDistrusted: deleting a key from keys.json (the way to distrust a leaked
// key) stops its signatures from verifying, and the store makes a new signing key.
func TestRemovedKeyIsDistrusted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	k := openKeys(t, dir)
	digest, sig, err := k.SignBlob(ctx, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, keysFile)
	b, _ := os.ReadFile(path)
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		t.Fatal(err)
	}
	kf.Keys = nil
	b, _ = json.Marshal(kf)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// The running store stops signing and trusting it at once.
	if _, err := k.SignDigest(ctx, digest); err == nil || !strings.Contains(err.Error(), "paved keys rotate") {
		t.Fatalf("signing with no active key: %v", err)
	}
	k2 := openKeys(t, dir)
	keys := publicKeys(t, k2)
	if len(keys) != 1 || keys[0].ID == sig.KeyID {
		t.Fatalf("after removal: %+v", keys)
	}
	trust, _ := k2.Trust()
	if _, err := trust.verifyDigest(digest, sig.Sig); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("signature by the removed key: %v", err)
	}
}

// TestSignDuringRotation: signatures made while another goroutine rotates all verify
// afterwards, whichever key made them.
func TestSignDuringRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k := openKeys(t, t.TempDir())
	type signed struct {
		digest string
		sig    Signature
	}
	out := make(chan signed, 40)
	errs := make(chan error, 5)
	for i := range 4 {
		go func() {
			for j := range 10 {
				d, s, err := k.SignBlob(ctx, strings.NewReader(fmt.Sprint(i, j)))
				if err != nil {
					errs <- err
					return
				}
				out <- signed{d, s}
			}
		}()
	}
	go func() {
		for range 3 {
			if _, err := k.Rotate(ctx); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	trust, err := k.Trust()
	if err != nil {
		t.Fatal(err)
	}
	for range 40 {
		select {
		case s := <-out:
			if id, err := trust.verifyDigest(s.digest, s.sig.Sig); err != nil || id != s.sig.KeyID {
				t.Fatalf("signature by %s: verified as %q, %v", s.sig.KeyID, id, err)
			}
		case err := <-errs:
			t.Fatal(err)
		}
	}
	if n := len(publicKeys(t, k)); n != 4 {
		t.Fatalf("%d keys after 3 rotations, want 4", n)
	}
}
