package telemetry

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metrics are wscanary's instruments. Label sets stay bounded: check,
// vantage, route, variant, status and cause, never URLs or error strings.
// A nil *Metrics records nothing.
type Metrics struct {
	duration  metric.Float64Histogram
	attempts  metric.Int64Counter
	alerts    metric.Int64Counter
	slackErrs metric.Int64Counter
	skipped   metric.Int64Counter
	lateness  metric.Float64Histogram

	mu     sync.Mutex
	series map[[3]string]int64 // check, vantage, route -> last status
}

// NewMetrics creates the instruments on mp.
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	meter := mp.Meter("github.com/wscanary/wscanary")
	m := &Metrics{series: map[[3]string]int64{}}
	var err error
	errs := func(e error) {
		if err == nil {
			err = e
		}
	}
	m.duration, err = meter.Float64Histogram("wscanary.handshake.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of WebSocket opening handshakes."),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	var e error
	m.attempts, e = meter.Int64Counter("wscanary.attempts", metric.WithDescription("Handshake attempts by status class, variants included."))
	errs(e)
	m.alerts, e = meter.Int64Counter("wscanary.alerts.sent", metric.WithDescription("Notifications delivered, by kind."))
	errs(e)
	m.slackErrs, e = meter.Int64Counter("wscanary.slack.errors", metric.WithDescription("Failed notification deliveries (each retry counts)."))
	errs(e)
	m.skipped, e = meter.Int64Counter("wscanary.runs.skipped", metric.WithDescription("Runs skipped because the previous run of the check was still going."))
	errs(e)
	m.lateness, e = meter.Float64Histogram("wscanary.schedule.lateness", metric.WithUnit("s"),
		metric.WithDescription("How late a run started after its scheduled time."),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5))
	errs(e)
	_, e = meter.Int64ObservableGauge("wscanary.series.status",
		metric.WithDescription("Last HTTP status of each series (0: no answer)."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			for k, v := range m.series {
				o.Observe(v, metric.WithAttributes(attribute.String("check", k[0]),
					attribute.String("vantage", k[1]), attribute.String("route", k[2])))
			}
			return nil
		}))
	errs(e)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return m, nil
}

func statusClass(s int) string {
	if s < 100 || s > 599 {
		return "none"
	}
	return fmt.Sprintf("%dxx", s/100)
}

// Attempt records one handshake.
func (m *Metrics) Attempt(ctx context.Context, check, vantage, route, variant string, status int, seconds float64) {
	if m == nil {
		return
	}
	m.duration.Record(ctx, seconds, metric.WithAttributes(attribute.String("check", check),
		attribute.String("vantage", vantage), attribute.String("route", route), attribute.Int("status", status)))
	m.attempts.Add(ctx, 1, metric.WithAttributes(attribute.String("check", check), attribute.String("vantage", vantage),
		attribute.String("route", route), attribute.String("variant", variant), attribute.String("status_class", statusClass(status))))
}

// SeriesStatus records the last status of a series.
func (m *Metrics) SeriesStatus(check, vantage, route string, status int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.series[[3]string{check, vantage, route}] = int64(status)
	m.mu.Unlock()
}

// ForgetSeries drops the series of a check that no longer exists.
func (m *Metrics) ForgetSeries(check string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	for k := range m.series {
		if k[0] == check {
			delete(m.series, k)
		}
	}
	m.mu.Unlock()
}

// AlertSent counts a delivered notification.
func (m *Metrics) AlertSent(ctx context.Context, check, kind string) {
	if m == nil {
		return
	}
	m.alerts.Add(ctx, 1, metric.WithAttributes(attribute.String("check", check), attribute.String("kind", kind)))
}

// SlackError counts a failed delivery.
func (m *Metrics) SlackError(ctx context.Context) {
	if m == nil {
		return
	}
	m.slackErrs.Add(ctx, 1)
}

// RunSkipped counts a run skipped for overlap.
func (m *Metrics) RunSkipped(ctx context.Context, check string) {
	if m == nil {
		return
	}
	m.skipped.Add(ctx, 1, metric.WithAttributes(attribute.String("check", check)))
}

// Lateness records how late a scheduled run started.
func (m *Metrics) Lateness(ctx context.Context, seconds float64) {
	if m == nil {
		return
	}
	m.lateness.Record(ctx, seconds)
}
