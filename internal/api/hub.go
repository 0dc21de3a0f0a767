package api

import (
	"sync"

	"github.com/paved/paved/internal/run"
)

// Hub fans out a run's new events and log lines to live readers (SSE). It keeps nothing: a
// reader first subscribes, then loads what is stored, then follows, skipping what it already
// sent by seq. A reader too slow to keep up is dropped (its channel closed); it reconnects
// with Last-Event-ID and resumes from the store.
type Hub struct {
	mu   sync.Mutex
	subs map[string]map[*subscription]struct{} // by run id
}

type subscription struct {
	ch chan any // run.Event or []run.LogLine
}

const subBuffer = 1024

// NewHub makes an empty hub.
func NewHub() *Hub { return &Hub{subs: map[string]map[*subscription]struct{}{}} }

// PublishEvent hands an appended event to the run's readers (wire it to schedule's OnEvent).
func (h *Hub) PublishEvent(e run.Event) { h.publish(e.RunID, e) }

// PublishLogs hands stored lines of one stage to the run's readers (schedule's OnLog).
func (h *Hub) PublishLogs(lines []run.LogLine) {
	if len(lines) > 0 {
		h.publish(lines[0].RunID, lines)
	}
}

func (h *Hub) publish(runID string, v any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[runID] {
		select {
		case s.ch <- v:
		default:
			delete(h.subs[runID], s)
			close(s.ch)
		}
	}
}

func (h *Hub) subscribe(runID string) *subscription {
	s := &subscription{ch: make(chan any, subBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[runID] == nil {
		h.subs[runID] = map[*subscription]struct{}{}
	}
	h.subs[runID][s] = struct{}{}
	return s
}

func (h *Hub) unsubscribe(runID string, s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[runID][s]; ok {
		delete(h.subs[runID], s)
		close(s.ch)
	}
	if len(h.subs[runID]) == 0 {
		delete(h.subs, runID)
	}
}
