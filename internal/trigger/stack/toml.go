package stack

import (
	"bufio"
	"bytes"
	"strings"
)

// tomlDoc is the little of a TOML file detection needs: for each table, its keys with
// string values, and the names of the tables and arrays of tables present. It is a loose
// reader, not a TOML parser: a line it does not understand is skipped, so a file it
// misreads makes a plainer pipeline, never an error.
type tomlDoc struct {
	tables  map[string]bool              // "package", "tool.poetry", "[bin]" for [[bin]]
	strings map[string]map[string]string // table → key → string value
	keys    map[string][]string          // table → keys in order, whatever their values
}

func parseTOML(src []byte) *tomlDoc {
	d := &tomlDoc{tables: map[string]bool{}, strings: map[string]map[string]string{}, keys: map[string][]string{}}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 64*1024), maxRead)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "[["):
			end := strings.Index(line, "]]")
			if end < 0 {
				continue
			}
			table = "[" + strings.TrimSpace(line[2:end]) + "]"
			d.tables[table] = true
			continue
		case strings.HasPrefix(line, "["):
			end := strings.Index(line, "]")
			if end < 0 {
				continue
			}
			table = strings.TrimSpace(line[1:end])
			d.tables[table] = true
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue // a continuation line of a multi-line value
		}
		k = strings.Trim(strings.TrimSpace(k), `"'`)
		if k == "" || strings.ContainsAny(k, " \t[]{},") {
			continue
		}
		d.keys[table] = append(d.keys[table], k)
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') {
			if end := strings.IndexByte(v[1:], v[0]); end >= 0 {
				if d.strings[table] == nil {
					d.strings[table] = map[string]string{}
				}
				d.strings[table][k] = v[1 : 1+end]
			}
		}
	}
	return d
}

func (d *tomlDoc) str(table, key string) string { return d.strings[table][key] }
