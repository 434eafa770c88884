package telemetry

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metrics are wscanary's instruments. Label sets stay bounded: check,
// vantage, route, variant, status, outcome and kind, never URLs or error
// strings. A nil *Metrics records nothing.
//
// The families with a line per check or series, and the lateness of every
// fire, are kept by Metrics itself and written to /metrics from there
// (series.go); the others are OpenTelemetry instruments. With an OTLP
// metrics exporter the per-series families are OpenTelemetry instruments
// too, on that exporter's meter provider only (otlp.go).
type Metrics struct {
	sent      counter
	failed    counter
	dropped   counter
	skipped   counter
	storeErrs counter
	slackConn counter

	// attemptSets are what Attempt updates, by attemptKey: found once per
	// series and status, so an attempt records with atomic adds, without
	// building its attributes and without a lock. A set is made, and a
	// check forgotten, under setsMu: a set never points at a histogram or
	// counter that Forget took out of durations and counts.
	attemptSets sync.Map
	setsMu      sync.Mutex
	durations   sync.Map // durationKey -> *histogram
	counts      sync.Map // countKey -> *atomic.Uint64
	// series are the last status, outcome and certificate expiry of every
	// series (*seriesState by seriesKey).
	series sync.Map
	// incidents: check -> whether it has an open incident (bool).
	incidents sync.Map
	lateness  *histogram
	// otlp are the per-series instruments for an OTLP exporter; nil
	// without one.
	otlp *otlpSeries

	mu      sync.Mutex
	tokens  map[string]float64 // check -> unix seconds
	storeOK bool
	members map[string]memberState
	broken  map[string]bool // notifier -> held until a person fixes it
}

type seriesKey struct{ check, vantage, route string }

type seriesState struct {
	status  atomic.Int64
	outcome atomic.Pointer[string]
	cert    atomic.Int64 // unix seconds the leaf certificate expires; 0: none seen
}

func (s *seriesState) load() (int64, string) {
	o := ""
	if p := s.outcome.Load(); p != nil {
		o = *p
	}
	return s.status.Load(), o
}

// state is the series' state, made on first sight.
func (m *Metrics) state(k seriesKey) *seriesState {
	v, ok := m.series.Load(k)
	if !ok {
		v, _ = m.series.LoadOrStore(k, &seriesState{})
	}
	return v.(*seriesState)
}

type attemptKey struct {
	check, vantage, route, transport, variant string
	status                                    int
}

type attemptSet struct {
	hist  *histogram
	count *atomic.Uint64
	// for otlp
	duration, attempts metric.MeasurementOption
}

type memberState struct {
	seen   float64
	silent bool
}

// NewMetrics creates the instruments. prom is the meter provider the
// Prometheus exporter reads; otlp, when not nil, the one an OTLP exporter
// reads, which also gets the per-series families as instruments. Each
// exporter has one reader of its own: a second reader would send the
// runtime metrics OTEL_METRICS_PRODUCERS adds twice.
func NewMetrics(prom, otlp metric.MeterProvider) (*Metrics, error) {
	const scope = "github.com/wscanary/wscanary"
	meters := []metric.Meter{prom.Meter(scope)}
	if otlp != nil {
		meters = append(meters, otlp.Meter(scope))
	}
	m := &Metrics{tokens: map[string]float64{}, storeOK: true, members: map[string]memberState{}, broken: map[string]bool{},
		lateness: newHistogram(latenessBuckets)}
	var errs []error
	newCounter := func(name, desc string) counter {
		var c counter
		for _, meter := range meters {
			i, err := meter.Int64Counter(name, metric.WithDescription(desc))
			if err != nil {
				errs = append(errs, err)
			}
			c = append(c, i)
		}
		return c
	}
	m.sent = newCounter("wscanary.notifications.sent", "Notifications delivered, by kind (open, update, reply, notice).")
	m.failed = newCounter("wscanary.notifications.failed", "Failed notification attempts (each retry counts), by kind.")
	m.dropped = newCounter("wscanary.notifications.dropped",
		"Notifications given up on (undelivered for a day, a notifier removed, a receiver's 410), by kind.")
	m.skipped = newCounter("wscanary.runs.skipped", "Runs skipped because the previous run of the check was still going.")
	m.slackConn = newCounter("wscanary.slack.socket.connections",
		"Socket Mode connections opened to Slack (buttons), by whether it was a reconnection.")
	m.storeErrs = newCounter("wscanary.store.errors", "Store operations that failed, by operation.")
	gauge := func(name, desc string, cb func(o metric.Float64Observer)) {
		for _, meter := range meters {
			_, err := meter.Float64ObservableGauge(name, metric.WithDescription(desc),
				metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
					m.mu.Lock()
					defer m.mu.Unlock()
					cb(o)
					return nil
				}))
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	gauge("wscanary.store.healthy", "1 while the store takes writes, 0 while this daemon works from memory.", func(o metric.Float64Observer) {
		o.Observe(b2f(m.storeOK))
	})
	gauge("wscanary.notifier.broken", "1 while a notifier's messages are held for a refusal a person must fix (a revoked token, a missing channel).", func(o metric.Float64Observer) {
		for name, b := range m.broken {
			o.Observe(b2f(b), metric.WithAttributes(attribute.String("notifier", name)))
		}
	})
	gauge("wscanary.fleet.member.seen.timestamp", "When each fleet member last reported, unix seconds.", func(o metric.Float64Observer) {
		for name, s := range m.members {
			o.Observe(s.seen, metric.WithAttributes(attribute.String("member", name)))
		}
	})
	gauge("wscanary.fleet.member.up", "1 while a fleet member reports, 0 once it went silent.", func(o metric.Float64Observer) {
		for name, s := range m.members {
			o.Observe(b2f(!s.silent), metric.WithAttributes(attribute.String("member", name)))
		}
	})
	if otlp != nil {
		var err error
		if m.otlp, err = newOTLPSeries(meters[1], m); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("metrics: %w", errs[0])
	}
	return m, nil
}

