package local

import (
	"math"
	"sort"
	"sync"
	"time"
)

// bucketBounds are the upper bounds of the latency histogram, in seconds: 100 µs to about a
// minute, each 1.25 times the last, so that a quantile read from it is within 25% and a 10%
// regression of P99 shows up across a few buckets.
var bucketBounds = func() []float64 {
	var b []float64
	for v := 0.0001; v < 60; v *= 1.25 {
		b = append(b, v)
	}
	return b
}()

// Counts is a window of requests: the difference of two snapshots of one track.
type Counts struct {
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"` // responses with status >= 500, and requests the proxy could not forward
	// Buckets holds the latency histogram, one count per bucketBounds entry plus +Inf.
	Buckets []int64 `json:"-"`
	SumSec  float64 `json:"-"`
}

// ErrorRate is Errors/Requests, 0 without requests.
func (c Counts) ErrorRate() float64 {
	if c.Requests == 0 {
		return 0
	}
	return float64(c.Errors) / float64(c.Requests)
}

// Quantile estimates the q-quantile of latency (0 < q < 1) by linear interpolation inside
// its bucket, as Prometheus' histogram_quantile does; 0 without requests.
func (c Counts) Quantile(q float64) time.Duration {
	var total int64
	for _, n := range c.Buckets {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var cum int64
	for i, n := range c.Buckets {
		if float64(cum+n) >= rank && n > 0 {
			lo := 0.0
			if i > 0 {
				lo = bucketBounds[i-1]
			}
			hi := lo * 1.25
			if i < len(bucketBounds) {
				hi = bucketBounds[i]
			}
			v := lo + (hi-lo)*(rank-float64(cum))/float64(n)
			return time.Duration(v * float64(time.Second))
		}
		cum += n
	}
	return time.Duration(bucketBounds[len(bucketBounds)-1] * float64(time.Second))
}

// Sub is the window c - before.
func (c Counts) Sub(before Counts) Counts {
	out := Counts{Requests: c.Requests - before.Requests, Errors: c.Errors - before.Errors, SumSec: c.SumSec - before.SumSec}
	out.Buckets = make([]int64, len(c.Buckets))
	for i := range c.Buckets {
		out.Buckets[i] = c.Buckets[i]
		if i < len(before.Buckets) {
			out.Buckets[i] -= before.Buckets[i]
		}
	}
	return out
}

// Add is the window c + o (two consecutive windows, or two tracks).
func (c Counts) Add(o Counts) Counts {
	out := Counts{Requests: c.Requests + o.Requests, Errors: c.Errors + o.Errors, SumSec: c.SumSec + o.SumSec}
	n := max(len(c.Buckets), len(o.Buckets))
	out.Buckets = make([]int64, n)
	for i := range n {
		if i < len(c.Buckets) {
			out.Buckets[i] += c.Buckets[i]
		}
		if i < len(o.Buckets) {
			out.Buckets[i] += o.Buckets[i]
		}
	}
	return out
}

// Summary is a window as people read it.
type Summary struct {
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	P50MS     float64 `json:"p50_ms"`
	P95MS     float64 `json:"p95_ms"`
	P99MS     float64 `json:"p99_ms"`
}

// Summary computes the window's rates and quantiles.
func (c Counts) Summary() Summary {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }
	return Summary{Requests: c.Requests, Errors: c.Errors, ErrorRate: c.ErrorRate(),
		P50MS: ms(c.Quantile(0.5)), P95MS: ms(c.Quantile(0.95)), P99MS: ms(c.Quantile(0.99))}
}

// counter is one track's cumulative counts; the proxy's hot path takes its lock briefly.
type counter struct {
	mu sync.Mutex
	c  Counts
}

func newCounter() *counter {
	return &counter{c: Counts{Buckets: make([]int64, len(bucketBounds)+1)}}
}

func (m *counter) observe(status int, d time.Duration) {
	s := d.Seconds()
	i := sort.SearchFloat64s(bucketBounds, s)
	m.mu.Lock()
	m.c.Requests++
	if status >= 500 {
		m.c.Errors++
	}
	m.c.Buckets[i]++
	m.c.SumSec += s
	m.mu.Unlock()
}

func (m *counter) snapshot() Counts {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.c
	out.Buckets = append([]int64(nil), m.c.Buckets...)
	return out
}

// metrics are the proxy's counters by track (pool name) and by version.
type metrics struct {
	mu        sync.Mutex
	byTrack   map[string]*counter
	byVersion map[string]*counter
}

func (m *metrics) get(track, version string) (*counter, *counter) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byTrack == nil {
		m.byTrack, m.byVersion = map[string]*counter{}, map[string]*counter{}
	}
	t, ok := m.byTrack[track]
	if !ok {
		t = newCounter()
		m.byTrack[track] = t
	}
	v, ok := m.byVersion[version]
	if !ok {
		v = newCounter()
		m.byVersion[version] = v
	}
	return t, v
}

// snapshot copies the counters of one of m's maps (which one is picked under the lock:
// the maps are made on first use).
func (m *metrics) snapshot(which func(*metrics) map[string]*counter) map[string]Counts {
	m.mu.Lock()
	in := which(m)
	cs := make(map[string]*counter, len(in))
	for k, v := range in {
		cs[k] = v
	}
	m.mu.Unlock()
	out := make(map[string]Counts, len(cs))
	for k, c := range cs {
		out[k] = c.snapshot()
	}
	return out
}

// BucketBounds are the latency histogram's upper bounds in seconds (the last bucket, +Inf,
// is not listed), for exporting it.
func BucketBounds() []float64 { return append([]float64(nil), bucketBounds...) }
