package kube

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type entry struct {
	name, link, body string
	typ              byte
}

func tarGz(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			_, _ = tw.Write([]byte(e.body))
		}
	}
	_ = tw.Close()
	_ = zw.Close()
	return buf.Bytes()
}

// TestExtractRefusesEscapes: an upload is a pod's and not trusted: no entry, link or
// hard link writes outside the directory, whatever it names.
func TestExtractRefusesEscapes(t *testing.T) {
	t.Parallel()
	for name, entries := range map[string][]entry{
		"dot-dot":             {{name: "../evil", body: "x", typ: tar.TypeReg}},
		"absolute":            {{name: "/tmp/evil", body: "x", typ: tar.TypeReg}},
		"through a symlink":   {{name: "out", link: "/tmp", typ: tar.TypeSymlink}, {name: "out/evil", body: "x", typ: tar.TypeReg}},
		"hard link outside":   {{name: "pw", link: "../../etc/passwd", typ: tar.TypeLink}},
		"hard link via a dir": {{name: "up", link: "..", typ: tar.TypeSymlink}, {name: "pw", link: "up/x", typ: tar.TypeLink}},
		"device":              {{name: "null", typ: tar.TypeChar}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			dir := filepath.Join(parent, "in")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			err := extractTarGz(bytes.NewReader(tarGz(t, entries...)), dir, 1<<20)
			if err == nil {
				t.Errorf("extracted without an error")
			}
			left, _ := os.ReadDir(parent)
			if len(left) != 1 {
				t.Errorf("wrote beside the directory: %v", left)
			}
		})
	}
}

// TestExtract: files, directories, symlinks (kept as links) and hard links arrive; an empty
// body is an empty archive; the files' bytes are bounded.
func TestExtract(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	err := extractTarGz(bytes.NewReader(tarGz(t,
		entry{name: "./out/", typ: tar.TypeDir},
		entry{name: "out/app", body: "binary", typ: tar.TypeReg},
		entry{name: "out/link", link: "app", typ: tar.TypeSymlink},
		entry{name: "out/hard", link: "out/app", typ: tar.TypeLink},
		entry{name: "deep/er/file", body: "x", typ: tar.TypeReg},
	)), dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out/hard")); string(b) != "binary" {
		t.Errorf("hard link: %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "out/link")); l != "app" {
		t.Errorf("symlink: %q", l)
	}
	if err := extractTarGz(strings.NewReader(""), t.TempDir(), 10); err != nil {
		t.Errorf("empty body: %v", err)
	}
	err = extractTarGz(bytes.NewReader(tarGz(t, entry{name: "big", body: strings.Repeat("x", 50), typ: tar.TypeReg})), t.TempDir(), 10)
	if err == nil || !strings.Contains(err.Error(), "pass 40 bytes") {
		t.Errorf("over the limit: %v", err)
	}
	if err := extractTarGz(strings.NewReader("not gzip"), t.TempDir(), 10); err == nil || !strings.Contains(err.Error(), "not a tar.gz") {
		t.Errorf("garbage: %v", err)
	}
}

// TestWorkspaceRoundTrip: what writeTarGz sends, extractTarGz unpacks the same.
func TestWorkspaceRoundTrip(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	for name, body := range map[string]string{"a/b/c.txt": "c", "top": "t", "a/long/" + strings.Repeat("n", 120): "long name"} {
		p := filepath.Join(src, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.Symlink("b/c.txt", filepath.Join(src, "a", "ln"))
	_ = os.Mkdir(filepath.Join(src, "empty"), 0o755)
	var buf bytes.Buffer
	if err := writeTarGz(&buf, src); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := extractTarGz(&buf, dst, 1<<20); err != nil {
		t.Fatal(err)
	}
	list := func(root string) []string {
		var out []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, _ error) error {
			rel, _ := filepath.Rel(root, p)
			fi, _ := d.Info()
			out = append(out, rel+" "+fi.Mode().String())
			return nil
		})
		slices.Sort(out)
		return out
	}
	if a, b := list(src), list(dst); !slices.Equal(a, b) {
		t.Errorf("round trip:\n%v\n%v", a, b)
	}
}

func TestCollectPaths(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		globs []string
		want  string
	}{
		{[]string{"dist/**/*.tar.gz", "dist/app", "VERSION"}, "VERSION dist"},
		{[]string{"reports/*.xml", "./reports/junit/*.xml"}, "reports"},
		{[]string{"*.xml", "out/x"}, "."},
		{[]string{"a/b/c/{x,y}.txt"}, "a/b/c"},
		{[]string{"../x"}, "."},
	} {
		if got := strings.Join(collectPaths(c.globs), " "); got != c.want {
			t.Errorf("collectPaths(%q) = %q, want %q", c.globs, got, c.want)
		}
	}
}

// FuzzExtract: any upload is refused or unpacked, never a panic, never a file outside.
func FuzzExtract(f *testing.F) {
	f.Add(tarGz(f, entry{name: "out/app", body: "x", typ: tar.TypeReg}, entry{name: "out/l", link: "app", typ: tar.TypeSymlink}))
	f.Add(tarGz(f, entry{name: "../x", body: "x", typ: tar.TypeReg}))
	f.Add(tarGz(f, entry{name: "d", link: "/", typ: tar.TypeSymlink}, entry{name: "d/x", body: "x", typ: tar.TypeReg}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "in")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = extractTarGz(bytes.NewReader(data), dir, 1<<16)
		if left, _ := os.ReadDir(parent); len(left) != 1 {
			t.Fatalf("wrote beside the directory: %v", left)
		}
	})
}
