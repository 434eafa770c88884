package telemetry_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/wscanary/wscanary/monitor/telemetry"
	"github.com/wscanary/wscanary/monitor/testbed"
)

func noEnv(string) string { return "" }

func TestSetupWithoutExportersIsQuietAndTraces(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	start := time.Now()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{ServiceVersion: "test", Vantage: "us", Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Setup took %v with nothing to connect to", d)
	}
	_, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "x")
	defer span.End()
	if !span.SpanContext().HasTraceID() {
		t.Fatal("spans must carry trace ids even without an exporter")
	}
	// Nothing takes the spans: they record nothing (no attributes built
	// for no one), and say so to the targets (not sampled).
	if span.IsRecording() || span.SpanContext().IsSampled() {
		t.Fatal("spans are recorded with nowhere to go")
	}
	rec := tracetest.NewSpanRecorder()
	withRecorder, err := telemetry.Setup(context.Background(), telemetry.Options{Vantage: "us", Env: noEnv, SpanProcessors: []sdktrace.SpanProcessor{rec}})
	if err != nil {
		t.Fatal(err)
	}
	defer withRecorder.Shutdown(context.Background())
	_, span = withRecorder.TracerProvider.Tracer("t").Start(context.Background(), "x")
	span.End()
	if !span.SpanContext().IsSampled() || len(rec.Ended()) != 1 {
		t.Fatal("with a span processor every span is sampled and recorded")
	}
}

// setup is telemetry with no exporter configured, shut down at the end of
// the test.
func setup(t *testing.T) *telemetry.Telemetry {
	t.Helper()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Vantage: "us", Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	return tel
}

