package insight

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/paved/paved/internal/run"
)

// Tracer sends one OpenTelemetry trace per run to an OTLP/HTTP endpoint, built from the
// run's events as they are appended: a span for the run, one per stage attempt under it,
// one per step under that, each with the times the events carry. The trace's id is the
// run's id (a UUID is 16 bytes, as a trace id is), so a trace is found from a run and back.
// A run already in flight when the server started is not traced: its earlier events were
// not seen here.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer

	mu   sync.Mutex
	runs map[string]*runSpans
}

type runSpans struct {
	ctx    context.Context // carries the run span
	run    trace.Span
	stages map[string]trace.Span // by stage name, the attempt running
	steps  map[string]trace.Span // by stage name, the step running
	status map[string]string
}

// NewTracer exports to endpoint, an OTLP/HTTP base URL such as http://127.0.0.1:4318
// (traces go to /v1/traces).
func NewTracer(ctx context.Context, endpoint string) (*Tracer, error) {
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(strings.TrimSuffix(endpoint, "/")+"/v1/traces"))
	if err != nil {
		return nil, fmt.Errorf("insight: OTLP endpoint %s: %w", endpoint, err)
	}
	res := resource.NewSchemaless(semconv.ServiceName("paved"))
	p := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithIDGenerator(runIDs{}))
	return &Tracer{provider: p, tracer: p.Tracer("github.com/paved/paved/internal/insight"), runs: map[string]*runSpans{}}, nil
}

// Shutdown flushes the spans that ended and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error { return t.provider.Shutdown(ctx) }

// Event turns one appended event into span starts and ends (schedule.Config.OnEvent).
func (t *Tracer) Event(e run.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.runs[e.RunID]
	switch {
	case e.Type == run.RunCreated && e.Info != nil && e.Info.Pipeline != nil:
		ctx := context.WithValue(context.Background(), runIDKey{}, e.RunID)
		ctx, span := t.tracer.Start(ctx, "run "+e.Info.Pipeline.Name, trace.WithTimestamp(e.Time), trace.WithAttributes(
			attribute.String("paved.run.id", e.RunID), attribute.String("paved.repo", e.Info.Repo),
			attribute.String("paved.pipeline", e.Info.Pipeline.Name), attribute.String("paved.ref", e.Info.Ref),
			attribute.String("paved.sha", e.Info.SHA), attribute.String("paved.trigger", e.Info.Trigger.Kind),
			attribute.String("paved.team", e.Info.Team), attribute.String("paved.priority", e.Info.Priority)))
		t.runs[e.RunID] = &runSpans{ctx: ctx, run: span, stages: map[string]trace.Span{}, steps: map[string]trace.Span{}, status: map[string]string{}}
	case r == nil:
	case e.Type == run.StageStarted:
		_, span := t.tracer.Start(r.ctx, "stage "+e.Stage, trace.WithTimestamp(e.Time), trace.WithAttributes(
			attribute.String("paved.stage", e.Stage), attribute.Int("paved.attempt", e.Attempt)))
		r.stages[e.Stage] = span
	case e.Type == run.StepStarted:
		if st := r.stages[e.Stage]; st != nil {
			ctx := trace.ContextWithSpan(r.ctx, st)
			_, span := t.tracer.Start(ctx, "step "+e.StepName, trace.WithTimestamp(e.Time), trace.WithAttributes(
				attribute.Int("paved.step", e.Step)))
			r.steps[e.Stage] = span
		}
	case e.Type == run.StepFinished:
		if span := r.steps[e.Stage]; span != nil {
			if e.ExitCode != nil {
				span.SetAttributes(attribute.Int("paved.exit_code", *e.ExitCode))
				if *e.ExitCode != 0 {
					span.SetStatus(codes.Error, fmt.Sprintf("exited with code %d", *e.ExitCode))
				}
			}
			span.End(trace.WithTimestamp(e.Time))
			delete(r.steps, e.Stage)
		}
	case e.Type == run.StageFinished || e.Type == run.StageInterrupted:
		if span := r.steps[e.Stage]; span != nil {
			span.End(trace.WithTimestamp(e.Time))
			delete(r.steps, e.Stage)
		}
		if span := r.stages[e.Stage]; span != nil {
			status := e.Status
			if e.Type == run.StageInterrupted {
				status = "interrupted"
			}
			span.SetAttributes(attribute.String("paved.status", status))
			if status == run.StatusFailed || status == "interrupted" {
				span.SetStatus(codes.Error, e.Reason)
			}
			span.End(trace.WithTimestamp(e.Time))
			delete(r.stages, e.Stage)
		}
	case e.Type == run.RunFinished:
		r.run.SetAttributes(attribute.String("paved.phase", e.Status))
		if run.Phase(e.Status) != run.Succeeded {
			r.run.SetStatus(codes.Error, e.Reason)
		}
		r.run.End(trace.WithTimestamp(e.Time))
		delete(t.runs, e.RunID)
	}
}

type runIDKey struct{}

// runIDs gives a run's spans the run's id as their trace id; span ids are random.
type runIDs struct{}

func (runIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	var tid trace.TraceID
	id, _ := ctx.Value(runIDKey{}).(string)
	if b, err := hex.DecodeString(strings.ReplaceAll(id, "-", "")); err == nil && len(b) == len(tid) {
		copy(tid[:], b)
	} else {
		_, _ = rand.Read(tid[:])
	}
	return tid, runIDs{}.NewSpanID(ctx, tid)
}

func (runIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	var sid trace.SpanID
	_, _ = rand.Read(sid[:])
	return sid
}
