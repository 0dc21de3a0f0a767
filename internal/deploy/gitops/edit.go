package gitops

import (
	"bytes"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// set returns src with the digest written where the target's config says.
func (t *Target) set(src []byte, digest string) ([]byte, error) {
	return Set(t.cfg, src, digest)
}

// get reads the digest where the target's config says ("" when the key is missing).
func (t *Target) get(src []byte) (string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrEdit, t.cfg.File, err)
	}
	n, err := locate(t.cfg, &doc, false)
	if err != nil || n == nil {
		return "", err
	}
	return n.Value, nil
}

// Set writes digest into a kustomization or values file (see the package comment). It is
// exported for the fuzz target and the golden tests.
func Set(cfg Config, src []byte, digest string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrEdit, cfg.File, err)
	}
	if n, err := locate(cfg, &doc, false); err != nil {
		return nil, err
	} else if n != nil {
		if n.Value == digest {
			return src, nil
		}
		if out, ok := replaceScalar(src, n, digest); ok {
			return out, nil
		}
	}
	// The key is missing (or its value spans lines): edit the tree and write it again.
	n, err := locate(cfg, &doc, true)
	if err != nil {
		return nil, err
	}
	n.Kind, n.Tag, n.Value, n.Style = yaml.ScalarNode, "!!str", digest, 0
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrEdit, cfg.File, err)
	}
	return buf.Bytes(), nil
}

// replaceScalar swaps a one-line scalar's bytes in place, keeping its quoting; ok is false
// when the bytes at the node's position are not what the parser read (block scalars,
// escapes), and the caller falls back to re-encoding.
func replaceScalar(src []byte, n *yaml.Node, digest string) ([]byte, bool) {
	lines := bytes.SplitAfter(src, []byte("\n"))
	if n.Line < 1 || n.Line > len(lines) {
		return nil, false
	}
	line := lines[n.Line-1]
	col := n.Column - 1
	var token, repl string
	switch n.Style {
	case 0:
		if n.Value == "" { // an empty value ("key:"): nothing to swap, and "key:sha256" would not parse
			return nil, false
		}
		token, repl = n.Value, digest
	case yaml.DoubleQuotedStyle:
		token, repl = `"`+n.Value+`"`, `"`+digest+`"`
	case yaml.SingleQuotedStyle:
		token, repl = `'`+n.Value+`'`, `'`+digest+`'`
	default:
		return nil, false
	}
	if col < 0 || col+len(token) > len(line) || string(line[col:col+len(token)]) != token || strings.ContainsAny(digest, "\n\"'#") {
		return nil, false
	}
	var out bytes.Buffer
	for i, l := range lines {
		if i == n.Line-1 {
			out.Write(l[:col])
			out.WriteString(repl)
			out.Write(l[col+len(token):])
			continue
		}
		out.Write(l)
	}
	return out.Bytes(), true
}

// locate finds the scalar node that holds the digest; with create, it makes the keys on
// the way (and the images: entry) when they are missing. Without create a missing key is
// (nil, nil).
func locate(cfg Config, doc *yaml.Node, create bool) (*yaml.Node, error) {
	if doc.Kind == 0 || len(doc.Content) == 0 {
		if !create {
			return nil, nil
		}
		doc.Kind = yaml.DocumentNode
		doc.Content = []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: %s: line %d: the document is not a map", ErrEdit, cfg.File, root.Line)
	}
	switch cfg.Kind {
	case Kustomize:
		images := child(root, "images", yaml.SequenceNode, create)
		if images == nil || (!create && images.Tag == "!!null") {
			return nil, nil
		}
		if images.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("%w: %s: line %d: images: is not a list", ErrEdit, cfg.File, images.Line)
		}
		for _, it := range images.Content {
			if it.Kind == yaml.MappingNode {
				if name := child(it, "name", yaml.ScalarNode, false); name != nil && name.Value == cfg.Image {
					return child(it, "digest", yaml.ScalarNode, create), nil
				}
			}
		}
		if !create {
			return nil, nil
		}
		entry := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		images.Content = append(images.Content, entry)
		child(entry, "name", yaml.ScalarNode, true).Value = cfg.Image
		return child(entry, "digest", yaml.ScalarNode, true), nil
	default:
		keys := strings.Split(cfg.Path, ".")
		m := root
		for i, k := range keys {
			kind := yaml.MappingNode
			if i == len(keys)-1 {
				kind = yaml.ScalarNode
			}
			n := child(m, k, kind, create)
			if n == nil || (!create && n.Tag == "!!null" && i < len(keys)-1) {
				return nil, nil // missing, or an empty key on the way
			}
			if i == len(keys)-1 {
				if n.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("%w: %s: line %d: %s is not a single value", ErrEdit, cfg.File, n.Line, cfg.Path)
				}
				return n, nil
			}
			if n.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("%w: %s: line %d: %s is not a map", ErrEdit, cfg.File, n.Line, strings.Join(keys[:i+1], "."))
			}
			m = n
		}
	}
	return nil, nil
}

// child is the value of key in mapping m; with create, a new empty node of kind is added
// when the key is missing (or its value is null).
func child(m *yaml.Node, key string, kind yaml.Kind, create bool) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v := m.Content[i+1]
			if create && v.Kind == yaml.ScalarNode && v.Tag == "!!null" && kind != yaml.ScalarNode {
				v.Kind, v.Tag, v.Value = kind, map[yaml.Kind]string{yaml.MappingNode: "!!map", yaml.SequenceNode: "!!seq"}[kind], ""
			}
			return v
		}
	}
	if !create {
		return nil
	}
	v := &yaml.Node{Kind: kind}
	switch kind {
	case yaml.MappingNode:
		v.Tag = "!!map"
	case yaml.SequenceNode:
		v.Tag = "!!seq"
	default:
		v.Tag = "!!str"
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
	return v
}
