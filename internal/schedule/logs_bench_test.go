package schedule

import (
	"strings"
	"testing"
)

// The cost of masking every form of a run's secrets, against the floor of masking the plain
// values only (what the log writer did before): go test -run '^$' -bench Mask ./internal/schedule
var benchLine = strings.Repeat("compiling internal/pkg/with/a/longish/path.go ok ", 4) // ~200 bytes

func benchSecrets() []string {
	return []string{"ghp_16C7e42F292c6912E7710c838347Ae178B4a", "hunter2-database-password", "s3cr3t/v@lue+x y=z"}
}

func BenchmarkMaskLine(b *testing.B) {
	m := masker(benchSecrets())
	b.SetBytes(int64(len(benchLine)))
	for b.Loop() {
		_ = m.Replace(benchLine)
	}
}

func BenchmarkMaskLineFloorPlainOnly(b *testing.B) {
	var pairs []string
	for _, s := range benchSecrets() {
		pairs = append(pairs, s, "***")
	}
	r := strings.NewReplacer(pairs...)
	b.SetBytes(int64(len(benchLine)))
	for b.Loop() {
		_ = r.Replace(benchLine)
	}
}

// A line that holds a secret: the Replacer runs.
func BenchmarkMaskLineWithSecret(b *testing.B) {
	m := masker(benchSecrets())
	line := benchLine + "token=ghp_16C7e42F292c6912E7710c838347Ae178B4a"
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		_ = m.Replace(line)
	}
}
