package insight

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
)

// A real OTLP/HTTP exchange with a receiver on 127.0.0.1 that decodes what it gets with the
// OTLP protobuf types, as a collector would.
func TestTraceOfARun(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var spans []*tracepb.Span
	got := make(chan struct{}, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" {
			t.Errorf("path %s", r.URL.Path)
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Error(err)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			t.Errorf("not OTLP: %v", err)
		}
		mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				spans = append(spans, ss.Spans...)
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		got <- struct{}{}
	}))
	defer recv.Close()
	tr, err := NewTracer(context.Background(), recv.URL)
	if err != nil {
		t.Fatal(err)
	}
	id := "01a233a1-944c-7d45-bdd0-6904fd44adaa"
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	two := 2
	p := &pipeline.Pipeline{Name: "svc", Stages: []*pipeline.Stage{{Name: "build"}, {Name: "test"}}}
	for i, e := range []run.Event{
		{Type: run.RunCreated, Info: &run.Info{Repo: "a/svc", Pipeline: p}},
		{Type: run.StageStarted, Stage: "build", Attempt: 1, Time: t0.Add(time.Second)},
		{Type: run.StepStarted, Stage: "build", Step: 1, StepName: "go build", Time: t0.Add(time.Second)},
		{Type: run.StepFinished, Stage: "build", Step: 1, StepName: "go build", ExitCode: new(int), Time: t0.Add(3 * time.Second)},
		{Type: run.StageFinished, Stage: "build", Status: "succeeded", Time: t0.Add(3 * time.Second)},
		{Type: run.StageStarted, Stage: "test", Attempt: 1, Time: t0.Add(3 * time.Second)},
		{Type: run.StepStarted, Stage: "test", Step: 1, StepName: "go test", Time: t0.Add(3 * time.Second)},
		{Type: run.StepFinished, Stage: "test", Step: 1, StepName: "go test", ExitCode: &two, Time: t0.Add(5 * time.Second)},
		{Type: run.StageFinished, Stage: "test", Status: "failed", Reason: "step 1 exited with code 2", Time: t0.Add(5 * time.Second)},
		{Type: run.RunFinished, Status: "FAILED", Time: t0.Add(5 * time.Second)},
	} {
		e.RunID, e.Seq = id, int64(i+1)
		if e.Time.IsZero() {
			e.Time = t0
		}
		tr.Event(e)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing exported")
	}
	mu.Lock()
	defer mu.Unlock()
	byName := map[string]*tracepb.Span{}
	for _, s := range spans {
		byName[s.Name] = s
		if hex.EncodeToString(s.TraceId) != strings.ReplaceAll(id, "-", "") {
			t.Errorf("span %s in trace %x, want the run's id", s.Name, s.TraceId)
		}
	}
	root, build, step, test := byName["run svc"], byName["stage build"], byName["step go build"], byName["stage test"]
	if len(spans) != 5 || root == nil || build == nil || step == nil || test == nil {
		t.Fatalf("spans %v", byName)
	}
	if string(build.ParentSpanId) != string(root.SpanId) || string(step.ParentSpanId) != string(build.SpanId) || len(root.ParentSpanId) != 0 {
		t.Error("spans are not nested run > stage > step")
	}
	if d := time.Duration(step.EndTimeUnixNano - step.StartTimeUnixNano); d != 2*time.Second {
		t.Errorf("step lasted %s, want the events' 2s", d)
	}
	if test.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || root.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR ||
		build.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("statuses: run %v, build %v, test %v", root.Status, build.Status, test.Status)
	}
	if len(tr.runs) != 0 {
		t.Errorf("finished runs still held: %v", tr.runs)
	}
}
