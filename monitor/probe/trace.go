package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/wscanary/wscanary/monitor/report"
)

// recorder collects the phases of one attempt from net/http/httptrace. The
// hooks can fire on the Transport's goroutines, hence the mutex.
type recorder struct {
	mu                    sync.Mutex
	start, done           time.Time
	dnsStart, dnsDone     time.Time
	connStart, connDone   time.Time
	tlsStart, tlsDone     time.Time
	proxyStart, proxyDone time.Time
	wrote, firstByte      time.Time
	peer                  string
	certs                 []*x509.Certificate
	ja4                   string // of the ClientHello sent
	// h2 is the server's answer to an HTTP/2 extended CONNECT.
	h2                      *http.Response
	dnsErr, connErr, tlsErr error
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

func (r *recorder) withTrace(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { r.set(&r.dnsStart) },
		DNSDone: func(i httptrace.DNSDoneInfo) {
			r.set(&r.dnsDone)
			r.mu.Lock()
			r.dnsErr = i.Err
			r.mu.Unlock()
		},
		ConnectStart: func(string, string) { r.setOnce(&r.connStart) },
		ConnectDone: func(_, _ string, err error) {
			r.set(&r.connDone)
			r.mu.Lock()
			r.connErr = err
			r.mu.Unlock()
		},
		TLSHandshakeStart: func() { r.set(&r.tlsStart) },
		TLSHandshakeDone: func(s tls.ConnectionState, err error) {
			r.set(&r.tlsDone)
			r.mu.Lock()
			r.tlsErr = err
			if len(s.PeerCertificates) > 0 {
				r.certs = s.PeerCertificates
			}
			r.mu.Unlock()
		},
		WroteRequest:         func(httptrace.WroteRequestInfo) { r.set(&r.wrote) },
		GotFirstResponseByte: func() { r.set(&r.firstByte) },
	})
}

func (r *recorder) set(t *time.Time) {
	r.mu.Lock()
	*t = time.Now()
	r.mu.Unlock()
}

// setOnce keeps the first start when a resolver tries several addresses.
func (r *recorder) setOnce(t *time.Time) {
	r.mu.Lock()
	if t.IsZero() {
		*t = time.Now()
	}
	r.mu.Unlock()
}

func (r *recorder) setPeer(addr string) {
	r.mu.Lock()
	r.peer = addr
	r.mu.Unlock()
}

func span(a, b time.Time) float64 {
	if a.IsZero() || b.IsZero() || b.Before(a) {
		return 0
	}
	return ms(b.Sub(a))
}

func (r *recorder) timings() report.Timings {
	r.mu.Lock()
	defer r.mu.Unlock()
	return report.Timings{
		DNS:       span(r.dnsStart, r.dnsDone),
		Connect:   span(r.connStart, r.connDone),
		TLS:       span(r.tlsStart, r.tlsDone),
		FirstByte: span(r.wrote, r.firstByte),
	}
}

// certNotAfter is the leaf's expiry, also when verification rejected it
// (an expired certificate is exactly when the date matters).
func (r *recorder) certNotAfter(err error) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.certs) > 0 {
		return r.certs[0].NotAfter.UTC()
	}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) && len(cve.UnverifiedCertificates) > 0 {
		return cve.UnverifiedCertificates[0].NotAfter.UTC()
	}
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) && inv.Cert != nil {
		return inv.Cert.NotAfter.UTC()
	}
	return time.Time{}
}

