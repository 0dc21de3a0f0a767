package gate

import (
	"errors"
	"fmt"
	"strings"
)

// Severity orders findings: a policy blocks or warns at a severity and above.
type Severity int

// Severities, weakest first. None is below every finding: a rule at None never fires.
const (
	None Severity = iota
	Info
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"NONE", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

func (s Severity) String() string {
	if s < None || s > Critical {
		return fmt.Sprintf("Severity(%d)", int(s))
	}
	return severityNames[s]
}

// ErrSeverity is wrapped by ParseSeverity's error.
var ErrSeverity = errors.New("gate: unknown severity")

// ParseSeverity reads a severity name in any case; "none" and "never" mean None.
func ParseSeverity(s string) (Severity, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	switch u {
	case "NEVER", "OFF":
		return None, nil
	case "MODERATE": // GitHub advisories' name for MEDIUM
		return Medium, nil
	case "WARNING":
		return Medium, nil
	case "ERROR":
		return High, nil
	case "NOTE":
		return Low, nil
	}
	for i, n := range severityNames {
		if u == n {
			return Severity(i), nil
		}
	}
	return None, fmt.Errorf("%w %q: use one of critical, high, medium, low, info or none", ErrSeverity, s)
}

// SeverityOf is ParseSeverity for a finding's recorded severity; anything unknown counts
// as Info rather than failing a decision.
func SeverityOf(s string) Severity {
	v, err := ParseSeverity(s)
	if err != nil || v == None {
		return Info
	}
	return v
}

// FromScore maps a CVSS base score (0-10) the way CVSS v3 and v4 name their ranges.
func FromScore(score float64) Severity {
	switch {
	case score >= 9:
		return Critical
	case score >= 7:
		return High
	case score >= 4:
		return Medium
	case score > 0:
		return Low
	}
	return Info
}
