package schedule

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
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
	mask   *secretMask
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

// secretMask replaces every form a secret may be printed in with ***: the value, each line
// of a multi-line one, its base64 encodings (standard and URL-safe, padded or not, and the
// part of it that does not depend on where it starts in a longer base64 text) and its URL
// escapings (query and path). Longer forms go first so a form that contains another is
// masked whole.
type secretMask struct {
	r *strings.Replacer
	// needles are the forms, longest first; longest is len(needles[0]).
	needles []string
	longest int
}

// minDerived: base64 fragments shorter than this are not masked on their own; they would
// match ordinary text (a 3-byte secret's encoding is still masked whole).
const minDerived = 8

// masker makes the mask of a run's secrets, or nil when there are none.
func masker(secrets []string) *secretMask {
	var vals []string
	add := func(v string, min int) {
		if len(v) >= min {
			vals = append(vals, v)
		}
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		add(s, 1)
		if strings.Contains(s, "\n") {
			for _, l := range strings.Split(s, "\n") {
				add(strings.TrimSpace(l), 4)
			}
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			add(enc.EncodeToString([]byte(s)), 4)
		}
		// Inside a longer base64 text the secret starts at byte offset 0, 1 or 2 of a
		// 3-byte group; for each, the characters made of the secret's bits alone.
		for k := range 3 {
			for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
				full := enc.EncodeToString(append(make([]byte, k), s...))
				from, to := (8*k+5)/6, 8*(k+len(s))/6
				if to-from >= minDerived {
					vals = append(vals, full[from:to])
				}
			}
		}
		add(url.QueryEscape(s), 1)
		add(url.PathEscape(s), 1)
		// encodeURIComponent, curl --data-urlencode and most shells' urlencode escape every
		// byte but the unreserved ones, space as %20, in upper or lower case hex.
		add(escapeAll(s, "%%%02X"), 1)
		add(escapeAll(s, "%%%02x"), 1)
	}
	if len(vals) == 0 {
		return nil
	}
	slices.SortFunc(vals, func(a, b string) int { return len(b) - len(a) })
	vals = slices.Compact(vals)
	var pairs []string
	for _, v := range vals {
		pairs = append(pairs, v, "***")
	}
	return &secretMask{r: strings.NewReplacer(pairs...), needles: vals, longest: len(vals[0])}
}

// escapeAll percent-encodes every byte of s but RFC 3986's unreserved ones.
func escapeAll(s, format string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, format, c)
		}
	}
	return b.String()
}

// Replace masks text. Most lines hold no secret: finding none with strings.Contains (SIMD)
// is several times cheaper than the Replacer's walk over every byte.
func (m *secretMask) Replace(text string) string {
	for _, v := range m.needles {
		if strings.Contains(text, v) {
			return m.r.Replace(text)
		}
	}
	return text
}

// safeCut is where a piece of at most n bytes of text may end without cutting a secret's
// form in two (the piece before it and the rest are masked apart). The caller keeps at
// least m.longest bytes after n, so a form that starts before n is whole in text.
func (m *secretMask) safeCut(text []byte, n int) int {
	// Moving the cut back may make it cut another form: again until none straddles it.
	for cut := n; ; {
		next := cut
		for _, v := range m.needles {
			lo, hi := max(0, cut-len(v)+1), min(len(text), cut+len(v)-1)
			for i := lo; i < cut; {
				j := bytes.Index(text[i:hi], []byte(v))
				if j < 0 || i+j >= cut {
					break
				}
				if at := i + j; at+len(v) > cut {
					next = min(next, at)
					break
				}
				i += j + 1
			}
		}
		if next == 0 { // a form as long as a whole piece: cut it, masking what can be
			return n
		}
		if next == cut {
			return cut
		}
		cut = next
	}
}

func (w *logWriter) write(p []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.part = append(w.part, p...)
			w.cutLongLocked()
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

// cutLongLocked stores the front of a line that grew past maxLine. With secrets it waits
// until the longest form of one would fit after the cut, and cuts before any form that
// straddles it: a secret printed across the cut is masked like anywhere else.
func (w *logWriter) cutLongLocked() {
	hold := 0
	if w.mask != nil {
		hold = w.mask.longest
	}
	for len(w.part) >= maxLine+hold {
		n := maxLine
		if w.mask != nil {
			n = w.mask.safeCut(w.part, maxLine)
		}
		w.addLocked(string(w.part[:n]))
		w.part = append(w.part[:0], w.part[n:]...)
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
