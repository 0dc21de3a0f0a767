package api

import (
	"errors"
	"io"
	"net/http"

	"github.com/paved/paved/internal/pipeline"
)

// validateAnswer is what POST /api/v1/pipelines/validate answers: the builder shows errors
// next to the stage they point at, so each carries its position rather than a formatted line.
type validateAnswer struct {
	Valid  bool            `json:"valid"`
	Errors []validateError `json:"errors"`
	Stages int             `json:"stages"`
}

type validateError struct {
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Message string `json:"message"`
}

// pipelineValidate compiles the request body (a .paved.yml, as text) with the options this
// server runs pipelines with, so a file that passes here is one this server accepts. An
// invalid file is still a 200: the request succeeded, its answer is "not valid".
func (s *Server) pipelineValidate(w http.ResponseWriter, r *http.Request) {
	src, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.writeError(w, r, errorf(http.StatusRequestEntityTooLarge, "the pipeline file is over %d bytes; split it or trim it", maxBody))
			return
		}
		s.writeError(w, r, errorf(http.StatusBadRequest, "reading the body: %v", err))
		return
	}
	ans := validateAnswer{Errors: []validateError{}}
	p, err := pipeline.Compile(s.cfg.PipelineFile, src, s.cfg.Compile)
	var list pipeline.ErrorList
	switch {
	case err == nil:
		ans.Valid, ans.Stages = true, len(p.Stages)
	case errors.As(err, &list):
		for _, e := range list {
			ans.Errors = append(ans.Errors, validateError{Line: e.Pos.Line, Col: e.Pos.Col, Message: e.Msg})
		}
	default:
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}
