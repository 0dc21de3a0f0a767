package schedule

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/paved/paved/internal/run"
)

// maxLine cuts a line that never ends (a progress bar, a binary dump) into stored pieces.
const maxLine = 64 << 10

// logWriter turns a stage's output into numbered, masked lines, stores them in batches and
// then hands them to OnLog. Lines are published only once stored, so a reader that loads the
// stored lines and then follows OnLog sees every line exactly once.
type logWriter struct {
	s      *Scheduler
	ctx    context.Context
	a      *active
	runID  string
	stage  string
	mask   *strings.Replacer
	mu     sync.Mutex
	seq    int64
	part   []byte
	batch  []run.LogLine
	timer  *time.Timer
	closed bool
}

// newLogWriter continues the stage's log after its last line. The caller holds a.mu.
func (s *Scheduler) newLogWriter(ctx context.Context, a *active, stage string) *logWriter {
	seq, ok := a.logSeq[stage]
	if !ok && !a.created {
		seq = s.lastLogSeq(ctx, a.state.ID, stage)
	}
	return &logWriter{s: s, ctx: ctx, a: a, runID: a.state.ID, stage: stage, seq: seq, mask: masker(a.secrets)}
}

// masker replaces each secret value, and each line of a multi-line one, with ***. Longer
// values go first so a secret that contains another is masked whole.
func masker(secrets []string) *strings.Replacer {
	var vals []string
	for _, s := range secrets {
		vals = append(vals, s)
		if strings.Contains(s, "\n") {
			for _, l := range strings.Split(s, "\n") {
				if l = strings.TrimSpace(l); len(l) >= 4 {
					vals = append(vals, l)
				}
			}
		}
	}
	if len(vals) == 0 {
		return nil
	}
	slices.SortFunc(vals, func(a, b string) int { return len(b) - len(a) })
	var pairs []string
	for _, v := range slices.Compact(vals) {
		pairs = append(pairs, v, "***")
	}
	return strings.NewReplacer(pairs...)
}

func (w *logWriter) write(p []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.part = append(w.part, p...)
			for len(w.part) >= maxLine {
				w.addLocked(string(w.part[:maxLine]))
				w.part = w.part[maxLine:]
			}
			return
		}
		if len(w.part) > 0 {
			w.part = append(w.part, p[:i]...)
			w.addLocked(string(w.part))
			w.part = w.part[:0]
		} else {
			w.addLocked(string(p[:i]))
		}
		p = p[i+1:]
	}
}

// line adds one whole line of paved's own (a step header, an error).
func (w *logWriter) line(text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.addLocked(text)
}

// flushPartial ends a line the output left open (a step's last line without a newline).
func (w *logWriter) flushPartial() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.part) > 0 {
		w.addLocked(string(w.part))
		w.part = w.part[:0]
	}
}

func (w *logWriter) addLocked(text string) {
	text = strings.TrimSuffix(text, "\r")
	if w.mask != nil {
		text = w.mask.Replace(text)
	}
	w.seq++
	w.batch = append(w.batch, run.LogLine{RunID: w.runID, Stage: w.stage, Seq: w.seq, Time: w.s.cfg.Now().UTC(), Text: text})
	switch {
	case len(w.batch) >= 512:
		w.flushLocked()
	case w.timer == nil && !w.closed:
		w.timer = time.AfterFunc(w.s.cfg.LogFlush, w.flush)
	}
}

func (w *logWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
}

func (w *logWriter) flushLocked() {
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if len(w.batch) == 0 {
		return
	}
	lines := w.batch
	w.batch = nil
	// Logs are written even while the scheduler stops: they happened.
	if err := w.s.store.LogAppend(context.WithoutCancel(w.ctx), lines); err != nil {
		w.s.log.Error("cannot store log lines", "run", w.runID, "stage", w.stage, "lines", len(lines), "err", err)
		return
	}
	if w.s.cfg.OnLog != nil {
		w.s.cfg.OnLog(lines)
	}
}

// close stores what is left and remembers where the stage's log ends.
func (w *logWriter) close() {
	w.flushPartial()
	w.mu.Lock()
	w.closed = true
	w.flushLocked()
	seq := w.seq
	w.mu.Unlock()
	w.a.mu.Lock()
	w.a.logSeq[w.stage] = seq
	w.a.mu.Unlock()
}
