package stack

import (
	"bytes"
	"errors"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// manifestKinds returns the kinds of the Kubernetes objects in a YAML file (one per
// document with a string apiVersion and kind), or nil when it holds none — a GitHub
// workflow, a docker-compose file, a Helm template, or no YAML at all. Documents after
// the first unreadable one are not looked at.
func manifestKinds(src []byte) []string {
	if bytes.Contains(src, []byte("{{")) {
		return nil // a template (Helm, Go): not a manifest until rendered
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var kinds []string
	for range 1000 {
		var doc struct {
			APIVersion any `yaml:"apiVersion"`
			Kind       any `yaml:"kind"`
			Metadata   any `yaml:"metadata"`
		}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) || err != nil {
			break
		}
		api, _ := doc.APIVersion.(string)
		kind, _ := doc.Kind.(string)
		if api == "" || kind == "" || doc.Metadata == nil {
			continue
		}
		kinds = append(kinds, kind)
	}
	return kinds
}

// isYAML says whether a file name is a YAML file detection should look into.
func isYAML(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}
