// Package junit reads JUnit XML test reports, the format nearly every test runner writes
// (Maven Surefire, Gradle, pytest --junitxml, gotestsum, go-junit-report, jest-junit):
// a <testsuites> or <testsuite> root, suites nested to any depth, and <testcase> elements
// whose child <failure>, <error> or <skipped> says how they ended. It keeps what test
// history and flaky detection need (which test, how it ended, how long it took, the first
// line of why) and drops the rest (properties, captured output), so a report of thousands of
// tests stays small.
package junit

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Test statuses.
const (
	Passed  = "passed"
	Failed  = "failed"  // an assertion failed (<failure>)
	Errored = "errored" // the test could not run to an assertion (<error>: setup, exception)
	Skipped = "skipped"
)

// Case is one test case of a report.
type Case struct {
	// Suite is the innermost <testsuite>'s name; Class its classname (the test's module,
	// class or package), Name the test's own name.
	Suite  string `json:"suite,omitempty"`
	Class  string `json:"class,omitempty"`
	Name   string `json:"name"`
	Status string `json:"status"`
	// DurationMS is the case's time attribute (seconds, as runners write it) in milliseconds.
	DurationMS int64 `json:"duration_ms"`
	// Message is the first line of the failure, error or skip message, at most 200 characters.
	Message string `json:"message,omitempty"`
}

// ID names the test across runs: its class (or suite) and name.
func (c Case) ID() string {
	switch {
	case c.Class != "":
		return c.Class + "." + c.Name
	case c.Suite != "":
		return c.Suite + "." + c.Name
	}
	return c.Name
}

// Report is one parsed file.
type Report struct {
	Cases []Case `json:"cases"`
	// Counts by status.
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Errored int `json:"errored"`
	Skipped int `json:"skipped"`
}

// MaxCases bounds one report; a file with more is refused rather than held in memory.
const MaxCases = 200000

// ErrNotJUnit is wrapped when the XML is well formed but is not a JUnit report.
var ErrNotJUnit = errors.New("junit: not a JUnit XML report")

// Parse reads one JUnit XML document. Errors name the line of the XML where they are.
func Parse(r io.Reader) (*Report, error) {
	dec := xml.NewDecoder(r)
	dec.Strict = true
	rep := &Report{}
	var suites []string // names of the open <testsuite> elements
	sawRoot := false
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("junit: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 {
				if t.Name.Local != "testsuites" && t.Name.Local != "testsuite" {
					line, _ := dec.InputPos()
					return nil, fmt.Errorf("%w: line %d: the root element is <%s>, want <testsuites> or <testsuite>", ErrNotJUnit, line, t.Name.Local)
				}
				sawRoot = true
			}
			switch t.Name.Local {
			case "testsuite":
				suites = append(suites, attr(t, "name"))
			case "testcase":
				if len(rep.Cases) >= MaxCases {
					return nil, fmt.Errorf("junit: more than %d test cases in one report: split it", MaxCases)
				}
				c, err := readCase(dec, t)
				if err != nil {
					return nil, err
				}
				if len(suites) > 0 {
					c.Suite = suites[len(suites)-1]
				}
				rep.Cases = append(rep.Cases, c)
				rep.count(c.Status)
				depth-- // readCase consumed its end element
			}
		case xml.EndElement:
			depth--
			if t.Name.Local == "testsuite" && len(suites) > 0 {
				suites = suites[:len(suites)-1]
			}
		}
	}
	if !sawRoot {
		return nil, fmt.Errorf("%w: the document has no root element", ErrNotJUnit)
	}
	return rep, nil
}

func (r *Report) count(status string) {
	switch status {
	case Passed:
		r.Passed++
	case Failed:
		r.Failed++
	case Errored:
		r.Errored++
	case Skipped:
		r.Skipped++
	}
}

// readCase reads a <testcase> up to its end element. The worst outcome among its children
// wins: a case with both <failure> and <error> (some runners write a teardown error after
// a failure) has errored; <skipped> counts only when nothing failed.
func readCase(dec *xml.Decoder, start xml.StartElement) (Case, error) {
	line, _ := dec.InputPos()
	c := Case{Class: attr(start, "classname"), Name: attr(start, "name"), Status: Passed}
	if c.Name == "" {
		return c, fmt.Errorf("%w: line %d: a <testcase> without a name", ErrNotJUnit, line)
	}
	if v := attr(start, "time"); v != "" {
		// Runners write "0.005", "1,234.5" (Surefire in some locales) or nothing.
		sec, err := strconv.ParseFloat(strings.ReplaceAll(v, ",", ""), 64)
		if err != nil || sec < 0 || sec > 1e7 {
			return c, fmt.Errorf("junit: line %d: testcase %q has time=%q, not seconds", line, c.Name, v)
		}
		c.DurationMS = int64(sec*1000 + 0.5)
	}
	rank := map[string]int{Passed: 0, Skipped: 1, Failed: 2, Errored: 3}
	depth := 1
	for depth > 0 {
		tok, err := dec.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return c, fmt.Errorf("junit: testcase %q: %w", c.Name, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth != 2 {
				continue
			}
			var status string
			switch t.Name.Local {
			case "failure":
				status = Failed
			case "error":
				status = Errored
			case "skipped":
				status = Skipped
			default:
				continue
			}
			if rank[status] > rank[c.Status] {
				c.Status = status
				msg := attr(t, "message")
				if msg == "" {
					msg = attr(t, "type")
				}
				c.Message = firstLine(msg)
			}
		case xml.EndElement:
			depth--
		}
	}
	return c, nil
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return strings.TrimSpace(a.Value)
		}
	}
	return ""
}

// firstLine is the first non-blank line of s, cut to 200 characters.
func firstLine(s string) string {
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if utf8.RuneCountInString(l) > 200 {
				l = string([]rune(l)[:200])
			}
			return l
		}
	}
	return ""
}
