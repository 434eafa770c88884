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
// section 2). The families and their labels are the ones the exporter wrote,
// label names in its (sorted) order, so dashboards and rules are unchanged.

// durationBounds are the handshake histogram's upper bounds, seconds.
var durationBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// histogram counts observations per bucket (not cumulative: the last is
// above every bound) and keeps their sum, as float64 bits.
type histogram struct {
	counts [12]atomic.Uint64
	sum    atomic.Uint64
	status string // its status label, formatted once
}

func (h *histogram) observe(v float64) {
	h.counts[sort.SearchFloat64s(durationBounds, v)].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// durationKey labels wscanary_handshake_duration_seconds.
type durationKey struct {
	check, vantage, route, transport string
	status                           int
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

// labels writes `name{k="v",...` (without the closing brace, so a caller
// can add le), from pairs of name and value. Values are escaped: a
// check's name is the operator's text, and may hold quotes.
func (e *expo) labels(name string, pairs ...string) {
	e.w.WriteString(name)
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
}

// value ends a sample line: the closing brace and the value.
func (e *expo) value(v float64) {
	e.w.WriteString("} ")
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

func (e *expo) count(v uint64) {
	e.w.WriteString("} ")
	e.num = strconv.AppendUint(e.num[:0], v, 10)
	e.w.Write(e.num)
	e.w.WriteByte('\n')
}

// le writes a bucket's bound label after the others.
func (e *expo) le(bound float64) {
	e.w.WriteString(`,le="`)
	if math.IsInf(bound, +1) {
		e.w.WriteString("+Inf")
	} else {
		e.num = strconv.AppendFloat(e.num[:0], bound, 'g', -1, 64)
		e.w.Write(e.num)
	}
	e.w.WriteByte('"')
}

// writeSeries writes the per-series families. Ranging over a sync.Map
// sees every entry present for the whole range and takes no lock an
// attempt waits on.
func (m *Metrics) writeSeries(w *bufio.Writer) {
	e := &expo{w: w, num: make([]byte, 0, 32)}

	e.family("wscanary_attempts_total", "counter", "Handshake attempts by status class, variants included.")
	m.counts.Range(func(k, v any) bool {
		c := k.(countKey)
		e.labels("wscanary_attempts_total", "check", c.check, "route", c.route, "status_class", c.class,
			"transport", c.transport, "vantage", c.vantage, "variant", c.variant)
		e.count(v.(*atomic.Uint64).Load())
		return true
	})

	e.family("wscanary_handshake_duration_seconds", "histogram", "Duration of WebSocket opening handshakes.")
	m.durations.Range(func(k, v any) bool {
		d, h := k.(durationKey), v.(*histogram)
		var total uint64
		for i := range h.counts {
			total += h.counts[i].Load()
			e.labels("wscanary_handshake_duration_seconds_bucket", "check", d.check, "route", d.route,
				"status", h.status, "transport", d.transport, "vantage", d.vantage)
			if i < len(durationBounds) {
				e.le(durationBounds[i])
			} else {
				e.le(math.Inf(+1))
			}
			e.count(total)
		}
		e.labels("wscanary_handshake_duration_seconds_sum", "check", d.check, "route", d.route,
			"status", h.status, "transport", d.transport, "vantage", d.vantage)
		e.value(math.Float64frombits(h.sum.Load()))
		e.labels("wscanary_handshake_duration_seconds_count", "check", d.check, "route", d.route,
			"status", h.status, "transport", d.transport, "vantage", d.vantage)
		e.count(total)
		return true
	})

	e.family("wscanary_series_status", "gauge", helpStatus)
	m.series.Range(func(k, v any) bool {
		s, st := k.(seriesKey), v.(*seriesState)
		if _, o := st.load(); o == "" {
			return true // a certificate seen, no run recorded yet
		}
		e.labels("wscanary_series_status", "check", s.check, "route", s.route, "vantage", s.vantage)
		e.value(float64(st.status.Load()))
		return true
	})
	e.family("wscanary_series_success", "gauge", helpSuccess)
	m.series.Range(func(k, v any) bool {
		s, st := k.(seriesKey), v.(*seriesState)
		_, o := st.load()
		if o == "" {
			return true
		}
		e.labels("wscanary_series_success", "check", s.check, "route", s.route, "vantage", s.vantage)
		e.value(success(o))
		return true
	})
	e.family("wscanary_series_outcome", "gauge", helpOutcome)
	m.series.Range(func(k, v any) bool {
		s, st := k.(seriesKey), v.(*seriesState)
		_, o := st.load()
		if o == "" {
			return true
		}
		e.labels("wscanary_series_outcome", "check", s.check, "outcome", o, "route", s.route, "vantage", s.vantage)
		e.value(1)
		return true
	})
	e.family("wscanary_cert_expiry_timestamp", "gauge", helpCert)
	m.series.Range(func(k, v any) bool {
		s, st := k.(seriesKey), v.(*seriesState)
		if at := st.cert.Load(); at != 0 {
			e.labels("wscanary_cert_expiry_timestamp", "check", s.check, "route", s.route, "vantage", s.vantage)
			e.value(float64(at))
		}
		return true
	})

	e.family("wscanary_incident_open", "gauge", helpIncident)
	m.incidents.Range(func(k, v any) bool {
		e.labels("wscanary_incident_open", "check", k.(string))
		e.value(b2f(v.(bool)))
		return true
	})

	e.family("wscanary_token_expiry_timestamp", "gauge", helpToken)
	m.mu.Lock()
	for c, at := range m.tokens {
		e.labels("wscanary_token_expiry_timestamp", "check", c)
		e.value(at)
	}
	m.mu.Unlock()
}

const (
	helpStatus   = "Last HTTP status of each series (0: no answer), whether or not it fails."
	helpSuccess  = "1 when the series' last run upgraded (and passed send/expect), else 0, like probe_success."
	helpOutcome  = "1 for the outcome of the series' last run (upgraded, refused, rejected_after_open, no_answer)."
	helpCert     = "When the leaf certificate a series saw expires, unix seconds."
	helpIncident = "1 while the check has an open incident."
	helpToken    = "When the check's JWT expires (its exp claim), unix seconds."
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
