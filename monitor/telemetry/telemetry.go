// Package telemetry sets up OpenTelemetry for wscanary from the standard
// OTEL_* environment variables only, and owns the daemon's metrics. With no
// exporter configured nothing is exported and nothing waits on the
// network, but spans still get real trace ids: the trace id in a report, in
// /status and in a Slack alert is always the one the server saw in
// traceparent.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/wscanary/wscanary/monitor/report"
)

// CardinalityLimit bounds the data points of one OpenTelemetry
// instrument. The SDK's default (2,000) folds everything past it into
// otel_metric_overflow; over OTLP, a daemon with 10,000 checks from several
// vantages on two routes has tens of thousands of series, each with a few
// statuses. (/metrics writes the per-series families itself: no limit.)
const CardinalityLimit = 1 << 19

// Options configure Setup.
type Options struct {
	ServiceVersion string
	// Vantage becomes the resource attribute wscanary.vantage.
	Vantage string
	Logger  *slog.Logger
	// Env reads the environment; nil means os.Getenv. (autoexport itself
	// reads the process environment; Env decides whether it is asked.)
	Env func(string) string
	// SpanProcessors are added to the tracer provider (tests pass an
	// in-memory recorder).
	SpanProcessors []sdktrace.SpanProcessor
}

// Telemetry holds the providers wscanary's packages are given.
type Telemetry struct {
	TracerProvider trace.TracerProvider
	// Propagator injects traceparent (W3C trace context and baggage).
	Propagator propagation.TextMapPropagator
	Metrics    *Metrics
	// Handler serves /metrics in Prometheus text format.
	Handler http.Handler
	// Version is the service's (Options.ServiceVersion): the wscanary
	// client profile says it in its User-Agent.
	Version string

	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
	otlpMP *sdkmetric.MeterProvider // nil without an OTLP metrics exporter
}

// Setup builds the providers. Traces are exported when OTEL_TRACES_EXPORTER
// is set (otlp, console, none) or an OTLP endpoint is; metrics likewise
// with OTEL_METRICS_EXPORTER, and always to /metrics.
func Setup(ctx context.Context, opts Options) (*Telemetry, error) {
	env := opts.Env
	if env == nil {
		env = os.Getenv
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName("wscanary"),
		semconv.ServiceVersion(opts.ServiceVersion),
		attribute.String("wscanary.vantage", opts.Vantage),
	))
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over our defaults.
	if fromEnv, err := resource.New(ctx, resource.WithFromEnv()); err == nil {
		if merged, err := resource.Merge(res, fromEnv); err == nil {
			res = merged
		}
	}

	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	recorded := len(opts.SpanProcessors) > 0
	for _, p := range opts.SpanProcessors {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(p))
	}
	if wants(env, "OTEL_TRACES_EXPORTER", "TRACES") {
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("trace exporter: %w", err)
		}
		if !autoexport.IsNoneSpanExporter(exp) {
			tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
			opts.Logger.Info("exporting traces", "exporter", fmt.Sprintf("%T", exp))
			recorded = true
		}
	}
	// Every attempt is sampled when its spans go somewhere. When nothing
	// takes them, attempts still get trace ids (history, alerts, the
	// traceparent a target sees, flagged not sampled) but spans record
	// nothing: building attributes no one reads was a tenth of the
	// garbage of an attempt.
	sampler := sdktrace.NeverSample()
	if recorded {
		sampler = sdktrace.AlwaysSample()
	}
	tpOpts = append(tpOpts, sdktrace.WithSampler(sampler))
	tp := sdktrace.NewTracerProvider(tpOpts...)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	promExp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	common := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithCardinalityLimit(CardinalityLimit)}
	if env("OTEL_METRICS_EXEMPLAR_FILTER") == "" {
		// Every attempt runs in a sampled span, so the SDK's default
		// (trace_based) keeps a reservoir of exemplars for every series:
		// 2 KB a check, most of the daemon's heap at 30,000 checks. On
		// when asked for (OTEL_METRICS_EXEMPLAR_FILTER=trace_based).
		common = append(common, sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter))
	}
	// The Prometheus exporter and an OTLP exporter read meter providers of
	// their own: the per-series families are instruments only on the
	// OTLP one (/metrics writes them itself, see Metrics).
	mp := sdkmetric.NewMeterProvider(append([]sdkmetric.Option{sdkmetric.WithReader(promExp)}, common...)...)
	var otlpMP *sdkmetric.MeterProvider
	if me := strings.TrimSpace(env("OTEL_METRICS_EXPORTER")); me != "prometheus" && wants(env, "OTEL_METRICS_EXPORTER", "METRICS") {
		reader, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, fmt.Errorf("metric exporter: %w", err)
		}
		if !autoexport.IsNoneMetricReader(reader) {
			otlpMP = sdkmetric.NewMeterProvider(append([]sdkmetric.Option{sdkmetric.WithReader(reader)}, common...)...)
		}
	}
	var om metric.MeterProvider
	if otlpMP != nil {
		om = otlpMP
	}
	m, err := NewMetrics(mp, om)
	if err != nil {
		tp.Shutdown(ctx)
		mp.Shutdown(ctx)
		if otlpMP != nil {
			otlpMP.Shutdown(ctx)
		}
		return nil, err
	}
	return &Telemetry{
		TracerProvider: tp, Metrics: m,
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		Handler:    &metricsHandler{reg: reg, m: m},
		Version:    opts.ServiceVersion,
		tp:         tp, mp: mp, otlpMP: otlpMP,
	}, nil
}

// wants reports whether a signal should be exported: its *_EXPORTER
// variable is set, or an OTLP endpoint is. autoexport alone would default
// to OTLP on localhost, which would make a plain `wscanary check` try to
// reach a collector that is not there.
func wants(env func(string) string, exporterVar, signal string) bool {
	if strings.TrimSpace(env(exporterVar)) != "" {
		return true
	}
	return env("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || env("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") != ""
}

// Shutdown flushes and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	err := errors.Join(t.tp.Shutdown(ctx), t.mp.Shutdown(ctx))
	if t.otlpMP != nil {
		err = errors.Join(err, t.otlpMP.Shutdown(ctx))
	}
	return err
}

// NewLogger logs to w: text for a person at a terminal, JSON for a journal
// or a collector (docs/observability.md).
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if report.IsTerminal(w) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