// counter is one counter on every meter provider.
type counter []metric.Int64Counter

func (c counter) add(ctx context.Context, opts ...metric.AddOption) {
	for _, i := range c {
		i.Add(ctx, 1, opts...)
	}
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
		v = m.newAttemptSet(k)
	}
	set := v.(*attemptSet)
	set.hist.observe(seconds)
	set.count.Add(1)
	if m.otlp != nil {
		m.otlp.duration.Record(ctx, seconds, set.duration)
		m.otlp.attempts.Add(ctx, 1, set.attempts)
	}
}

// newAttemptSet finds (or makes) the histogram and counter an attempt of
// k updates, and keeps them as k's set: variants share a histogram,
// statuses of a class a counter.
func (m *Metrics) newAttemptSet(k attemptKey) *attemptSet {
	m.setsMu.Lock()
	defer m.setsMu.Unlock()
	if v, ok := m.attemptSets.Load(k); ok {
		return v.(*attemptSet)
	}
	dk := durationKey{k.check, k.vantage, k.route, k.transport, strconv.Itoa(k.status)}
	h, ok := m.durations.Load(dk)
	if !ok {
		h, _ = m.durations.LoadOrStore(dk, newHistogram(durationBuckets))
	}
	ck := countKey{k.check, k.vantage, k.route, k.transport, k.variant, statusClass(k.status)}
	c, ok := m.counts.Load(ck)
	if !ok {
		c, _ = m.counts.LoadOrStore(ck, new(atomic.Uint64))
	}
	set := &attemptSet{hist: h.(*histogram), count: c.(*atomic.Uint64)}
	if m.otlp != nil {
		set.duration = metric.WithAttributeSet(attribute.NewSet(attribute.String("check", k.check), attribute.String("vantage", k.vantage),
			attribute.String("route", k.route), attribute.String("transport", k.transport), attribute.Int("status", k.status)))
		set.attempts = metric.WithAttributeSet(attribute.NewSet(attribute.String("check", k.check), attribute.String("vantage", k.vantage),
			attribute.String("route", k.route), attribute.String("transport", k.transport), attribute.String("variant", k.variant),
			attribute.String("status_class", ck.class)))
	}
	m.attemptSets.Store(k, set)
	return set
}

// SeriesObserved records the last status and outcome of a series, for
// every series observed (failing or not, confirmed or not).
func (m *Metrics) SeriesObserved(check, vantage, route string, status int, outcome string) {
	if m == nil {
		return
	}
	st := m.state(seriesKey{check, vantage, route})
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
	m.incidents.Store(check, open)
}

// CertExpiry records when the certificate a series saw expires.
func (m *Metrics) CertExpiry(check, vantage, route string, at time.Time) {
	if m == nil || at.IsZero() {
		return
	}
	m.state(seriesKey{check, vantage, route}).cert.Store(at.Unix())
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
	forget := func(sm *sync.Map, of func(any) string) {
		sm.Range(func(k, _ any) bool {
			if of(k) == check {
				sm.Delete(k)
			}
			return true
		})
	}
	forget(&m.series, func(k any) string { return k.(seriesKey).check })
	m.setsMu.Lock()
	forget(&m.attemptSets, func(k any) string { return k.(attemptKey).check })
	forget(&m.durations, func(k any) string { return k.(durationKey).check })
	forget(&m.counts, func(k any) string { return k.(countKey).check })
	m.setsMu.Unlock()
	m.incidents.Delete(check)
	m.mu.Lock()
	delete(m.tokens, check)
	m.mu.Unlock()
}

// NotificationSent counts a delivered message.
func (m *Metrics) NotificationSent(ctx context.Context, check, kind, notifier string) {
	if m == nil {
		return
	}
	m.sent.add(ctx, metric.WithAttributes(attribute.String("check", check), attribute.String("kind", kind), attribute.String("notifier", notifier)))
}

// NotificationFailed counts a failed delivery attempt.
func (m *Metrics) NotificationFailed(ctx context.Context, kind, notifier string) {
	if m == nil {
		return
	}
	m.failed.add(ctx, metric.WithAttributes(attribute.String("kind", kind), attribute.String("notifier", notifier)))
}

// NotificationDropped counts a message given up on.
func (m *Metrics) NotificationDropped(ctx context.Context, kind, notifier string) {
	if m == nil {
		return
	}
	m.dropped.add(ctx, metric.WithAttributes(attribute.String("kind", kind), attribute.String("notifier", notifier)))
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
	m.storeErrs.add(ctx, metric.WithAttributes(attribute.String("op", op)))
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
	m.skipped.add(ctx, metric.WithAttributes(attribute.String("check", check)))
}

// SlackConnected counts a Socket Mode connection: count is 0 for the
// first, more for each reconnection.
func (m *Metrics) SlackConnected(count int) {
	if m == nil {
		return
	}
	m.slackConn.add(context.Background(), metric.WithAttributes(attribute.Bool("reconnect", count > 0)))
}

// Lateness records how late a scheduled run started.
func (m *Metrics) Lateness(ctx context.Context, seconds float64) {
	if m == nil {
		return
	}
	m.lateness.observe(seconds)
	if m.otlp != nil {
		m.otlp.lateness.Record(ctx, seconds)
	}
}
