package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paved/paved/internal/run"
)

// TestRunArtifactsByDigest: `paved run` stores artifacts in its --data directory by digest;
// a downstream stage gets them; two stages and two runs producing the same bytes leave one
// blob; the events list each artifact.
func TestRunArtifactsByDigest(t *testing.T) {
	t.Parallel()
	dir := gitRepo(t, map[string]string{".paved.yml": `
name: art
stages:
  build:
    steps: ["mkdir -p out && printf 'same bytes' > out/lib.a && ln -s lib.a out/current"]
    artifacts: [out]
  package:
    needs: [build]
    steps: ["test -L out/current && cat out/current && cp out/lib.a copy.a"]
    artifacts: [copy.a]
`})
	data := t.TempDir()
	for i := range 2 {
		res := pavedRun(t, dir, "--data", data)
		if res.code != 0 {
			t.Fatalf("run %d: exit %d\n%s\n%s", i, res.code, res.stdout, res.stderr)
		}
		if !strings.Contains(res.stdout, "[package] same bytes") {
			t.Fatalf("run %d: the artifact of build did not reach package:\n%s", i, res.stdout)
		}
		got := map[string][]run.Artifact{}
		for _, e := range res.events {
			if e.Type == run.ArtifactsStored {
				got[e.Stage] = e.Artifacts
			}
		}
		b, p := got["build"], got["package"]
		if len(b) != 2 || b[0].Path != "out/current" || b[0].Type != run.ArtifactSymlink || b[0].Link != "lib.a" ||
			b[1].Path != "out/lib.a" || b[1].Size != int64(len("same bytes")) || len(p) != 1 || p[0].Digest != b[1].Digest {
			t.Fatalf("run %d: artifacts %+v", i, got)
		}
	}
	blobs, err := os.ReadDir(filepath.Join(data, "artifacts", "sha256"))
	if err != nil || len(blobs) != 1 {
		t.Fatalf("blobs after two runs of two stages storing the same bytes: %v %v", blobs, err)
	}
}
