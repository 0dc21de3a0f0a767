package local

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/execute"
)

// chunkReader returns its data in reads of 1 to max bytes, so sentinels get split across
// reads at every possible offset.
type chunkReader struct {
	data []byte
	rnd  *rand.Rand
	max  int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(1+c.rnd.IntN(c.max), len(c.data), len(p))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// TestSentinelSplitting drives the init's output reader directly: each step's output must
// come out whole and only its own, however the pipe's bytes are cut into reads, including
// output that looks like the start of a sentinel.
func TestSentinelSplitting(t *testing.T) {
	t.Parallel()
	for seed := range uint64(200) {
		rnd := rand.New(rand.NewPCG(seed, 1))
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		s := newStepRunner(initSpec{Shell: "sh"}, &frameWriter{f: w})
		var stream []byte
		var want []string
		for i := range 4 {
			var out []byte
			for range rnd.IntN(5) {
				switch rnd.IntN(3) {
				case 0:
					out = append(out, s.sentinel[:1+rnd.IntN(len(s.sentinel)-1)]...) // near miss
				case 1:
					out = append(out, strings.Repeat("x", rnd.IntN(100))...)
				default:
					out = append(out, byte(rnd.IntN(256)))
				}
			}
			// A near miss S[:31] followed by a random byte equal to S[31] is the sentinel
			// itself (about one test run in twenty): output that contains the sentinel is
			// not what this test is about (a step cannot guess 32 random bytes).
			for bytes.Contains(out, s.sentinel) {
				out = bytes.ReplaceAll(out, s.sentinel, s.sentinel[:len(s.sentinel)-1])
			}
			want = append(want, string(out))
			stream = append(stream, out...)
			stream = append(stream, s.sentinel...)
			_ = i
		}
		frames := make(chan [][]byte)
		go func() {
			var got [][]byte
			fr := newFrameReader(r)
			cur := -1
			for {
				ft, step, p, err := fr.next()
				if err != nil {
					frames <- got
					return
				}
				switch ft {
				case frameStarted:
					cur = step
					got = append(got, []byte{})
				case frameOutput:
					if step != cur {
						t.Errorf("seed %d: output for %d during %d", seed, step, cur)
					}
					got[cur] = append(got[cur], p...)
				}
			}
		}()
		done := make(chan error, 1)
		go func() { done <- s.read(&chunkReader{data: stream, rnd: rnd, max: 1 + rnd.IntN(40)}) }()
		for i := range want {
			s.start(i)
			select {
			case <-s.seen:
			case err := <-done:
				t.Fatalf("seed %d: reader ended at step %d: %v", seed, i, err)
			}
			if err := s.finish(i, 0, time.Millisecond); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		got := <-frames
		r.Close()
		for i := range want {
			if string(got[i]) != want[i] {
				t.Fatalf("seed %d: step %d output %q, want %q", seed, i, got[i], want[i])
			}
		}
	}
}

func TestPartialSuffix(t *testing.T) {
	t.Parallel()
	s := []byte("abcd")
	for _, c := range []struct {
		data string
		want int
	}{{"", 0}, {"x", 0}, {"a", 1}, {"xab", 2}, {"xabc", 3}, {"abcd", 0}, {"dab", 2}, {"aba", 1}} {
		if got := partialSuffix([]byte(c.data), s); got != c.want {
			t.Errorf("partialSuffix(%q) = %d, want %d", c.data, got, c.want)
		}
	}
}

type nopObserver struct{}

func (nopObserver) StepStarted(int)                      {}
func (nopObserver) Output(int, []byte)                   {}
func (nopObserver) StepFinished(int, int, time.Duration) {}
func (nopObserver) Cache(execute.CacheReport)            {}

// TestReadFramesOrder: the host refuses frames that break the Observer contract.
func TestReadFramesOrder(t *testing.T) {
	t.Parallel()
	fin := finishedPayload(0, time.Second)
	fail := finishedPayload(3, time.Second)
	type f struct {
		t    frameType
		step int
		p    []byte
	}
	cases := []struct {
		name    string
		frames  []f
		steps   int
		wantErr string
		done    bool
		failed  bool
	}{
		{"ok", []f{{frameStarted, 0, nil}, {frameOutput, 0, []byte("x")}, {frameFinished, 0, fin}, {frameDone, 0, nil}}, 1, "", true, false},
		{"stop at failure", []f{{frameStarted, 0, nil}, {frameFinished, 0, fail}, {frameDone, 0, nil}}, 2, "", true, true},
		{"skipped step", []f{{frameStarted, 1, nil}}, 2, "out of order", false, false},
		{"output before start", []f{{frameOutput, 0, []byte("x")}}, 1, "while step", false, false},
		{"done early", []f{{frameStarted, 0, nil}, {frameFinished, 0, fin}, {frameDone, 0, nil}}, 2, "done after 1 of 2", false, false},
		{"step after failure", []f{{frameStarted, 0, nil}, {frameFinished, 0, fail}, {frameStarted, 1, nil}}, 2, "out of order", false, true},
		{"unknown", []f{{'?', 0, nil}}, 1, "unknown frame", false, false},
		{"usage", []f{{frameStarted, 0, nil}, {frameFinished, 0, fin}, {frameDone, 0, usagePayload(1500*time.Millisecond, 2048)}}, 1, "", true, false},
		{"bad usage", []f{{frameStarted, 0, nil}, {frameFinished, 0, fin}, {frameDone, 0, []byte("xyz")}}, 1, "done frame of 3 bytes", false, false},
	}
	for _, c := range cases {
		var buf []byte
		for _, fr := range c.frames {
			buf = appendFrame(buf, fr.t, fr.step, fr.p)
		}
		res, done, _, err := readFrames(bytes.NewReader(buf), c.steps, nopObserver{})
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.wantErr)
		}
		if done != c.done || res.Failed != c.failed {
			t.Errorf("%s: done %v failed %v, want %v %v", c.name, done, res.Failed, c.done, c.failed)
		}
		if c.name == "usage" && (res.CPU != 1500*time.Millisecond || res.MaxRSSKiB != 2048) {
			t.Errorf("usage: %+v", res)
		}
	}
	// A stream cut inside a frame is an error, not a clean end.
	buf := appendFrame(nil, frameOutput, 0, []byte("hello"))
	if _, _, _, err := readFrames(bytes.NewReader(buf[:len(buf)-1]), 1, nopObserver{}); err == nil {
		t.Error("truncated frame accepted")
	}
}

func TestSanitize(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	for _, name := range []string{"build", "test[go1.22,linux]", "test[go1_22_linux]", "a.b", "a_b", "..", "", strings.Repeat("x", 300)} {
		s := sanitize(name)
		if s == "" || strings.ContainsAny(s, "/.[],") || len(s) > 80 {
			t.Errorf("sanitize(%q) = %q", name, s)
		}
		if other, ok := seen[s]; ok {
			t.Errorf("sanitize(%q) = sanitize(%q) = %q", name, other, s)
		}
		seen[s] = name
	}
	if sanitize("build") != "build" {
		t.Error("a clean name must be kept as it is")
	}
}
