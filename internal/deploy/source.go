package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/paved/paved/internal/deploy/local"
)

// Source is where the analysis reads request metrics. It is a plugin edge: the proxy's own
// counters (the default) and Prometheus implement it.
//
// Lifecycle: the analysis calls Mark(track) when a measurement window of a track opens,
// then Measure(track) when it closes, and Mark again to open the next one. A window that
// was inconclusive is not re-marked: the next Measure covers both. Calls for one
// deployment come from one goroutine; a Source is made per deployment.
type Source interface {
	Mark(ctx context.Context, track string) error
	// Measure returns the track's requests since its last Mark.
	Measure(ctx context.Context, track string) (Sample, error)
}

// Sample is one track's requests in a window.
type Sample struct {
	Requests  int64         `json:"requests"`
	ErrorRate float64       `json:"error_rate"`
	P99       time.Duration `json:"p99"`
}

// proxySource reads the environment proxy's own counters.
type proxySource struct {
	p    *local.Proxy
	mu   sync.Mutex
	mark map[string]local.Counts
}

func newProxySource(p *local.Proxy) *proxySource {
	return &proxySource{p: p, mark: map[string]local.Counts{}}
}

func (s *proxySource) Mark(_ context.Context, track string) error {
	c := s.p.Metrics()[track]
	s.mu.Lock()
	s.mark[track] = c
	s.mu.Unlock()
	return nil
}

func (s *proxySource) Measure(_ context.Context, track string) (Sample, error) {
	now := s.p.Metrics()[track]
	s.mu.Lock()
	w := now.Sub(s.mark[track])
	s.mu.Unlock()
	return Sample{Requests: w.Requests, ErrorRate: w.ErrorRate(), P99: w.Quantile(0.99)}, nil
}

// Prometheus reads the analysis' metrics with PromQL over Prometheus' HTTP API. The queries
// are Go templates over {{.Environment}}, {{.Track}} and {{.Window}} (a range such as 30s,
// the time since the window's Mark); the defaults read what the deploy controller exports
// (paved_deploy_requests_total, paved_deploy_request_duration_seconds).
type Prometheus struct {
	URL       string `json:"url"`
	Requests  string `json:"requests,omitempty"`
	ErrorRate string `json:"error_rate,omitempty"`
	P99       string `json:"p99,omitempty"`
}

const (
	defaultPromRequests  = `sum(increase(paved_deploy_requests_total{environment="{{.Environment}}",track="{{.Track}}"}[{{.Window}}]))`
	defaultPromErrorRate = `sum(increase(paved_deploy_requests_total{environment="{{.Environment}}",track="{{.Track}}",class="5xx"}[{{.Window}}])) / sum(increase(paved_deploy_requests_total{environment="{{.Environment}}",track="{{.Track}}"}[{{.Window}}]))`
	defaultPromP99       = `histogram_quantile(0.99, sum by (le) (increase(paved_deploy_request_duration_seconds_bucket{environment="{{.Environment}}",track="{{.Track}}"}[{{.Window}}])))`
)

type promSource struct {
	cfg    Prometheus
	env    string
	client *http.Client
	now    func() time.Time
	mu     sync.Mutex
	mark   map[string]time.Time
}

func newPromSource(cfg Prometheus, env string, now func() time.Time) *promSource {
	if cfg.Requests == "" {
		cfg.Requests = defaultPromRequests
	}
	if cfg.ErrorRate == "" {
		cfg.ErrorRate = defaultPromErrorRate
	}
	if cfg.P99 == "" {
		cfg.P99 = defaultPromP99
	}
	return &promSource{cfg: cfg, env: env, client: &http.Client{Timeout: 10 * time.Second}, now: now, mark: map[string]time.Time{}}
}

func (s *promSource) Mark(_ context.Context, track string) error {
	s.mu.Lock()
	s.mark[track] = s.now()
	s.mu.Unlock()
	return nil
}

func (s *promSource) Measure(ctx context.Context, track string) (Sample, error) {
	s.mu.Lock()
	since, ok := s.mark[track]
	s.mu.Unlock()
	if !ok {
		return Sample{}, fmt.Errorf("deploy: prometheus: track %s measured before its mark", track)
	}
	// Prometheus ranges are whole milliseconds; a window shorter than a scrape has no data.
	w := max(s.now().Sub(since), time.Second)
	vars := map[string]string{"Environment": s.env, "Track": track, "Window": strconv.FormatInt(w.Milliseconds(), 10) + "ms"}
	var out Sample
	n, err := s.query(ctx, s.cfg.Requests, vars)
	if err != nil {
		return out, err
	}
	out.Requests = int64(math.Round(n))
	if out.Requests == 0 {
		return out, nil
	}
	if out.ErrorRate, err = s.query(ctx, s.cfg.ErrorRate, vars); err != nil {
		return out, err
	}
	p99, err := s.query(ctx, s.cfg.P99, vars)
	if err != nil {
		return out, err
	}
	out.P99 = time.Duration(p99 * float64(time.Second))
	return out, nil
}

// query runs an instant query whose result is one number; an empty result is 0 (no series:
// no requests of that kind), NaN too (0/0).
func (s *promSource) query(ctx context.Context, tmpl string, vars map[string]string) (float64, error) {
	t, err := template.New("q").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return 0, fmt.Errorf("deploy: prometheus query %q: %w", tmpl, err)
	}
	var q strings.Builder
	if err := t.Execute(&q, vars); err != nil {
		return 0, fmt.Errorf("deploy: prometheus query %q: %w", tmpl, err)
	}
	form := url.Values{"query": {q.String()}, "time": {strconv.FormatFloat(float64(s.now().UnixMilli())/1000, 'f', 3, 64)}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(s.cfg.URL, "/")+"/api/v1/query", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("deploy: prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("deploy: prometheus: %w", err)
	}
	v, err := parsePromValue(body)
	if err != nil {
		return 0, fmt.Errorf("deploy: prometheus query %s (%s): %w", q.String(), resp.Status, err)
	}
	return v, nil
}

// parsePromValue reads the one number of an instant query's answer. No series is 0 (no
// requests of that kind), NaN and ±Inf too (0/0 over an empty window).
func parsePromValue(body []byte) (float64, error) {
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("not a Prometheus API answer: %.100q", body)
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("prometheus: %s", r.Error)
	}
	var sample [2]any
	switch r.Data.ResultType {
	case "scalar":
		if err := json.Unmarshal(r.Data.Result, &sample); err != nil {
			return 0, fmt.Errorf("bad scalar: %w", err)
		}
	case "vector":
		var vec []struct {
			Value [2]any `json:"value"`
		}
		if err := json.Unmarshal(r.Data.Result, &vec); err != nil {
			return 0, fmt.Errorf("bad vector: %w", err)
		}
		if len(vec) == 0 {
			return 0, nil
		}
		if len(vec) > 1 {
			return 0, fmt.Errorf("%d series, want one (aggregate with sum)", len(vec))
		}
		sample = vec[0].Value
	default:
		return 0, fmt.Errorf("result is a %q, want one number (a scalar or a vector of one)", r.Data.ResultType)
	}
	str, ok := sample[1].(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", sample[1])
	}
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return 0, fmt.Errorf("bad sample value %q", str)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, nil
	}
	return v, nil
}

var (
	_ Source = (*proxySource)(nil)
	_ Source = (*promSource)(nil)
)
