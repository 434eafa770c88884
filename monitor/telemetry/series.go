package telemetry

import (
	"bufio"
	"math"
	"sort"
	"strconv"
	"sync/atomic"

	"github.com/wscanary/wscanary/monitor/report"
)

// The per-series families (a line or more per check x vantage x route)
// are kept here, in atomics, and written to /metrics straight from them.
//
// They used to be OpenTelemetry instruments read by the SDK's Prometheus
// exporter. At 30,000 checks (570,000 lines) one scrape built a protobuf
// object per line and took 12 s of CPU, nearly all of it the collector
// marking that garbage; at 100,000 checks it stalled the schedule for
// seconds. Written from here a scrape allocates nothing per line, and an
// attempt records with a few atomic adds and no lock (docs/architecture.md,
// section 2). The families and their labels are the ones the exporter
// wrote, label names in its (sorted) order, so dashboards and rules are
// unchanged. The schedule's lateness, recorded at every fire, is kept the
// same way.

// buckets are a histogram's upper bounds and their le labels, +Inf last.
type buckets struct {
	bounds []float64
	les    []string
}

func newBuckets(bounds ...float64) buckets {
	b := buckets{bounds: bounds}
	for _, v := range bounds {
		b.les = append(b.les, strconv.FormatFloat(v, 'g', -1, 64))
	}
	b.les = append(b.les, "+Inf")
	return b
}

