package telemetry

import (
	"bufio"
	"context"
	"fmt"
	"io"
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
			scrape: testing.AllocsPerRun(3, func() { m.writeSeries(w) }),
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
