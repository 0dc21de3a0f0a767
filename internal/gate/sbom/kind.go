package sbom

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"strings"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/gate"
)

// DefaultOutput is where gate/sbom puts the BOM among the run's artifacts.
const DefaultOutput = "sbom.cdx.json"

// Kind is gate/sbom's scanner: it finds nothing to judge, it stores the BOM of the commit's
// lockfiles in blobs as an artifact (with: output: PATH, default sbom.cdx.json) that
// downstream stages, gate/vulns among them, receive.
func Kind(blobs *cache.Blobs) gate.ScanFunc {
	return func(ctx context.Context, in gate.Input) (gate.Output, error) {
		out := DefaultOutput
		if v := in.With["output"]; len(v) > 0 && v[0] != "" {
			out = v[0]
		}
		if !fs.ValidPath(out) || out == "." {
			return gate.Output{}, fmt.Errorf("%w: output: %q is not a relative path", gate.ErrOption, out)
		}
		cs, err := Scan(ctx, in.Dir)
		if err != nil {
			return gate.Output{}, err
		}
		name, version := "local", ""
		if in.Job != nil && in.Job.Info != nil {
			name, version = in.Job.Info.Repo, in.Job.Info.SHA
		}
		b, err := Encode(New(name, version, cs))
		if err != nil {
			return gate.Output{}, err
		}
		files := map[string]int{}
		for _, c := range cs {
			files[c.File]++
		}
		for f, n := range files {
			in.Log(fmt.Sprintf("%s: %d components", f, n))
		}
		if len(cs) == 0 {
			in.Log("no dependency in a lockfile (it reads " + strings.Join(Lockfiles(), ", ") + "): the BOM is empty")
		}
		digest, size, err := blobs.Put(bytes.NewReader(b))
		if err != nil {
			return gate.Output{}, fmt.Errorf("sbom: storing the BOM: %w", err)
		}
		in.Log(fmt.Sprintf("%s: CycloneDX 1.6, %d components, %s", out, len(cs), digest))
		return gate.Output{Artifacts: []execute.Artifact{{Path: out, Digest: digest, Size: size, Mode: 0o644}}}, nil
	}
}
