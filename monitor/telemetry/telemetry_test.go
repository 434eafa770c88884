package telemetry_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/wscanary/wscanary/monitor/telemetry"
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
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Vantage: "us", Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
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
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Vantage: "us", Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
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
