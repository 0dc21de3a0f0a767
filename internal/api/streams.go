package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/paved/paved/internal/access"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// heartbeat keeps idle SSE connections open through proxies.
const heartbeat = 15 * time.Second

func wantsSSE(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// resumeFrom is the seq after which to send: Last-Event-ID on an SSE reconnect, else ?after=.
func resumeFrom(r *http.Request) int64 {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("after")
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return max(n, 0)
}

// sse writes server-sent events.
type sse struct {
	w http.ResponseWriter
	f http.Flusher
}

func startSSE(w http.ResponseWriter) (*sse, error) {
	f, ok := w.(http.Flusher)
	if !ok {
		return nil, errorf(http.StatusInternalServerError, "streaming is not supported by this connection")
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	f.Flush()
	return &sse{w, f}, nil
}

func (s *sse) send(id int64, event string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if event != "" {
		_, err = fmt.Fprintf(s.w, "id: %d\nevent: %s\ndata: %s\n\n", id, event, data)
	} else {
		_, err = fmt.Fprintf(s.w, "id: %d\ndata: %s\n\n", id, data)
	}
	return err
}

func (s *sse) comment(text string) error {
	_, err := fmt.Fprintf(s.w, ": %s\n\n", text)
	return err
}

func (s *sse) flush() { s.f.Flush() }

// hold is the context of a stream: it ends with the request, and when the caller's token or
// session stops being valid (revoked, logged out, expired, user removed), which
// access.Service.Hold rechecks on a ticker; the guard checked them only at the start.
func (s *Server) hold(r *http.Request) (context.Context, context.CancelFunc) {
	return s.cfg.Access.Hold(r.Context(), principal(r))
}

// endHeld tells the client why its stream ends, when its credentials ended it: an
// "unauthorized" event, after which a reconnect gets 401.
func endHeld(out *sse, ctx context.Context, last int64) {
	if cause := context.Cause(ctx); errors.Is(cause, access.ErrUnauthenticated) {
		_ = out.send(last, "unauthorized", map[string]string{"error": strings.TrimPrefix(cause.Error(), access.ErrUnauthenticated.Error()+": ")})
		out.flush()
	}
}

// runEvents lists a run's events as JSON, or streams them live as SSE until the run finishes.
func (s *Server) runEvents(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	after := resumeFrom(r)
	if !wantsSSE(r) {
		events, err := s.cfg.Store.EventList(r.Context(), store.EventListParams{RunID: id, AfterSeq: after})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if len(events) == 0 && after == 0 {
			s.writeError(w, r, fmt.Errorf("run %s: %w", id, store.ErrNotFound))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"events": events})
		return
	}
	sub := s.cfg.Hub.subscribe(id)
	defer s.cfg.Hub.unsubscribe(id, sub)
	backlog, err := s.cfg.Store.EventList(r.Context(), store.EventListParams{RunID: id, AfterSeq: after})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(backlog) == 0 && after == 0 {
		s.writeError(w, r, fmt.Errorf("run %s: %w", id, store.ErrNotFound))
		return
	}
	out, err := startSSE(w)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, stop := s.hold(r)
	defer stop()
	last := after
	send := func(e run.Event) (done bool) {
		if e.Seq <= last {
			return false
		}
		last = e.Seq
		_ = out.send(e.Seq, "", e)
		return e.Type == run.RunFinished
	}
	for _, e := range backlog {
		if send(e) {
			out.flush()
			return
		}
	}
	out.flush()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			endHeld(out, ctx, last)
			return
		case <-tick.C:
			_ = out.comment("ping")
		case v, ok := <-sub.ch:
			if !ok {
				return // too slow: the client resumes with Last-Event-ID
			}
			if e, isEvent := v.(run.Event); isEvent && send(e) {
				out.flush()
				return
			}
		}
		out.flush()
	}
}

// runLogs returns a stage's log as plain text (all stages, prefixed, without ?stage=), or
// with Accept: text/event-stream streams one stage's lines live until the stage is over.
func (s *Server) runLogs(w http.ResponseWriter, r *http.Request) {
	id, stage := chi.URLParam(r, "id"), r.URL.Query().Get("stage")
	after := resumeFrom(r)
	if wantsSSE(r) {
		s.streamLogs(w, r, id, stage, after)
		return
	}
	state, err := s.fold(r, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	stages := []string{stage}
	if stage == "" {
		stages = nil
		for _, st := range state.Stages {
			stages = append(stages, st.Name())
		}
	} else if state.Stage(stage) == nil {
		s.writeError(w, r, errorf(http.StatusNotFound, "run %s has no stage %q", id, stage))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, name := range stages {
		lines, err := s.cfg.Store.LogList(r.Context(), store.LogListParams{RunID: id, Stage: name, AfterSeq: after})
		if err != nil {
			s.log.Error("log list failed", "run", id, "stage", name, "err", err)
			return
		}
		for _, l := range lines {
			if stage == "" {
				fmt.Fprintf(w, "[%s] %s\n", name, l.Text)
			} else {
				fmt.Fprintln(w, l.Text)
			}
		}
	}
}

func (s *Server) streamLogs(w http.ResponseWriter, r *http.Request, id, stage string, after int64) {
	if stage == "" {
		s.writeError(w, r, errorf(http.StatusBadRequest, "streaming logs needs ?stage=NAME"))
		return
	}
	sub := s.cfg.Hub.subscribe(id)
	defer s.cfg.Hub.unsubscribe(id, sub)
	// Fold before loading lines: a stage the fold shows finished has all its lines stored.
	state, err := s.fold(r, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st := state.Stage(stage)
	if st == nil {
		s.writeError(w, r, errorf(http.StatusNotFound, "run %s has no stage %q", id, stage))
		return
	}
	lines, err := s.cfg.Store.LogList(r.Context(), store.LogListParams{RunID: id, Stage: stage, AfterSeq: after})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := startSSE(w)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, stop := s.hold(r)
	defer stop()
	last := after
	sendLines := func(lines []run.LogLine) {
		for _, l := range lines {
			if l.Stage == stage && l.Seq > last {
				last = l.Seq
				_ = out.send(l.Seq, "", l)
			}
		}
	}
	over := func() bool { return st.Terminal() || state.Done() }
	sendLines(lines)
	if over() {
		_ = out.send(last, "end", map[string]string{"status": st.Status})
		out.flush()
		return
	}
	out.flush()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			endHeld(out, ctx, last)
			return
		case <-tick.C:
			_ = out.comment("ping")
		case v, ok := <-sub.ch:
			if !ok {
				return
			}
			switch v := v.(type) {
			case []run.LogLine:
				sendLines(v)
			case run.Event:
				if v.Seq <= state.Seq {
					break
				}
				if v.Seq != state.Seq+1 || state.Apply(v) != nil {
					if state, err = s.fold(r, id); err != nil {
						return
					}
					st = state.Stage(stage)
				}
				if over() {
					_ = out.send(last, "end", map[string]string{"status": st.Status})
					out.flush()
					return
				}
			}
		}
		out.flush()
	}
}
