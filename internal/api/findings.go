package api

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/paved/paved/internal/gate"
	"github.com/paved/paved/internal/run"
)

// findingsView is GET /api/v1/runs/{id}/findings: every gate decision of the run's current
// stage attempts with its findings (already redacted by the gates), and the worst decision.
type findingsView struct {
	RunID    string         `json:"run_id"`
	Decision string         `json:"decision"` // block, warn or pass; "" without gates
	Counts   map[string]int `json:"counts"`   // findings per severity, over every gate
	Gates    []gateView     `json:"gates"`
}

type gateView struct {
	Stage   string `json:"stage"`
	Attempt int    `json:"attempt"`
	Status  string `json:"status"`
	run.Gate
}

var decisionRank = map[string]int{"": 0, gate.Pass: 1, gate.Warn: 2, gate.Block: 3}

// runFindings answers ?stage=NAME (one stage), ?kind=gate/... (one kind) and ?severity=S
// (findings at S or above).
func (s *Server) runFindings(w http.ResponseWriter, r *http.Request) {
	st, err := s.fold(r, chi.URLParam(r, "id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	min := gate.None
	if v := q.Get("severity"); v != "" {
		if min, err = gate.ParseSeverity(v); err != nil {
			s.writeError(w, r, errorf(http.StatusBadRequest, "severity: %v", err))
			return
		}
	}
	v := findingsView{RunID: st.ID, Counts: map[string]int{}, Gates: []gateView{}}
	for _, ss := range st.Stages {
		if stage := q.Get("stage"); stage != "" && stage != ss.Name() {
			continue
		}
		for _, g := range ss.Gates {
			if kind := q.Get("kind"); kind != "" && !strings.EqualFold(kind, g.Kind) {
				continue
			}
			if min != gate.None {
				var keep []run.Finding
				for _, f := range g.Findings {
					if gate.SeverityOf(f.Severity) >= min {
						keep = append(keep, f)
					}
				}
				g.Findings = keep
			}
			for _, f := range g.Findings {
				v.Counts[f.Severity]++
			}
			if g.Findings == nil {
				g.Findings = []run.Finding{}
			}
			if decisionRank[g.Decision] > decisionRank[v.Decision] {
				v.Decision = g.Decision
			}
			v.Gates = append(v.Gates, gateView{Stage: ss.Name(), Attempt: ss.Attempt, Status: ss.Status, Gate: g})
		}
	}
	writeJSON(w, http.StatusOK, v)
}
