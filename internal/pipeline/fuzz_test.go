package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCompile checks what must hold for any input: no panic, and either a pipeline that
// satisfies checkPipeline (topological order, defaults, exact JSON round trip) or a
// non-empty, positioned, sorted ErrorList.
func FuzzCompile(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*", "*.yml"))
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Compile("f.yml", src, Options{Kinds: testKinds})
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %T %v", err, err)
			}
			if p != nil {
				t.Fatal("a pipeline together with errors")
			}
			checkErrors(t, "f.yml", list)
			return
		}
		if p == nil {
			t.Fatal("neither a pipeline nor an error")
		}
		checkPipeline(t, p)
	})
}
