package probe_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/wscanary/wscanary/monitor/probe"
)

// benchAttempt measures one successful handshake against a local server.
// Compare BenchmarkAttempt and BenchmarkAttemptTraced for the CPU cost of
// tracing (go test -bench Attempt -benchmem ./monitor/probe).
func benchAttempt(b *testing.B, p *probe.Prober) {
	srv := newServer(b, false)
	u := wsURL(b, srv.URL, "/ws")
	b.ReportAllocs()
	for b.Loop() {
		if a := p.Attempt(context.Background(), probe.Request{URL: u}); !a.OK {
			b.Fatalf("%+v", a)
		}
	}
}

func BenchmarkAttempt(b *testing.B) { benchAttempt(b, &probe.Prober{}) }

func BenchmarkAttemptTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider() // spans recorded, nothing exported
	defer tp.Shutdown(context.Background())
	benchAttempt(b, &probe.Prober{Tracer: tp.Tracer("bench")})
}

// benchAttemptTLS measures one successful wss:// handshake made as a
// client profile: BenchmarkAttemptTLS/chrome (uTLS, the browser's hello)
// against BenchmarkAttemptTLS/wscanary (Go's crypto/tls).
func BenchmarkAttemptTLS(b *testing.B) {
	srv := newServer(b, true)
	u := wsURL(b, srv.URL, "/ws")
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	for _, c := range probe.Clients {
		b.Run(string(c), func(b *testing.B) {
			p := &probe.Prober{}
			b.ReportAllocs()
			for b.Loop() {
				a := p.Attempt(context.Background(), probe.Request{URL: u, Client: c, TLS: &tls.Config{RootCAs: pool, ServerName: "example.com"}})
				if !a.OK {
					b.Fatalf("%+v", a)
				}
			}
		})
	}
}
