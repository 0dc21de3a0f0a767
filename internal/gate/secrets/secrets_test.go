package secrets

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Planted are fake credentials built at run time, so that this repository holds no string a
// secret scanner (or a push protection) would flag.
type Planted struct{ AWS, GitHub, PrivateKey string }

func plant() Planted {
	return Planted{
		AWS:    "AKIA" + "QYLPMN5HZ3TRWX7B",
		GitHub: "ghp_" + "R8x2kLq9ZtV4mN7pW1cY6bH3jD5fG0sA9eUo",
		PrivateKey: "-----BEGIN RSA " + "PRIVATE KEY-----\n" +
			"MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM2wKx7yN5pQ8rW4hL6vB1cD9eF0gH\n" +
			"2iJ3kL4mN5oP6qR7sT8uV9wX0yZ1aB2cD3eF4gH5iJ6kL7mN8oP9qR0sT1uV2wX3\n" +
			"-----END RSA " + "PRIVATE KEY-----\n",
	}
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestScanFindsPlantedSecretsAtFileLineRedacted(t *testing.T) {
	t.Parallel()
	p := plant()
	dir := writeTree(t, map[string]string{
		"config/prod.env": "# production\nREGION=eu-west-1\naws_access_key_id = " + p.AWS + "\n",
		"scripts/ci.sh":   "#!/bin/sh\n\nexport GITHUB_TOKEN=" + p.GitHub + "\n",
		"deploy/id_rsa":   p.PrivateKey,
		"README.md":       "nothing to see\n",
		"bin/blob":        "\x00\x01" + p.GitHub,
		".git/config":     "token = " + p.GitHub,
	})
	fs, n, err := Scan(context.Background(), dir, nil, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("suppressed %d without a baseline", n)
	}
	want := map[string]string{"config/prod.env:3": "aws-access-token", "scripts/ci.sh:3": "github-pat", "deploy/id_rsa:1": "private-key"}
	got := map[string]string{}
	for _, f := range fs {
		got[f.File+":"+strconv.Itoa(f.Line)] = f.Rule
		for _, s := range []string{p.AWS, p.GitHub, "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM2wKx7yN5pQ8rW4hL6vB1cD9eF0gH"} {
			if strings.Contains(f.Match+f.Message+f.Fingerprint, s) {
				t.Errorf("finding %+v holds the secret", f)
			}
		}
		if f.Severity != Severity || !strings.Contains(f.Match, "REDACTED") {
			t.Errorf("finding %+v: want severity %s and a redacted match", f, Severity)
		}
	}
	for k, rule := range want {
		if got[k] != rule {
			t.Errorf("at %s: got rule %q, want %q (all: %v)", k, got[k], rule, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("findings %v, want %v", got, want)
	}
}

func TestBaselineSuppressesUntilItExpires(t *testing.T) {
	t.Parallel()
	p := plant()
	dir := writeTree(t, map[string]string{
		"testdata/creds.env": "aws_access_key_id = " + p.AWS + "\n",
		"ci.sh":              "GITHUB_TOKEN=" + p.GitHub + "\n",
	})
	base, err := ParseBaseline(BaselineFile, []byte(`suppressions:
  - path: testdata/**
    reason: fixture
    expires: 2026-12-31
  - fingerprint: ci.sh:github-pat:1
    reason: revoked
    expires: 2026-06-30
`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 31, 22, 0, 0, 0, time.UTC)
	var warnings []string
	fs, n, err := Scan(context.Background(), dir, base, now, func(s string) { warnings = append(warnings, s) })
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || len(fs) != 1 || fs[0].File != "ci.sh" {
		t.Fatalf("suppressed %d, findings %+v: want the fixture suppressed and the expired entry not", n, fs)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], BaselineFile+":5: the suppression of ci.sh:github-pat:1 expired on 2026-06-30") {
		t.Errorf("warnings %q", warnings)
	}
	fs, n, _ = Scan(context.Background(), dir, base, now.Add(2*time.Hour), nil)
	if n != 0 || len(fs) != 2 {
		t.Errorf("after the expiry: suppressed %d, %d findings; want 0 and 2", n, len(fs))
	}
}

// A secret committed and removed again within one push is found in the pushed commits,
// at its line in the commit that added it, although the tree no longer has it.
func TestScanCommitsFindsWhatTheTreeNoLongerHas(t *testing.T) {
	t.Parallel()
	p := plant()
	dir := writeTree(t, map[string]string{"README.md": "hello\n"})
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t.invalid", "-C", dir}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "--quiet", "--initial-branch=main")
	git("add", "-A")
	git("commit", "--quiet", "-m", "one")
	before := git("rev-parse", "HEAD")
	os.WriteFile(filepath.Join(dir, "ci.sh"), []byte("#!/bin/sh\n\n\nexport GITHUB_TOKEN="+p.GitHub+"\n"), 0o644)
	git("add", "-A")
	git("commit", "--quiet", "-m", "oops")
	os.Remove(filepath.Join(dir, "ci.sh"))
	git("add", "-A")
	git("commit", "--quiet", "-m", "remove it")
	sha := git("rev-parse", "HEAD")

	tree, _, err := Scan(context.Background(), dir, nil, time.Now(), nil)
	if err != nil || len(tree) != 0 {
		t.Fatalf("the tree: %v %v", tree, err)
	}
	fs, _, err := ScanCommits(context.Background(), dir, before, sha, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].File != "ci.sh" || fs[0].Line != 4 || fs[0].Rule != "github-pat" || !strings.Contains(fs[0].Message, "added in commit") {
		t.Fatalf("findings %+v, want github-pat at ci.sh:4", fs)
	}
	if strings.Contains(fs[0].Match+fs[0].Message, p.GitHub) {
		t.Errorf("the finding holds the secret: %+v", fs[0])
	}
}
