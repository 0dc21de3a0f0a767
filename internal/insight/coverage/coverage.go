// Package coverage reads code coverage reports a stage declares (reports: {coverage: glob})
// into one number: the share of statements (Go) or lines (Cobertura, LCOV) the tests ran.
// Three formats are understood and told apart by their content, not their name: Go's
// coverprofile (go test -coverprofile), Cobertura XML (coverage.py, JaCoCo converters,
// gcovr, Istanbul's cobertura reporter) and LCOV tracefiles (Istanbul, gcov/lcov, c8,
// cargo-llvm-cov). It sits beside the JUnit parser because the scheduler reads both from a
// stage's report files; the promotion policy only reads the result from the run's events.
package coverage

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Formats.
const (
	GoCover   = "go"
	Cobertura = "cobertura"
	LCOV      = "lcov"
)

// ErrFormat is wrapped when a report is none of the known formats or does not parse.
var ErrFormat = errors.New("coverage: not a coverage report")

// Report is what one coverage file says.
type Report struct {
	Format  string `json:"format"`
	Covered int64  `json:"covered"` // statements (go) or lines (cobertura, lcov) run at least once
	Total   int64  `json:"total"`
}

// Percent is Covered/Total in percent, rounded down to one decimal so that 79.99% never
// shows as 80.0% and then fails an 80% minimum; 0 when Total is 0.
func (r Report) Percent() float64 {
	if r.Total <= 0 {
		return 0
	}
	return math.Floor(float64(r.Covered)*1000/float64(r.Total)) / 10
}

// Parse reads a coverage report in any known format. name is used in errors only.
func Parse(name string, data []byte) (Report, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	switch {
	case bytes.HasPrefix(trimmed, []byte("mode:")):
		return parseGo(name, trimmed)
	case bytes.HasPrefix(trimmed, []byte("<")):
		return parseCobertura(name, trimmed)
	case lcovStart(trimmed):
		return parseLCOV(name, trimmed)
	}
	return Report{}, fmt.Errorf("%w: %s starts with neither \"mode:\" (go test -coverprofile), \"<\" (Cobertura XML) nor TN:/SF: (LCOV)", ErrFormat, name)
}

func lcovStart(b []byte) bool {
	return bytes.HasPrefix(b, []byte("TN:")) || bytes.HasPrefix(b, []byte("SF:"))
}

// parseGo reads a coverprofile. A block can be listed more than once (go test -coverpkg over
// several packages writes one profile per test binary, concatenated); it counts once, as
// covered if any listing ran it.
func parseGo(name string, data []byte) (Report, error) {
	type block struct {
		stmts   int64
		covered bool
	}
	blocks := map[string]*block{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "mode:") {
			continue
		}
		// file.go:12.34,15.2 3 1 — the file name may hold spaces and colons, the last two
		// fields never do.
		f := strings.Fields(t)
		if len(f) < 3 {
			return Report{}, fmt.Errorf("%w: %s:%d: want FILE:L.C,L.C STATEMENTS COUNT, got %q", ErrFormat, name, line, t)
		}
		stmts, err1 := strconv.ParseInt(f[len(f)-2], 10, 64)
		count, err2 := strconv.ParseInt(f[len(f)-1], 10, 64)
		pos := strings.Join(f[:len(f)-2], " ")
		if err1 != nil || err2 != nil || stmts < 0 || count < 0 || !strings.Contains(pos, ":") {
			return Report{}, fmt.Errorf("%w: %s:%d: want FILE:L.C,L.C STATEMENTS COUNT, got %q", ErrFormat, name, line, t)
		}
		b := blocks[pos]
		if b == nil {
			b = &block{stmts: stmts}
			blocks[pos] = b
		}
		b.covered = b.covered || count > 0
	}
	if err := sc.Err(); err != nil {
		return Report{}, fmt.Errorf("%w: %s: %v", ErrFormat, name, err)
	}
	r := Report{Format: GoCover}
	for _, b := range blocks {
		r.Total += b.stmts
		if b.covered {
			r.Covered += b.stmts
		}
	}
	return r, nil
}

