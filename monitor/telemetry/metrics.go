package telemetry

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/wscanary/wscanary/monitor/report"
)

// Metrics are wscanary's instruments. Label sets stay bounded: check,
// vantage, route, variant, status, outcome and kind, never URLs or error
// strings. A nil *Metrics records nothing.
type Metrics struct {
	duration  metric.Float64Histogram
	attempts  metric.Int64Counter
	sent      metric.Int64Counter
	failed    metric.Int64Counter
	dropped   metric.Int64Counter
	skipped   metric.Int64Counter
	lateness  metric.Float64Histogram
	storeErrs metric.Int64Counter
	slackConn metric.Int64Counter

	// attemptSets are the attribute sets of Attempt, by attemptKey: built
	// once per series and status, so an attempt records without building
	// (and sorting, and allocating) its attributes, and without a lock.
	attemptSets sync.Map
	// series are the last status and outcome of every series
	// (*seriesState by seriesKey), updated without a lock.
	series sync.Map

	mu        sync.Mutex
	incidents map[string]bool       // check -> open
	certs     map[seriesKey]float64 // unix seconds
	tokens    map[string]float64    // check -> unix seconds
	storeOK   bool
	members   map[string]memberState
	broken    map[string]bool // notifier -> held until a person fixes it
}

type seriesKey struct{ check, vantage, route string }

type seriesState struct {
	status  atomic.Int64
	outcome atomic.Pointer[string]
}

func (s *seriesState) load() (int64, string) {
	o := ""
	if p := s.outcome.Load(); p != nil {
		o = *p
	}
	return s.status.Load(), o
}

// eachSeries calls fn with every series' state.
func (m *Metrics) eachSeries(fn func(seriesKey, int64, string)) {
	m.series.Range(func(k, v any) bool {
		st, o := v.(*seriesState).load()
		fn(k.(seriesKey), st, o)
		return true
	})
}

type attemptKey struct {
	check, vantage, route, transport, variant string
	status                                    int
}

type attemptSet struct {
	duration, attempts metric.MeasurementOption
}

type memberState struct {
	seen   float64
	silent bool
}

