package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/wscanary/wscanary/monitor/testbed"
)

// collectorBinary finds the collector scripts/collector/build.sh built.
func collectorBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WSCANARY_OTELCOL"); p != "" {
		return p
	}
	out, err := exec.Command("../../scripts/collector/build.sh", "--path").Output()
	if err != nil {
		t.Fatalf("scripts/collector/build.sh --path: %v", err)
	}
	p := strings.TrimSpace(string(out))
	if _, err := os.Stat(p); err != nil {
		requireTool(t, fmt.Errorf("no OpenTelemetry Collector at %s: run scripts/collector/build.sh", p), "(none: built by scripts/collector/build.sh)")
	}
	return p
}

// otlpSink receives what the collector forwards over OTLP/HTTP.
type otlpSink struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	res   []*commonpb.KeyValue
	raw   []byte
}

func (s *otlpSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.raw = append(s.raw, b...)
	for _, rs := range req.ResourceSpans {
		s.res = append(s.res, rs.GetResource().GetAttributes()...)
		for _, ss := range rs.ScopeSpans {
			s.spans = append(s.spans, ss.Spans...)
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Write(out)
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		v := kv.GetValue()
		switch {
		case v.GetStringValue() != "":
			m[kv.Key] = v.GetStringValue()
		default:
			m[kv.Key] = fmt.Sprint(v.GetIntValue())
		}
	}
	return m
}

// TestTracesThroughRealCollector: `wscanary check` with OTEL_* pointing at
// a real OpenTelemetry Collector; the spans arrive with their attributes
// and without the token.
func TestTracesThroughRealCollector(t *testing.T) {
	col := collectorBinary(t)
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	sink := &otlpSink{}
	sinkSrv := httptest.NewServer(sink)
	defer sinkSrv.Close()
	recv, _ := testbed.FreeAddr()
	dir := t.TempDir()
	colCfg := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
processors:
  batch:
    timeout: 100ms
exporters:
  debug:
    verbosity: basic
  otlphttp:
    endpoint: %s
    compression: none
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlphttp, debug]
`, recv, sinkSrv.URL)
	os.WriteFile(filepath.Join(dir, "otelcol.yaml"), []byte(colCfg), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, col, "--config", filepath.Join(dir, "otelcol.yaml"))
	colLog := &testbed.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = colLog, colLog
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()
	if err := testbed.WaitListening(recv, 30*time.Second); err != nil {
		t.Fatalf("collector did not listen: %v\n%s", err, colLog.String())
	}

	origin := startOrigin(t, testbed.Behavior{Token: "other"}, nil)
	path := writeConfig(t, "vantage: collector-test\nlisten: \"\"\n", fmt.Sprintf(
		"checks:\n  - name: chat\n    url: ws://%s/ws?room=1\n    schedule: \"@every 1m\"\n    token: {value: %s}\n", origin.Addr(), canaryToken))
	run := exec.Command(bin, "check", "--config", path, "--output", "json")
	run.Env = append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+recv, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_TRACES_EXPORTER=otlp", "OTEL_METRICS_EXPORTER=none", "OTEL_RESOURCE_ATTRIBUTES=deployment.environment=test")
	out, err := run.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFailed {
		t.Fatalf("wscanary check: %v (want exit 1)\n%s", err, out)
	}
	rep := reports(t, string(out))[0]

	var hs *tracepb.Span
	waitFor(t, "spans at the collector's far end", 20*time.Second, func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		for _, s := range sink.spans {
			if s.Name == "websocket.handshake" && attrs(s.Attributes)["wscanary.variant"] == "configured" {
				hs = s
			}
		}
		return hs != nil
	})
	sink.mu.Lock()
	defer sink.mu.Unlock()
	a := attrs(hs.Attributes)
	want := map[string]string{"wscanary.check": "chat", "wscanary.vantage": "collector-test", "wscanary.route": "cdn",
		"wscanary.variant": "configured", "http.response.status_code": "403", "url.full": rep.Attempts[0].URL, "wscanary.hop": "target"}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("span attribute %s = %q, want %q", k, a[k], v)
		}
	}
	if fmt.Sprintf("%x", hs.TraceId) != rep.Attempts[0].TraceID {
		t.Errorf("span trace id %x, report %s", hs.TraceId, rep.Attempts[0].TraceID)
	}
	res := attrs(sink.res)
	if res["service.name"] != "wscanary" || res["wscanary.vantage"] != "collector-test" || res["deployment.environment"] != "test" {
		t.Errorf("resource %v", res)
	}
	names := map[string]bool{}
	for _, s := range sink.spans {
		names[s.Name] = true
	}
	for _, n := range []string{"wscanary.run", "websocket.handshake", "connect", "http.upgrade"} {
		if !names[n] {
			t.Errorf("no %s span arrived (got %v)", n, names)
		}
	}
	if strings.Contains(string(sink.raw), canaryToken) {
		t.Fatal("the token reached the collector")
	}
	t.Logf("exported span %s trace %x attributes %v", hs.Name, hs.TraceId, a)
}