var (
	// durationBuckets: the handshake's, seconds.
	durationBuckets = newBuckets(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
	// latenessBuckets: how late a run started, seconds.
	latenessBuckets = newBuckets(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)
)

// histogram counts observations per bucket (not cumulative: the last is
// above every bound) and keeps their sum, as float64 bits.
type histogram struct {
	buckets
	counts []atomic.Uint64
	sum    atomic.Uint64
}

func newHistogram(b buckets) *histogram {
	return &histogram{buckets: b, counts: make([]atomic.Uint64, len(b.les))}
}

func (h *histogram) observe(v float64) {
	h.counts[sort.SearchFloat64s(h.bounds, v)].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// durationKey labels wscanary_handshake_duration_seconds; the status is
// formatted once, when the series is first seen.
type durationKey struct {
	check, vantage, route, transport, status string
}

// countKey labels wscanary_attempts_total.
type countKey struct {
	check, vantage, route, transport, variant, class string
}

// expo writes the text exposition format (version 0.0.4) into a
// bufio.Writer, formatting numbers in a scratch buffer it reuses.
type expo struct {
	w   *bufio.Writer
	num []byte
}

func (e *expo) family(name, typ, help string) {
	e.w.WriteString("# HELP ")
	e.w.WriteString(name)
	e.w.WriteByte(' ')
	for i := 0; i < len(help); i++ {
		switch help[i] {
		case '\\':
			e.w.WriteString(`\\`)
		case '\n':
			e.w.WriteString(`\n`)
		default:
			e.w.WriteByte(help[i])
		}
	}
	e.w.WriteString("\n# TYPE ")
	e.w.WriteString(name)
	e.w.WriteByte(' ')
	e.w.WriteString(typ)
	e.w.WriteByte('\n')
}

// sample starts a sample line: the name and its suffix (_bucket, _sum,
// _count or ""), the label pairs (name, value, ...), and le when not "".
// Values are escaped: a check's name is the operator's text, and may hold
// quotes.
func (e *expo) sample(name, suffix, le string, pairs ...string) {
	e.w.WriteString(name)
	e.w.WriteString(suffix)
	if len(pairs) == 0 && le == "" {
		e.w.WriteByte(' ')
		return
	}
	e.w.WriteByte('{')
	for i := 0; i+1 < len(pairs); i += 2 {
		if i > 0 {
			e.w.WriteByte(',')
		}
		e.w.WriteString(pairs[i])
		e.w.WriteString(`="`)
		v := pairs[i+1]
		for j := 0; j < len(v); j++ {
			switch v[j] {
			case '\\':
				e.w.WriteString(`\\`)
			case '"':
				e.w.WriteString(`\"`)
			case '\n':
				e.w.WriteString(`\n`)
			default:
				e.w.WriteByte(v[j])
			}
		}
		e.w.WriteByte('"')
	}
	if le != "" {
		if len(pairs) > 0 {
			e.w.WriteByte(',')
		}
		e.w.WriteString(`le="`)
		e.w.WriteString(le)
		e.w.WriteByte('"')
	}
	e.w.WriteString("} ")
}

// value ends a sample line with a float.
func (e *expo) value(v float64) {
	switch {
	case math.IsInf(v, +1):
		e.w.WriteString("+Inf")
	case math.IsInf(v, -1):
		e.w.WriteString("-Inf")
	case math.IsNaN(v):
		e.w.WriteString("NaN")
	default:
		e.num = strconv.AppendFloat(e.num[:0], v, 'g', -1, 64)
		e.w.Write(e.num)
	}
	e.w.WriteByte('\n')
}

// count ends a sample line with an integer.
func (e *expo) count(v uint64) {
	e.num = strconv.AppendUint(e.num[:0], v, 10)
	e.w.Write(e.num)
	e.w.WriteByte('\n')
}

// histogram writes h's buckets (cumulative), sum and count.
func (e *expo) histogram(name string, h *histogram, pairs ...string) {
	var total uint64
	for i := range h.counts {
		total += h.counts[i].Load()
		e.sample(name, "_bucket", h.les[i], pairs...)
		e.count(total)
	}
	e.sample(name, "_sum", "", pairs...)
	e.value(math.Float64frombits(h.sum.Load()))
	e.sample(name, "_count", "", pairs...)
	e.count(total)
}

// writeSeries writes the per-series families, until failed says the
// writer below w failed. Ranging over a sync.Map sees every entry present
// for the whole range and takes no lock an attempt waits on.
func (m *Metrics) writeSeries(w *bufio.Writer, failed func() bool) {
	e := &expo{w: w, num: make([]byte, 0, 32)}

	e.family("wscanary_attempts_total", "counter", helpAttempts)
	m.counts.Range(func(k, v any) bool {
		c := k.(countKey)
		e.sample("wscanary_attempts_total", "", "", "check", c.check, "route", c.route, "status_class", c.class,
			"transport", c.transport, "vantage", c.vantage, "variant", c.variant)
		e.count(v.(*atomic.Uint64).Load())
		return !failed()
	})

	e.family("wscanary_handshake_duration_seconds", "histogram", helpDuration)
	m.durations.Range(func(k, v any) bool {
		d, h := k.(durationKey), v.(*histogram)
		e.histogram("wscanary_handshake_duration_seconds", h, "check", d.check, "route", d.route,
			"status", d.status, "transport", d.transport, "vantage", d.vantage)
		return !failed()
	})

	e.family("wscanary_schedule_lateness_seconds", "histogram", helpLateness)
	e.histogram("wscanary_schedule_lateness_seconds", m.lateness)

	e.family("wscanary_series_status", "gauge", helpStatus)
	m.eachRun(func(k seriesKey, status int64, _ string) bool {
		e.sample("wscanary_series_status", "", "", "check", k.check, "route", k.route, "vantage", k.vantage)
		e.value(float64(status))
		return !failed()
	})
	e.family("wscanary_series_success", "gauge", helpSuccess)
	m.eachRun(func(k seriesKey, _ int64, outcome string) bool {
		e.sample("wscanary_series_success", "", "", "check", k.check, "route", k.route, "vantage", k.vantage)
		e.value(success(outcome))
		return !failed()
	})
	e.family("wscanary_series_outcome", "gauge", helpOutcome)
	m.eachRun(func(k seriesKey, _ int64, outcome string) bool {
		e.sample("wscanary_series_outcome", "", "", "check", k.check, "outcome", outcome, "route", k.route, "vantage", k.vantage)
		e.value(1)
		return !failed()
	})
	e.family("wscanary_cert_expiry_timestamp", "gauge", helpCert)
	m.eachCert(func(k seriesKey, at int64) bool {
		e.sample("wscanary_cert_expiry_timestamp", "", "", "check", k.check, "route", k.route, "vantage", k.vantage)
		e.value(float64(at))
		return !failed()
	})

	e.family("wscanary_incident_open", "gauge", helpIncident)
	m.incidents.Range(func(k, v any) bool {
		e.sample("wscanary_incident_open", "", "", "check", k.(string))
		e.value(b2f(v.(bool)))
		return !failed()
	})

	e.family("wscanary_token_expiry_timestamp", "gauge", helpToken)
	m.mu.Lock()
	for c, at := range m.tokens {
		e.sample("wscanary_token_expiry_timestamp", "", "", "check", c)
		e.value(at)
	}
	m.mu.Unlock()
}

// eachRun calls fn with the last status and outcome of every series that
// recorded a run (a series whose certificate alone was seen has none),
// until fn returns false.
func (m *Metrics) eachRun(fn func(k seriesKey, status int64, outcome string) bool) {
	m.series.Range(func(k, v any) bool {
		status, outcome := v.(*seriesState).load()
		return outcome == "" || fn(k.(seriesKey), status, outcome)
	})
}

// eachCert calls fn with the certificate expiry of every series that saw
// one, until fn returns false.
func (m *Metrics) eachCert(fn func(k seriesKey, at int64) bool) {
	m.series.Range(func(k, v any) bool {
		at := v.(*seriesState).cert.Load()
		return at == 0 || fn(k.(seriesKey), at)
	})
}

const (
	helpAttempts = "Handshake attempts by status class, variants included."
	helpDuration = "Duration of WebSocket opening handshakes."
	helpStatus   = "Last HTTP status of each series (0: no answer), whether or not it fails."
	helpSuccess  = "1 when the series' last run upgraded (and passed send/expect), else 0, like probe_success."
	helpOutcome  = "1 for the outcome of the series' last run (upgraded, refused, rejected_after_open, no_answer)."
	helpCert     = "When the leaf certificate a series saw expires, unix seconds."
	helpIncident = "1 while the check has an open incident."
	helpToken    = "When the check's JWT expires (its exp claim), unix seconds."
	helpLateness = "How late a run started after its scheduled time."
)

// success is wscanary_series_success of an outcome.
func success(outcome string) float64 {
	return b2f(outcome == string(report.OutcomeUpgraded))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