// scrape returns the /metrics text.
func scrape(t *testing.T, tel *telemetry.Telemetry) string {
	t.Helper()
	srv := httptest.NewServer(tel.Handler)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestMetricsOnPrometheusEndpoint(t *testing.T) {
	tel := setup(t)
	ctx := context.Background()
	m := tel.Metrics
	m.Attempt(ctx, "chat", "us", "cdn", "http1", "configured", 403, 0.041)
	m.Attempt(ctx, "chat", "us", "cdn", "http1", "configured", 403, 0.043)
	m.Attempt(ctx, "chat", "us", "cdn", "http1", "no-origin", 101, 0.02)
	m.SeriesObserved("chat", "us", "cdn", 403, "refused")
	m.SeriesObserved("gone", "us", "cdn", 101, "upgraded")
	m.Forget("gone")
	m.IncidentOpen("chat", true)
	m.CertExpiry("chat", "us", "cdn", time.Unix(1767225600, 0))
	m.TokenExpiry("chat", time.Unix(1767225700, 0))
	m.NotificationSent(ctx, "chat", "open", "slack")
	m.NotificationFailed(ctx, "update", "pager")
	m.StoreError(ctx, "record")
	m.StoreHealthy(false)
	m.Member("eu", time.Unix(1767225800, 0), true)
	m.RunSkipped(ctx, "chat")
	m.Lateness(ctx, 0.012)
	text := scrape(t, tel)
	for _, re := range []string{
		`wscanary_attempts_total\{check="chat",route="cdn",status_class="4xx",transport="http1",vantage="us",variant="configured"\} 2`,
		`wscanary_attempts_total\{check="chat",route="cdn",status_class="1xx",transport="http1",vantage="us",variant="no-origin"\} 1`,
		`wscanary_handshake_duration_seconds_count\{check="chat",route="cdn",status="403",transport="http1",vantage="us"\} 2`,
		`wscanary_series_status\{check="chat",route="cdn",vantage="us"\} 403`,
		`wscanary_series_success\{check="chat",route="cdn",vantage="us"\} 0`,
		`wscanary_series_outcome\{check="chat",outcome="refused",route="cdn",vantage="us"\} 1`,
		`wscanary_incident_open\{check="chat"\} 1`,
		`wscanary_cert_expiry_timestamp\{check="chat",route="cdn",vantage="us"\} 1\.7672256e\+09`,
		`wscanary_token_expiry_timestamp\{check="chat"\} 1\.7672257e\+09`,
		`wscanary_notifications_sent_total\{check="chat",kind="open",notifier="slack"\} 1`,
		`wscanary_notifications_failed_total\{kind="update",notifier="pager"\} 1`,
		`wscanary_store_errors_total\{op="record"\} 1`,
		`wscanary_store_healthy(\{\})? 0`,
		`wscanary_fleet_member_up\{member="eu"\} 0`,
		`wscanary_runs_skipped_total\{check="chat"\} 1`,
		`wscanary_schedule_lateness_seconds_count(\{\})? 1`,
	} {
		if !regexp.MustCompile(`(?m)^` + re).MatchString(text) {
			t.Errorf("/metrics lacks %s", re)
		}
	}
	if strings.Contains(text, `check="gone"`) {
		t.Error("a forgotten series is still exported")
	}
	for _, bad := range []string{"url=", "error=", "ws://", "wss://"} {
		if strings.Contains(text, bad) {
			t.Errorf("unbounded label %q in /metrics", bad)
		}
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *telemetry.Metrics
	m.Attempt(context.Background(), "c", "v", "cdn", "http1", "configured", 101, 0.1)
	m.SeriesObserved("c", "v", "cdn", 101, "upgraded")
	var tel *telemetry.Telemetry
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestMetricsAtScale: 10,000 checks from three vantages on two routes is
// 60,000 series; none may fold into otel_metric_overflow (the SDK's
// default limit is 2,000 per instrument). Go runtime and process metrics
// are exported beside ours.
func TestMetricsAtScale(t *testing.T) {
	tel := setup(t)
	ctx := context.Background()
	const checks = 10000
	for i := range checks {
		check := fmt.Sprintf("check-%05d", i)
		for _, v := range []string{"us", "eu", "ap"} {
			for _, r := range []string{"cdn", "direct"} {
				tel.Metrics.SeriesObserved(check, v, r, 101, "upgraded")
				tel.Metrics.Attempt(ctx, check, v, r, "http1", "configured", 101, 0.01)
			}
		}
	}
	text := scrape(t, tel)
	if strings.Contains(text, "otel_metric_overflow") {
		t.Fatal("series folded into otel_metric_overflow")
	}
	if n := strings.Count(text, "\nwscanary_series_status{"); n != checks*6 {
		t.Fatalf("%d series status lines, want %d", n, checks*6)
	}
	if n := strings.Count(text, "\nwscanary_attempts_total{"); n != checks*6 {
		t.Fatalf("%d attempt counters, want %d", n, checks*6)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if !strings.Contains(text, "\n"+name+" ") {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

// TestExpositionParsesAndRoundTrips: /metrics is one valid text
// exposition (each family once, promtool's lint clean), compressed when
// asked, and what it says of a histogram and of a hostile check name is
// what was recorded.
func TestExpositionParsesAndRoundTrips(t *testing.T) {
	tel := setup(t)
	ctx := context.Background()
	m := tel.Metrics
	const hostile = "we\"ird\\name\nnext line"
	for _, d := range []float64{0.003, 0.041, 0.043, 7, 30} {
		m.Attempt(ctx, "chat", "us", "cdn", "http1", "configured", 403, d)
	}
	m.Attempt(ctx, hostile, "us", "cdn", "h2", "configured", 101, 0.02)
	m.SeriesObserved(hostile, "us", "cdn", 101, "upgraded")
	m.IncidentOpen(hostile, false)
	m.CertExpiry(hostile, "us", "cdn", time.Unix(1767225600, 0))
	m.NotificationSent(ctx, "chat", "open", "slack")

	srv := httptest.NewServer(tel.Handler)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q for a scraper that takes gzip", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	ours := func(text string) string { // the runtime's figures move between scrapes
		var b strings.Builder
		for line := range strings.Lines(text) {
			if strings.HasPrefix(line, "wscanary_") {
				b.WriteString(line)
			}
		}
		return b.String()
	}
	if plain := scrape(t, tel); ours(plain) != ours(string(text)) {
		t.Errorf("plain and gzip expositions differ:\n%s\n%s", ours(plain), ours(string(text)))
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	hist := fams["wscanary_handshake_duration_seconds"]
	if hist == nil || hist.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("no handshake histogram: %v", hist)
	}
	var chat *dto.Histogram
	var names []string
	for _, mt := range hist.Metric {
		for _, l := range mt.Label {
			if l.GetName() == "check" {
				names = append(names, l.GetValue())
				if l.GetValue() == "chat" {
					chat = mt.Histogram
				}
			}
		}
	}
	if !slices.Contains(names, hostile) {
		t.Errorf("the hostile check name did not round-trip: %q", names)
	}
	if chat == nil || chat.GetSampleCount() != 5 || math.Abs(chat.GetSampleSum()-37.087) > 1e-9 {
		t.Fatalf("chat's histogram: %v", chat)
	}
	want := map[float64]uint64{0.005: 1, 0.025: 1, 0.05: 3, 5: 3, 10: 4}
	for _, b := range chat.Bucket {
		if n, ok := want[b.GetUpperBound()]; ok && b.GetCumulativeCount() != n {
			t.Errorf("bucket le=%g holds %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), n)
		}
	}
	if fams["wscanary_notifications_sent_total"] == nil || fams["go_goroutines"] == nil || fams["wscanary_incident_open"] == nil {
		t.Error("families missing from the exposition")
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testbed.MissingTool(t, fmt.Errorf("promtool (the Debian package prometheus, which scripts/test installs): %w", err))
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestOTLPGetsEveryFamilyOnce: with an OTLP metrics exporter the
// per-series families (kept outside the SDK for /metrics) still reach it,
// each once, beside the SDK's own instruments and the Go runtime's that
// OTEL_METRICS_PRODUCERS=prometheus adds (once: one reader).
func TestOTLPGetsEveryFamilyOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	var points int
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req colmetrics.ExportMetricsServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, rm := range req.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, mt := range sm.Metrics {
					seen[mt.Name]++
					if h := mt.GetHistogram(); h != nil && mt.Name == "wscanary.handshake.duration" {
						for _, dp := range h.DataPoints {
							points += int(dp.GetCount())
						}
					}
				}
			}
		}
	}))
	defer sink.Close()
	t.Setenv("OTEL_METRICS_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", sink.URL+"/v1/metrics")
	t.Setenv("OTEL_METRICS_PRODUCERS", "prometheus")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Vantage: "us"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m := tel.Metrics
	m.Attempt(ctx, "chat", "us", "cdn", "http1", "configured", 403, 0.041)
	m.Attempt(ctx, "chat", "us", "cdn", "http1", "no-origin", 403, 0.043)
	m.SeriesObserved("chat", "us", "cdn", 403, "refused")
	m.IncidentOpen("chat", true)
	m.NotificationSent(ctx, "chat", "open", "slack")
	m.Lateness(ctx, 0.002)
	if err := tel.Shutdown(ctx); err != nil { // flushes both readers
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"wscanary.handshake.duration", "wscanary.attempts", "wscanary.series.status",
		"wscanary.series.outcome", "wscanary.incident.open", "wscanary.notifications.sent", "wscanary.schedule.lateness", "go_goroutines"} {
		if seen[name] != 1 {
			t.Errorf("%s exported %d times, want once (all: %v)", name, seen[name], seen)
		}
	}
	if points != 2 {
		t.Errorf("the exported histogram counts %d attempts, want 2", points)
	}
}
