package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// otlpSeries are the per-series families as OpenTelemetry instruments, for
// an OTLP metrics exporter. They live on a meter provider that only that
// exporter reads, so /metrics never pays for collecting them.
type otlpSeries struct {
	duration metric.Float64Histogram
	attempts metric.Int64Counter
	lateness metric.Float64Histogram
}

func newOTLPSeries(meter metric.Meter, m *Metrics) (*otlpSeries, error) {
	o := &otlpSeries{}
	var err error
	if o.duration, err = meter.Float64Histogram("wscanary.handshake.duration", metric.WithUnit("s"),
		metric.WithDescription(helpDuration),
		metric.WithExplicitBucketBoundaries(durationBuckets.bounds...)); err != nil {
		return nil, err
	}
	if o.lateness, err = meter.Float64Histogram("wscanary.schedule.lateness", metric.WithUnit("s"),
		metric.WithDescription(helpLateness), metric.WithExplicitBucketBoundaries(latenessBuckets.bounds...)); err != nil {
		return nil, err
	}
	if o.attempts, err = meter.Int64Counter("wscanary.attempts", metric.WithDescription(helpAttempts)); err != nil {
		return nil, err
	}
	attrs := func(k seriesKey, more ...attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributes(append([]attribute.KeyValue{attribute.String("check", k.check),
			attribute.String("vantage", k.vantage), attribute.String("route", k.route)}, more...)...)
	}
	gauges := []struct {
		name, help string
		cb         func(o metric.Float64Observer)
	}{
		{"wscanary.series.status", helpStatus, func(o metric.Float64Observer) {
			m.eachRun(func(k seriesKey, status int64, _ string) bool { o.Observe(float64(status), attrs(k)); return true })
		}},
		{"wscanary.series.success", helpSuccess, func(o metric.Float64Observer) {
			m.eachRun(func(k seriesKey, _ int64, outcome string) bool { o.Observe(success(outcome), attrs(k)); return true })
		}},
		{"wscanary.series.outcome", helpOutcome, func(o metric.Float64Observer) {
			m.eachRun(func(k seriesKey, _ int64, outcome string) bool {
				o.Observe(1, attrs(k, attribute.String("outcome", outcome)))
				return true
			})
		}},
		{"wscanary.cert.expiry.timestamp", helpCert, func(o metric.Float64Observer) {
			m.eachCert(func(k seriesKey, at int64) bool { o.Observe(float64(at), attrs(k)); return true })
		}},
		{"wscanary.incident.open", helpIncident, func(o metric.Float64Observer) {
			m.incidents.Range(func(k, v any) bool {
				o.Observe(b2f(v.(bool)), metric.WithAttributes(attribute.String("check", k.(string))))
				return true
			})
		}},
		{"wscanary.token.expiry.timestamp", helpToken, func(o metric.Float64Observer) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for c, at := range m.tokens {
				o.Observe(at, metric.WithAttributes(attribute.String("check", c)))
			}
		}},
	}
	for _, g := range gauges {
		if _, err := meter.Float64ObservableGauge(g.name, metric.WithDescription(g.help),
			metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
				g.cb(o)
				return nil
			})); err != nil {
			return nil, fmt.Errorf("%s: %w", g.name, err)
		}
	}
	return o, nil
}