// parseCobertura reads the root's lines-covered and lines-valid, or when a writer left
// them out (older coverage.py, some converters) counts the <line> elements of the classes.
func parseCobertura(name string, data []byte) (Report, error) {
	var doc struct {
		XMLName xml.Name `xml:"coverage"`
		Covered *int64   `xml:"lines-covered,attr"`
		Valid   *int64   `xml:"lines-valid,attr"`
		Classes []struct {
			Filename string `xml:"filename,attr"`
			Lines    []struct {
				Number int64 `xml:"number,attr"`
				Hits   int64 `xml:"hits,attr"`
			} `xml:"lines>line"`
		} `xml:"packages>package>classes>class"`
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = false // some writers leave entities undeclared; the numbers are in attributes
	if err := dec.Decode(&doc); err != nil {
		return Report{}, fmt.Errorf("%w: %s: not Cobertura XML (a <coverage> root): %v", ErrFormat, name, err)
	}
	r := Report{Format: Cobertura}
	if doc.Covered != nil && doc.Valid != nil && *doc.Valid > 0 {
		r.Covered, r.Total = *doc.Covered, *doc.Valid
	} else {
		seen := map[string]bool{} // a file split over several classes lists a line once per class
		for _, c := range doc.Classes {
			for _, l := range c.Lines {
				k := c.Filename + ":" + strconv.FormatInt(l.Number, 10)
				if seen[k] {
					continue
				}
				seen[k] = true
				r.Total++
				if l.Hits > 0 {
					r.Covered++
				}
			}
		}
	}
	if r.Covered < 0 || r.Total < 0 || r.Covered > r.Total {
		return Report{}, fmt.Errorf("%w: %s: %d of %d lines covered cannot be", ErrFormat, name, r.Covered, r.Total)
	}
	return r, nil
}

// parseLCOV sums LF/LH (lines found/hit) per source file; a record without them is counted
// from its DA lines, as genhtml does.
func parseLCOV(name string, data []byte) (Report, error) {
	r := Report{Format: LCOV}
	var lf, lh, da, dahit int64
	haveLF := false
	inRecord := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	num := func(v string) (int64, error) {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%w: %s:%d: %q is not a count", ErrFormat, name, line, v)
		}
		return n, nil
	}
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		key, val, _ := strings.Cut(t, ":")
		var err error
		switch key {
		case "SF":
			inRecord, lf, lh, da, dahit, haveLF = true, 0, 0, 0, 0, false
		case "LF":
			lf, err = num(val)
			haveLF = true
		case "LH":
			lh, err = num(val)
		case "DA":
			parts := strings.Split(val, ",")
			if len(parts) < 2 {
				return Report{}, fmt.Errorf("%w: %s:%d: want DA:LINE,HITS, got %q", ErrFormat, name, line, t)
			}
			var hits int64
			if hits, err = num(parts[1]); err == nil {
				da++
				if hits > 0 {
					dahit++
				}
			}
		case "end_of_record":
			if !inRecord {
				return Report{}, fmt.Errorf("%w: %s:%d: end_of_record without SF:", ErrFormat, name, line)
			}
			if !haveLF {
				lf, lh = da, dahit
			}
			if lh > lf {
				return Report{}, fmt.Errorf("%w: %s:%d: %d lines hit of %d found cannot be", ErrFormat, name, line, lh, lf)
			}
			r.Total += lf
			r.Covered += lh
			inRecord = false
		}
		if err != nil {
			return Report{}, err
		}
	}
	if err := sc.Err(); err != nil {
		return Report{}, fmt.Errorf("%w: %s: %v", ErrFormat, name, err)
	}
	if inRecord {
		return Report{}, fmt.Errorf("%w: %s: the last record has no end_of_record (a truncated file?)", ErrFormat, name)
	}
	return r, nil
}

// Merge adds reports of one stage (several files) into one; formats differ only when a
// stage mixes them, which is then said as "mixed".
func Merge(rs []Report) Report {
	var out Report
	for i, r := range rs {
		if i == 0 {
			out.Format = r.Format
		} else if out.Format != r.Format {
			out.Format = "mixed"
		}
		out.Covered += r.Covered
		out.Total += r.Total
	}
	return out
}