// NewMetrics creates the instruments on mp.
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	meter := mp.Meter("github.com/wscanary/wscanary")
	m := &Metrics{incidents: map[string]bool{}, certs: map[seriesKey]float64{},
		tokens: map[string]float64{}, storeOK: true, members: map[string]memberState{}, broken: map[string]bool{}}
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	m.duration, err = meter.Float64Histogram("wscanary.handshake.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of WebSocket opening handshakes."),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	keep(err)
	m.attempts, err = meter.Int64Counter("wscanary.attempts", metric.WithDescription("Handshake attempts by status class, variants included."))
	keep(err)
	m.sent, err = meter.Int64Counter("wscanary.notifications.sent", metric.WithDescription("Notifications delivered, by kind (open, update, reply, notice)."))
	keep(err)
	m.failed, err = meter.Int64Counter("wscanary.notifications.failed", metric.WithDescription("Failed notification attempts (each retry counts), by kind."))
	keep(err)
	m.dropped, err = meter.Int64Counter("wscanary.notifications.dropped",
		metric.WithDescription("Notifications given up on (undelivered for a day, a notifier removed, a receiver's 410), by kind."))
	keep(err)
	m.skipped, err = meter.Int64Counter("wscanary.runs.skipped", metric.WithDescription("Runs skipped because the previous run of the check was still going."))
	keep(err)
	m.slackConn, err = meter.Int64Counter("wscanary.slack.socket.connections",
		metric.WithDescription("Socket Mode connections opened to Slack (buttons), by whether it was a reconnection."))
	keep(err)
	m.lateness, err = meter.Float64Histogram("wscanary.schedule.lateness", metric.WithUnit("s"),
		metric.WithDescription("How late a run started after its scheduled time."),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5))
	keep(err)
	m.storeErrs, err = meter.Int64Counter("wscanary.store.errors", metric.WithDescription("Store operations that failed, by operation."))
	keep(err)
	gauge := func(name, desc string, cb func(o metric.Float64Observer)) {
		_, err := meter.Float64ObservableGauge(name, metric.WithDescription(desc),
			metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
				m.mu.Lock()
				defer m.mu.Unlock()
				cb(o)
				return nil
			}))
		keep(err)
	}
	attrs := func(k seriesKey, more ...attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributes(append([]attribute.KeyValue{attribute.String("check", k.check),
			attribute.String("vantage", k.vantage), attribute.String("route", k.route)}, more...)...)
	}
	gauge("wscanary.series.status", "Last HTTP status of each series (0: no answer), whether or not it fails.", func(o metric.Float64Observer) {
		m.eachSeries(func(k seriesKey, status int64, _ string) { o.Observe(float64(status), attrs(k)) })
	})
	gauge("wscanary.series.success", "1 when the series' last run upgraded (and passed send/expect), else 0, like probe_success.", func(o metric.Float64Observer) {
		m.eachSeries(func(k seriesKey, _ int64, outcome string) {
			v := 0.0
			if outcome == string(report.OutcomeUpgraded) {
				v = 1
			}
			o.Observe(v, attrs(k))
		})
	})
	gauge("wscanary.series.outcome", "1 for the outcome of the series' last run (upgraded, refused, rejected_after_open, no_answer).", func(o metric.Float64Observer) {
		m.eachSeries(func(k seriesKey, _ int64, outcome string) {
			o.Observe(1, attrs(k, attribute.String("outcome", outcome)))
		})
	})
	gauge("wscanary.incident.open", "1 while the check has an open incident.", func(o metric.Float64Observer) {
		for c, open := range m.incidents {
			v := 0.0
			if open {
				v = 1
			}
			o.Observe(v, metric.WithAttributes(attribute.String("check", c)))
		}
	})
	gauge("wscanary.cert.expiry.timestamp", "When the leaf certificate a series saw expires, unix seconds.", func(o metric.Float64Observer) {
		for k, v := range m.certs {
			o.Observe(v, attrs(k))
		}
	})
	gauge("wscanary.token.expiry.timestamp", "When the check's JWT expires (its exp claim), unix seconds.", func(o metric.Float64Observer) {
		for c, v := range m.tokens {
			o.Observe(v, metric.WithAttributes(attribute.String("check", c)))
		}
	})
	gauge("wscanary.store.healthy", "1 while the store takes writes, 0 while this daemon works from memory.", func(o metric.Float64Observer) {
		v := 0.0
		if m.storeOK {
			v = 1
		}
		o.Observe(v)
	})
	gauge("wscanary.notifier.broken", "1 while a notifier's messages are held for a refusal a person must fix (a revoked token, a missing channel).", func(o metric.Float64Observer) {
		for name, b := range m.broken {
			v := 0.0
			if b {
				v = 1
			}
			o.Observe(v, metric.WithAttributes(attribute.String("notifier", name)))
		}
	})
	gauge("wscanary.fleet.member.seen.timestamp", "When each fleet member last reported, unix seconds.", func(o metric.Float64Observer) {
		for name, s := range m.members {
			o.Observe(s.seen, metric.WithAttributes(attribute.String("member", name)))
		}
	})
	gauge("wscanary.fleet.member.up", "1 while a fleet member reports, 0 once it went silent.", func(o metric.Float64Observer) {
		for name, s := range m.members {
			v := 1.0
			if s.silent {
				v = 0
			}
			o.Observe(v, metric.WithAttributes(attribute.String("member", name)))
		}
	})
	if len(errs) > 0 {
		return nil, fmt.Errorf("metrics: %w", errs[0])
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
func (m *Metrics) Attempt(ctx context.Context, check, vantage, route, transport, variant string, status int, seconds float64) {
	if m == nil {
		return
	}
	k := attemptKey{check, vantage, route, transport, variant, status}
	v, ok := m.attemptSets.Load(k)
	if !ok {
		d := attribute.NewSet(attribute.String("check", check), attribute.String("vantage", vantage), attribute.String("route", route),
			attribute.String("transport", transport), attribute.Int("status", status))
		a := attribute.NewSet(attribute.String("check", check), attribute.String("vantage", vantage), attribute.String("route", route),
			attribute.String("transport", transport), attribute.String("variant", variant), attribute.String("status_class", statusClass(status)))
		v, _ = m.attemptSets.LoadOrStore(k, &attemptSet{duration: metric.WithAttributeSet(d), attempts: metric.WithAttributeSet(a)})
	}
	set := v.(*attemptSet)
	m.duration.Record(ctx, seconds, set.duration)
	m.attempts.Add(ctx, 1, set.attempts)
}

// SeriesObserved records the last status and outcome of a series, for
// every series observed (failing or not, confirmed or not).
func (m *Metrics) SeriesObserved(check, vantage, route string, status int, outcome string) {
	if m == nil {
		return
	}
	k := seriesKey{check, vantage, route}
	v, ok := m.series.Load(k)
	if !ok {
		v, _ = m.series.LoadOrStore(k, &seriesState{})
	}
	st := v.(*seriesState)
	st.status.Store(int64(status))
	if p := st.outcome.Load(); p == nil || *p != outcome {
		st.outcome.Store(&outcome)
	}
}

// IncidentOpen records whether the check has an open incident.
func (m *Metrics) IncidentOpen(check string, open bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.incidents[check] = open
	m.mu.Unlock()
}

// CertExpiry records when the certificate a series saw expires.
func (m *Metrics) CertExpiry(check, vantage, route string, at time.Time) {
	if m == nil || at.IsZero() {
		return
	}
	m.mu.Lock()
	m.certs[seriesKey{check, vantage, route}] = float64(at.Unix())
	m.mu.Unlock()
}

// TokenExpiry records when the check's JWT expires.
func (m *Metrics) TokenExpiry(check string, at time.Time) {
	if m == nil || at.IsZero() {
		return
	}
	m.mu.Lock()
	m.tokens[check] = float64(at.Unix())
	m.mu.Unlock()
}

// Forget drops what is recorded of a check that no longer exists.
func (m *Metrics) Forget(check string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.series.Range(func(k, _ any) bool {
		if k.(seriesKey).check == check {
			m.series.Delete(k)
		}
		return true
	})
	m.attemptSets.Range(func(k, _ any) bool {
		if k.(attemptKey).check == check {
			m.attemptSets.Delete(k)
		}
		return true
	})
	for k := range m.certs {
		if k.check == check {
			delete(m.certs, k)
		}
	}
	delete(m.incidents, check)
	delete(m.tokens, check)
}

// NotificationSent counts a delivered message.
func (m *Metrics) NotificationSent(ctx context.Context, check, kind, notifier string) {
	if m == nil {
		return
	}
	m.sent.Add(ctx, 1, metric.WithAttributes(attribute.String("check", check), attribute.String("kind", kind), attribute.String("notifier", notifier)))
}

// NotificationFailed counts a failed delivery attempt.
func (m *Metrics) NotificationFailed(ctx context.Context, kind, notifier string) {
	if m == nil {
		return
	}
	m.failed.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", kind), attribute.String("notifier", notifier)))
}

// NotificationDropped counts a message given up on.
func (m *Metrics) NotificationDropped(ctx context.Context, kind, notifier string) {
	if m == nil {
		return
	}
	m.dropped.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", kind), attribute.String("notifier", notifier)))
}

// NotifierBroken records whether a notifier is held for a refusal a
// person must fix.
func (m *Metrics) NotifierBroken(notifier string, broken bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.broken[notifier] = broken
	m.mu.Unlock()
}

// StoreError counts a failed store operation.
func (m *Metrics) StoreError(ctx context.Context, op string) {
	if m == nil {
		return
	}
	m.storeErrs.Add(ctx, 1, metric.WithAttributes(attribute.String("op", op)))
}

// StoreHealthy records whether the store takes writes.
func (m *Metrics) StoreHealthy(ok bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.storeOK = ok
	m.mu.Unlock()
}

// Member records a fleet member: when it last reported and whether it is
// silent.
func (m *Metrics) Member(name string, seen time.Time, silent bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.members[name] = memberState{seen: float64(seen.Unix()), silent: silent}
	m.mu.Unlock()
}

// RunSkipped counts a run skipped for overlap.
func (m *Metrics) RunSkipped(ctx context.Context, check string) {
	if m == nil {
		return
	}
	m.skipped.Add(ctx, 1, metric.WithAttributes(attribute.String("check", check)))
}

// SlackConnected counts a Socket Mode connection: count is 0 for the
// first, more for each reconnection.
func (m *Metrics) SlackConnected(count int) {
	if m == nil {
		return
	}
	m.slackConn.Add(context.Background(), 1, metric.WithAttributes(attribute.Bool("reconnect", count > 0)))
}

// Lateness records how late a scheduled run started.
func (m *Metrics) Lateness(ctx context.Context, seconds float64) {
	if m == nil {
		return
	}
	m.lateness.Record(ctx, seconds)
}
