package runner_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/runner"
	"github.com/wscanary/wscanary/monitor/telemetry"
	"github.com/wscanary/wscanary/monitor/testbed"
)

const probeCanary = "CANARY-span-token-31337"

// TestRunSpans: one wscanary.run span, one websocket.handshake child per
// attempt (variants included) with the attributes docs/observability.md lists, phase
// children, Error status on failure, the trace id the server saw, and no
// secret in any attribute.
func TestRunSpans(t *testing.T) {
	t.Parallel()
	o, err := testbed.NewOrigin(testbed.OriginOptions{Behavior: testbed.Behavior{Token: "other", TokenIn: testbed.TokenInQuery}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	cfg, err := config.LoadBytes("m.yaml", []byte("vantage: us\n"), map[string][]byte{"c.yaml": []byte(fmt.Sprintf(
		"checks:\n  - name: chat\n    url: ws://%s/ws\n    schedule: \"@every 1m\"\n    origin: https://app.test\n    token: {value: %s}\n",
		o.Addr(), probeCanary))}, config.Options{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Vantage: "us", Env: func(string) string { return "" },
		SpanProcessors: []sdktrace.SpanProcessor{rec}})
	if err != nil {
		t.Fatal(err)
	}
	r := runner.New(cfg, tel)
	rep := r.Run(context.Background(), &cfg.Checks[0])
	if rep.OK || rep.Diagnosis.Cause != report.CauseAuthRejected {
		t.Fatalf("report %+v", rep.Diagnosis)
	}
	spans := rec.Ended()
	var run sdktrace.ReadOnlySpan
	handshakes := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		for _, kv := range s.Attributes() {
			if strings.Contains(kv.Value.String(), probeCanary) {
				t.Fatalf("span %s attribute %s carries the token", s.Name(), kv.Key)
			}
		}
		switch s.Name() {
		case "wscanary.run":
			run = s
		case "websocket.handshake":
			handshakes[s.SpanContext().SpanID().String()] = s
		}
	}
	if run == nil || run.SpanContext().TraceID().String() != rep.TraceID || run.Status().Code != codes.Error {
		t.Fatalf("run span %v", run)
	}
	if len(handshakes) != len(rep.Attempts) || len(rep.Attempts) < 3 {
		t.Fatalf("%d handshake spans for %d attempts", len(handshakes), len(rep.Attempts))
	}
	seen := map[string]bool{}
	for _, q := range o.Requests() {
		seen[q.Traceparent] = true
	}
	for _, a := range rep.Attempts {
		var hs sdktrace.ReadOnlySpan
		for _, s := range handshakes {
			if s.SpanContext().TraceID().String() == a.TraceID && attr(s, "wscanary.variant") == string(a.Variant) {
				hs = s
			}
		}
		if hs == nil || hs.Parent().SpanID() != run.SpanContext().SpanID() {
			t.Fatalf("attempt %s: no handshake span under the run span", a.Variant)
		}
		want := map[string]string{"wscanary.check": "chat", "wscanary.vantage": "us", "wscanary.route": "cdn",
			"http.response.status_code": fmt.Sprint(a.Status), "server.address": "127.0.0.1", "url.full": a.URL}
		for k, v := range want {
			if got := attr(hs, k); got != v {
				t.Errorf("%s: %s = %q, want %q", a.Variant, k, got, v)
			}
		}
		if attr(hs, "wscanary.cause") == "" || attr(hs, "network.peer.address") != "127.0.0.1" {
			t.Errorf("%s: cause/peer attributes missing", a.Variant)
		}
		if !a.OK && hs.Status().Code != codes.Error {
			t.Errorf("%s: failed attempt span status %v", a.Variant, hs.Status())
		}
		tp := fmt.Sprintf("00-%s-%s-01", a.TraceID, hs.SpanContext().SpanID())
		if !seen[tp] {
			t.Errorf("%s: the server never saw traceparent %s", a.Variant, tp)
		}
		children := map[string]bool{}
		for _, s := range spans {
			if s.Parent().SpanID() == hs.SpanContext().SpanID() {
				children[s.Name()] = true
			}
		}
		if !children["connect"] || !children["http.upgrade"] {
			t.Errorf("%s: phase spans %v", a.Variant, children)
		}
	}
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// TestDNSErrorAndResolution: a name the (local, real) DNS server does not
// know is a dns_error; one it knows resolves and upgrades, with the DNS
// phase timed.
func TestDNSErrorAndResolution(t *testing.T) {
	t.Parallel()
	o, err := testbed.NewOrigin(testbed.OriginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	dns, err := testbed.NewDNS(map[string]string{"chat.test": "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	_, port, _ := strings.Cut(o.Addr(), ":")
	cfg, err := config.LoadBytes("m.yaml", []byte("vantage: us\n"), map[string][]byte{"c.yaml": []byte(
		"checks:\n  - {name: known, url: \"ws://chat.test:" + port + "/ws\", schedule: \"@every 1m\"}\n" +
			"  - {name: unknown, url: \"ws://nowhere.test:" + port + "/ws\", schedule: \"@every 1m\"}\n")},
		config.Options{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	r := runner.New(cfg, nil)
	r.Prober.Resolver = dns.Resolver()
	known := r.Run(context.Background(), &cfg.Checks[0])
	if !known.OK || known.Attempts[0].TimingsMS.DNS <= 0 {
		t.Fatalf("known name: %+v", known.Attempts[0])
	}
	unknown := r.Run(context.Background(), &cfg.Checks[1])
	if unknown.Diagnosis.Cause != report.CauseDNSError || unknown.Attempts[0].ErrorClass() != report.ErrDNS ||
		!strings.Contains(unknown.Attempts[0].Error, "nowhere.test") {
		t.Fatalf("unknown name: %+v %+v", unknown.Diagnosis, unknown.Attempts[0])
	}
}