// spans turns the recorded phases into child spans of the attempt span in
// ctx. Recording after the fact keeps the hooks cheap and the spans exact.
func (r *recorder) spans(ctx context.Context, tracer trace.Tracer, req Request) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	child := func(name string, a, b time.Time, err error, attrs ...attribute.KeyValue) {
		if a.IsZero() {
			return
		}
		if b.IsZero() || b.Before(a) {
			b = r.done
		}
		_, s := tracer.Start(ctx, name, trace.WithTimestamp(a), trace.WithAttributes(attrs...))
		if err != nil {
			s.RecordError(err)
			s.SetStatus(2, err.Error()) // codes.Error
		}
		s.End(trace.WithTimestamp(b))
	}
	child("dns", r.dnsStart, r.dnsDone, r.dnsErr)
	var peer []attribute.KeyValue
	if r.peer != "" {
		peer = append(peer, attribute.String("network.peer.address", hostOf(r.peer)))
	}
	child("connect", r.connStart, r.connDone, r.connErr, peer...)
	if req.Vantage.Proxy != nil {
		child("proxy.connect", r.proxyStart, r.proxyDone, nil,
			attribute.String("wscanary.proxy", req.Vantage.Proxy.Scheme+"://"+req.Vantage.Proxy.Host))
	}
	child("tls", r.tlsStart, r.tlsDone, r.tlsErr)
	child("http.upgrade", r.wrote, r.firstByte, nil)
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// attemptAttrs are known before dialing.
func attemptAttrs(req Request, redactedURL string) []attribute.KeyValue {
	host := req.URL.Hostname()
	port := req.URL.Port()
	if port == "" {
		port = "80"
		if req.URL.Scheme == "wss" {
			port = "443"
		}
	}
	p, _ := strconv.Atoi(port)
	return []attribute.KeyValue{
		attribute.String("wscanary.check", req.Check),
		attribute.String("wscanary.vantage", req.Vantage.Name),
		attribute.String("wscanary.route", string(req.Route)),
		attribute.String("wscanary.variant", string(req.Variant)),
		attribute.String("wscanary.transport", string(req.Transport.OrHTTP1())),
		attribute.String("network.protocol.version", map[report.Transport]string{report.TransportHTTP1: "1.1", report.TransportHTTP2: "2"}[req.Transport.OrHTTP1()]),
		attribute.String("url.full", redactedURL),
		attribute.String("server.address", host),
		attribute.Int("server.port", p),
	}
}

// resultAttrs are known after the attempt.
func resultAttrs(att report.Attempt) []attribute.KeyValue {
	kv := []attribute.KeyValue{
		attribute.Int("http.response.status_code", att.Status),
	}
	if att.Peer != "" {
		kv = append(kv, attribute.String("network.peer.address", hostOf(att.Peer)))
	}
	if c := att.ErrorClass(); c != "" {
		kv = append(kv, attribute.String("error.type", c))
	}
	if att.CloseCode != 0 {
		kv = append(kv, attribute.Int("websocket.close_code", att.CloseCode))
	}
	if att.Edge != "" {
		kv = append(kv, attribute.String("wscanary.edge", att.Edge))
	}
	if att.Pop != "" {
		kv = append(kv, attribute.String("wscanary.edge.pop", att.Pop))
	}
	if att.Hop != "" {
		kv = append(kv, attribute.String("wscanary.hop", string(att.Hop)))
	}
	if att.Gateway != "" {
		kv = append(kv, attribute.String("wscanary.gateway", att.Gateway))
	}
	if att.Client != "" {
		kv = append(kv, attribute.String("wscanary.client", att.Client))
	}
	if att.JA4 != "" {
		kv = append(kv, attribute.String("tls.client.ja4", att.JA4))
	}
	if att.Extensions != "" {
		kv = append(kv, attribute.String("websocket.extensions.offered", att.Extensions))
	}
	if att.ExtensionsAnswer != "" {
		kv = append(kv, attribute.String("websocket.extensions.accepted", att.ExtensionsAnswer))
	}
	if att.Protocol != "" {
		kv = append(kv, attribute.String("wscanary.protocol", att.Protocol))
	}
	if len(att.Steps) > 0 {
		steps := make([]string, len(att.Steps))
		for i, st := range att.Steps {
			steps[i] = fmt.Sprintf("%s: %s in %.1f ms", st.Name, st.Result, st.MS)
		}
		kv = append(kv, attribute.StringSlice("wscanary.steps", steps))
	}
	if att.Refusal != "" {
		kv = append(kv, attribute.String("wscanary.refusal", att.Refusal))
	}
	if att.NotOffered != "" {
		kv = append(kv, attribute.String("wscanary.transport.not_offered", att.NotOffered))
	}
	return kv
}
