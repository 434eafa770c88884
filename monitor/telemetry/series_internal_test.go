package telemetry

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
)

// TestScrapeAllocatesNothingPerSeries: writing the per-series families
// allocates the same at 10,000 checks as at 100 (it was a protobuf object
// a line, gigabytes a scrape at 100,000 checks), and recording an attempt
// of a known series allocates no more than the boxing of its keys for the
// lock-free maps, however many series there are.
func TestScrapeAllocatesNothingPerSeries(t *testing.T) {
	type cost struct{ scrape, record float64 }
	measure := func(checks int) cost {
		m, err := NewMetrics(noop.NewMeterProvider(), nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for i := range checks {
			c := fmt.Sprintf("check-%05d", i)
			m.Attempt(ctx, c, "us", "cdn", "http1", "configured", 101, 0.01)
			m.SeriesObserved(c, "us", "cdn", 101, "upgraded")
			m.IncidentOpen(c, false)
			m.CertExpiry(c, "us", "cdn", time.Unix(1767225600, 0))
			m.TokenExpiry(c, time.Unix(1767225700, 0))
		}
		w := bufio.NewWriter(io.Discard)
		return cost{
			scrape: testing.AllocsPerRun(3, func() { m.writeSeries(w, func() bool { return false }) }),
			record: testing.AllocsPerRun(100, func() {
				m.Attempt(ctx, "check-00042", "us", "cdn", "http1", "configured", 101, 0.01)
				m.SeriesObserved("check-00042", "us", "cdn", 101, "upgraded")
				m.IncidentOpen("check-00042", true)
			}),
		}
	}
	small, large := measure(100), measure(10000)
	if large.scrape > small.scrape+4 {
		t.Errorf("a scrape allocates %.0f times at 10,000 checks, %.0f at 100", large.scrape, small.scrape)
	}
	if large.record != small.record || large.record > 3 {
		t.Errorf("recording an attempt allocates %.0f times among 10,000 checks, %.0f among 100 (at most 3: a key boxed per map)",
			large.record, small.record)
	}
	t.Logf("allocations: a scrape %.0f (100 checks) and %.0f (10,000), an attempt %.0f", small.scrape, large.scrape, large.record)
}

// TestForgetLeavesNoStaleSet: a reload forgets a check while runs of it
// are still finishing. No attempt set may survive that points at a
// histogram or counter Forget took out of what /metrics writes: every
// later attempt of the series (the check added back) would vanish.
func TestForgetLeavesNoStaleSet(t *testing.T) {
	ctx := context.Background()
	stale := func(m *Metrics) (n int) {
		m.attemptSets.Range(func(k, v any) bool {
			a, s := k.(attemptKey), v.(*attemptSet)
			h, okH := m.durations.Load(durationKey{a.check, a.vantage, a.route, a.transport, strconv.Itoa(a.status)})
			c, okC := m.counts.Load(countKey{a.check, a.vantage, a.route, a.transport, a.variant, statusClass(a.status)})
			if !okH || !okC || h.(*histogram) != s.hist || c.(*atomic.Uint64) != s.count {
				n++
			}
			return true
		})
		return n
	}
	for trial := range 2000 {
		m, err := NewMetrics(noop.NewMeterProvider(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for status := range 50 { // other series: Forget's ranges take a while
			m.Attempt(ctx, "other", "us", "cdn", "http1", "configured", 100+status, 0.01)
		}
		m.Attempt(ctx, "chat", "us", "cdn", "http1", "configured", 101, 0.01)
		done := make(chan struct{})
		go func() { defer close(done); m.Forget("chat") }()
		for running := true; running; {
			m.Attempt(ctx, "chat", "us", "cdn", "http1", "configured", 403, 0.01)
			select {
			case <-done:
				running = false
			default:
			}
		}
		if n := stale(m); n > 0 {
			t.Fatalf("trial %d: %d attempt sets point at what /metrics no longer writes", trial, n)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                          false,
		"gzip":                      true,
		"GZIP":                      true,
		"deflate, gzip;q=0.5":       true,
		"gzip;q=0":                  false,
		"gzip; Q=0.000":             false,
		"identity, gzip ; q = 0.1 ": true,
		"x-gzip":                    false,
		"br;q=1, *;q=0.1":           false,
		"gzip;level=1":              true,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}
