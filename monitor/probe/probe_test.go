package probe_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/wscanary/wscanary/monitor/probe"
	"github.com/wscanary/wscanary/monitor/report"
)

const canary = "CANARY-tok-7f3a9c"

// seen is what the test server observed of one request.
type seen struct {
	host, sni, remote, origin, traceparent, auth, cookie, query string
}

type server struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func (s *server) last(t *testing.T) seen {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Fatal("server saw no request")
	}
	return s.reqs[len(s.reqs)-1]
}

// newServer answers by path: /ws upgrades (echo, "ping" -> "pong"),
// /401 /403 /500 answer like real servers do, /slow waits, /hang never answers,
// /close4003 opens and closes with 4003 after the first message.
func newServer(t testing.TB, tlsOn bool) *server {
	t.Helper()
	s := &server{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sv := seen{host: r.Host, remote: r.RemoteAddr, origin: r.Header.Get("Origin"),
			traceparent: r.Header.Get("Traceparent"), auth: r.Header.Get("Authorization"),
			cookie: r.Header.Get("Cookie"), query: r.URL.RawQuery}
		if r.TLS != nil {
			sv.sni = r.TLS.ServerName
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, sv)
		s.mu.Unlock()
		switch r.URL.Path {
		case "/401":
			w.Header().Set("WWW-Authenticate", `Bearer realm="ws"`)
			http.Error(w, "unauthorized "+r.URL.Query().Get("token"), http.StatusUnauthorized)
		case "/403":
			w.Header().Set("Server", "cloudflare")
			w.Header().Set("Set-Cookie", "__cf_bm=secretvalue; path=/")
			http.Error(w, "<title>Just a moment...</title>"+strings.Repeat("x", 4000), http.StatusForbidden)
		case "/500":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/slow":
			time.Sleep(200 * time.Millisecond)
			fallthrough
		case "/ws", "/close4003":
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true, Subprotocols: []string{"chat.v1"}})
			if err != nil {
				return
			}
			defer c.CloseNow()
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			defer cancel()
			for {
				_, msg, err := c.Read(ctx)
				if err != nil {
					return
				}
				if r.URL.Path == "/close4003" {
					c.Close(4003, "unauthorized")
					return
				}
				if string(msg) == "ping" {
					msg = []byte("pong")
				}
				c.Write(ctx, websocket.MessageText, msg)
			}
		case "/hang":
			<-r.Context().Done()
		}
	})
	s.Server = httptest.NewUnstartedServer(h)
	if tlsOn {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func wsURL(t testing.TB, base, path string) *url.URL {
	t.Helper()
	u, err := url.Parse(strings.Replace(base, "http", "ws", 1) + path)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestAttemptStatuses(t *testing.T) {
	t.Parallel()
	srv := newServer(t, false)
	tests := []struct {
		path      string
		status    int
		ok        bool
		errClass  string
		header    string // a header that must be present
		bodyHas   string
		timeout   time.Duration
		maxMillis float64
	}{
		{path: "/ws", status: 101, ok: true},
		{path: "/401", status: 401, header: "Www-Authenticate", bodyHas: "unauthorized"},
		{path: "/403", status: 403, header: "Server", bodyHas: "Just a moment"},
		{path: "/500", status: 500, bodyHas: "boom"},
		{path: "/redirect", status: 302, header: "Location"},
		{path: "/slow", status: 101, ok: true},
		{path: "/hang", status: 0, errClass: "timeout", timeout: 300 * time.Millisecond, maxMillis: 2000},
	}
	p := &probe.Prober{}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			att := p.Attempt(context.Background(), probe.Request{
				URL: wsURL(t, srv.URL, tt.path), Route: report.RouteCDN, Variant: report.VariantConfigured,
				Timeout: tt.timeout,
			})
			if att.Status != tt.status || att.OK != tt.ok || att.ErrorClass() != tt.errClass {
				t.Fatalf("got status %d ok %v error %q, want %d %v %q", att.Status, att.OK, att.Error, tt.status, tt.ok, tt.errClass)
			}
			if tt.header != "" && att.Headers[tt.header] == "" {
				t.Errorf("header %s missing in %v", tt.header, att.Headers)
			}
			if !strings.Contains(att.Body, tt.bodyHas) {
				t.Errorf("body %q lacks %q", att.Body, tt.bodyHas)
			}
			if len(att.Body) > probe.MaxBody {
				t.Errorf("body is %d bytes, above the %d bound", len(att.Body), probe.MaxBody)
			}
			if tt.maxMillis > 0 && att.DurationMS > tt.maxMillis {
				t.Errorf("took %.0f ms, timeout was %v", att.DurationMS, tt.timeout)
			}
			if att.Status > 0 && att.TimingsMS.FirstByte <= 0 {
				t.Errorf("first byte timing not recorded: %+v", att.TimingsMS)
			}
		})
	}
}

func TestAttemptSlowHeadersDuration(t *testing.T) {
	t.Parallel()
	srv := newServer(t, false)
	att := (&probe.Prober{}).Attempt(context.Background(), probe.Request{URL: wsURL(t, srv.URL, "/slow")})
	if att.DurationMS < 200 || att.DurationMS > 400 {
		t.Fatalf("duration %.1f ms for a 200 ms server delay", att.DurationMS)
	}
	if att.Reason != "" && att.Status != 101 {
		t.Fatalf("unexpected %+v", att)
	}
}

func TestRedactsSetCookieAndReason(t *testing.T) {
	t.Parallel()
	srv := newServer(t, false)
	att := (&probe.Prober{}).Attempt(context.Background(), probe.Request{URL: wsURL(t, srv.URL, "/403")})
	if got := att.Headers["Set-Cookie"]; got != "__cf_bm=REDACTED" {
		t.Fatalf("Set-Cookie = %q", got)
	}
	if att.Reason != "Forbidden" {
		t.Fatalf("reason = %q", att.Reason)
	}
}

func TestCredentialPlacementAndCanary(t *testing.T) {
	t.Parallel()
	srv := newServer(t, false)
	tests := []struct {
		in, name string
		check    func(seen) bool
		path     string
	}{
		{in: "query", check: func(s seen) bool { return strings.Contains(s.query, "token="+canary) }, path: "/401"},
		{in: "query", name: "access", check: func(s seen) bool { return strings.Contains(s.query, "access="+canary) }, path: "/ws"},
		{in: "header", check: func(s seen) bool { return s.auth == "Bearer "+canary }, path: "/ws"},
		{in: "cookie", name: "sid", check: func(s seen) bool { return s.cookie == "sid="+canary }, path: "/403"},
	}
	for _, tt := range tests {
		t.Run(tt.in+tt.name, func(t *testing.T) {
			u := wsURL(t, srv.URL, tt.path+"?room=1")
			att := (&probe.Prober{}).Attempt(context.Background(), probe.Request{
				URL: u, Credential: &probe.Credential{Value: canary, In: tt.in, Name: tt.name},
			})
			srvSaw := srv.last(t)
			if !tt.check(srvSaw) {
				t.Fatalf("server did not get the credential in %s: %+v", tt.in, srvSaw)
			}
			if att.Credential != tt.in {
				t.Errorf("Credential = %q", att.Credential)
			}
			if dump := fmt.Sprintf("%+v", att); strings.Contains(dump, canary) {
				t.Fatalf("canary leaked into the attempt: %s", dump)
			}
			if tt.in == "query" && !strings.Contains(att.URL, "=REDACTED") {
				t.Errorf("URL not redacted: %s", att.URL)
			}
		})
	}
}

func TestMessageTokenAndExpect(t *testing.T) {
	t.Parallel()
	srv := newServer(t, false)
	p := &probe.Prober{}
	// send/expect passes
	att := p.Attempt(context.Background(), probe.Request{URL: wsURL(t, srv.URL, "/ws"), Send: "ping", Expect: regexp.MustCompile("^pong$")})
	if !att.OK || att.Reply != "pong" {
		t.Fatalf("ping/pong: %+v", att)
	}
	// expect not met
	att = p.Attempt(context.Background(), probe.Request{URL: wsURL(t, srv.URL, "/ws"), Send: "hello", Expect: regexp.MustCompile("^pong$")})
	if att.OK || att.Status != 101 || att.ErrorClass() != report.ErrExpect {
		t.Fatalf("expect mismatch: %+v", att)
	}
	// first-message auth rejected with 4003, token in message never shown
	att = p.Attempt(context.Background(), probe.Request{URL: wsURL(t, srv.URL, "/close4003"),
		Send: `{"auth":"{token}"}`, Credential: &probe.Credential{Value: canary, In: "message"}})
	if att.OK || att.CloseCode != 4003 || att.Status != 101 {
		t.Fatalf("4003: %+v", att)
	}
	if strings.Contains(fmt.Sprintf("%+v", att), canary) {
		t.Fatal("canary leaked")
	}
	// echo proves the token was substituted (server echoes, reply redacted)
	att = p.Attempt(context.Background(), probe.Request{URL: wsURL(t, srv.URL, "/ws"),
		Send: `auth {token}`, Expect: regexp.MustCompile("^auth "), Credential: &probe.Credential{Value: canary, In: "message"}})
	if !att.OK || att.Reply != "auth REDACTED" {
		t.Fatalf("echo: %+v", att)
	}
}

func TestSubprotocolOriginAndTraceparent(t *testing.T) {
	t.Parallel()
	srv := newServer(t, false)
	rec := tracetest.NewSpanRecorder()
	tp := trace.NewTracerProvider(trace.WithSpanProcessor(rec))
	p := &probe.Prober{Tracer: tp.Tracer("test")}
	// The cause comes from the run's diagnosis, given when the span ends.
	att, end := p.AttemptSpan(context.Background(), probe.Request{
		Check: "chat", URL: wsURL(t, srv.URL, "/ws"), Origin: "https://app.test",
		Subprotocols: []string{"chat.v1"}, Route: report.RouteCDN, Variant: report.VariantConfigured,
	})
	if n := len(rec.Ended()); n != 2 {
		// connect and http.upgrade end with the attempt; the attempt's
		// own span waits for its cause.
		t.Errorf("%d spans ended before the cause was given, want 2 (the phases)", n)
	}
	end(report.CauseOK)
	if !att.OK || att.Subprotocol != "chat.v1" {
		t.Fatalf("%+v", att)
	}
	got := srv.last(t)
	if got.origin != "https://app.test" {
		t.Errorf("origin = %q", got.origin)
	}
	if len(att.TraceID) != 32 || !strings.Contains(got.traceparent, att.TraceID) {
		t.Fatalf("traceparent %q does not carry trace id %q", got.traceparent, att.TraceID)
	}
	spans := rec.Ended()
	names := map[string]bool{}
	var root string
	for _, s := range spans {
		names[s.Name()] = true
		if s.Name() == "websocket.handshake" {
			root = s.SpanContext().SpanID().String()
			attrs := map[string]string{}
			for _, kv := range s.Attributes() {
				attrs[string(kv.Key)] = kv.Value.String()
			}
			for k, want := range map[string]string{"wscanary.check": "chat", "wscanary.route": "cdn",
				"wscanary.variant": "configured", "http.response.status_code": "101", "wscanary.cause": "ok", "server.address": "127.0.0.1"} {
				if attrs[k] != want {
					t.Errorf("span attribute %s = %q, want %q", k, attrs[k], want)
				}
			}
		}
	}
	for _, n := range []string{"websocket.handshake", "connect", "http.upgrade"} {
		if !names[n] {
			t.Errorf("no %s span in %v", n, names)
		}
	}
	for _, s := range spans {
		if s.Name() == "connect" && s.Parent().SpanID().String() != root {
			t.Errorf("connect span is not a child of the handshake span")
		}
	}
}

func TestDirectRouteKeepsHostAndSNI(t *testing.T) {
	t.Parallel()
	srv := newServer(t, true) // httptest's certificate is valid for example.com
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	u, _ := url.Parse("wss://example.com:" + port + "/ws")
	att := (&probe.Prober{}).Attempt(context.Background(), probe.Request{
		URL: u, Route: report.RouteDirect, DirectAddress: srv.Listener.Addr().String(),
		TLS: &tls.Config{RootCAs: roots},
	})
	if !att.OK {
		t.Fatalf("direct: %+v", att)
	}
	got := srv.last(t)
	if got.host != "example.com:"+port || got.sni != "example.com" {
		t.Fatalf("server saw Host %q SNI %q", got.host, got.sni)
	}
	if att.CertNotAfter.IsZero() || att.TimingsMS.TLS <= 0 {
		t.Errorf("TLS evidence missing: %v %+v", att.CertNotAfter, att.TimingsMS)
	}
	// Without the test roots the same attempt is a classified TLS error.
	att = (&probe.Prober{}).Attempt(context.Background(), probe.Request{
		URL: u, Route: report.RouteDirect, DirectAddress: srv.Listener.Addr().String(),
	})
	if att.Status != 0 || att.ErrorClass() != report.ErrTLS || !strings.Contains(att.Error, "unknown authority") {
		t.Fatalf("untrusted: %+v", att)
	}
	// A name the certificate does not hold says so.
	bad, _ := url.Parse("wss://wrong.test:" + port + "/ws")
	att = (&probe.Prober{}).Attempt(context.Background(), probe.Request{
		URL: bad, Route: report.RouteDirect, DirectAddress: srv.Listener.Addr().String(), TLS: &tls.Config{RootCAs: roots},
	})
	if att.ErrorClass() != report.ErrTLS || !strings.Contains(att.Error, "name mismatch") {
		t.Fatalf("mismatch: %+v", att)
	}
}

func TestSourceAddressVantage(t *testing.T) {
	t.Parallel()
	srv := newServer(t, false)
	for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		att := (&probe.Prober{}).Attempt(context.Background(), probe.Request{
			URL: wsURL(t, srv.URL, "/ws"), Vantage: probe.Egress{Name: ip, SourceAddress: ip},
		})
		if !att.OK {
			t.Fatalf("%s: %+v", ip, att)
		}
		host, _, _ := net.SplitHostPort(srv.last(t).remote)
		if host != ip {
			t.Fatalf("server saw %s, want %s", host, ip)
		}
	}
}

// connectProxy is a minimal HTTP CONNECT proxy that records the targets it
// was asked for; the real-proxy test (tinyproxy) lives with the testbed.
func connectProxy(t *testing.T) (*url.URL, func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var targets []string
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil || req.Method != http.MethodConnect {
					io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
					return
				}
				mu.Lock()
				targets = append(targets, req.Host)
				mu.Unlock()
				up, err := net.Dial("tcp", req.Host)
				if err != nil {
					io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
					return
				}
				defer up.Close()
				io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	u, _ := url.Parse("http://" + ln.Addr().String())
	return u, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), targets...) }
}

func TestConnectProxyForPlainWS(t *testing.T) {
	t.Parallel()
	srv := newServer(t, false)
	px, targets := connectProxy(t)
	rec := tracetest.NewSpanRecorder()
	tp := trace.NewTracerProvider(trace.WithSpanProcessor(rec))
	att := (&probe.Prober{Tracer: tp.Tracer("t")}).Attempt(context.Background(), probe.Request{
		URL: wsURL(t, srv.URL, "/ws"), Vantage: probe.Egress{Name: "eu", Proxy: px},
	})
	var proxySpan bool
	for _, s := range rec.Ended() {
		proxySpan = proxySpan || s.Name() == "proxy.connect"
	}
	if !proxySpan {
		t.Error("no proxy.connect span for a proxy vantage")
	}
	if !att.OK {
		t.Fatalf("%+v", att)
	}
	want := srv.Listener.Addr().String()
	if got := targets(); len(got) != 1 || got[0] != want {
		t.Fatalf("proxy saw CONNECT %v, want [%s]", got, want)
	}
	if att.Peer != px.Host {
		t.Errorf("peer = %q, want the proxy %q", att.Peer, px.Host)
	}
}

func TestConnectErrors(t *testing.T) {
	t.Parallel()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	u, _ := url.Parse("ws://" + addr + "/ws")
	att := (&probe.Prober{}).Attempt(context.Background(), probe.Request{URL: u})
	if att.ErrorClass() != report.ErrConnect || att.Status != 0 {
		t.Fatalf("%+v", att)
	}
}

// TestEveryConfiguredSecretIsRedacted: a refusal whose body and headers
// echo the whole request (as debug pages and some WAFs do) shows none of
// the configured secrets: header values, cookies, the Basic credential
// built from URL userinfo, credential-like query names off the fixed list.
// The span's url.full hides them too.
func TestEveryConfiguredSecretIsRedacted(t *testing.T) {
	t.Parallel()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s\n", r.Method, r.URL.RequestURI())
		r.Header.Write(&b)
		w.Header().Set("X-Echo-Auth", r.Header.Get("Authorization"))
		w.Header().Set("X-Echo-Query", r.URL.RawQuery)
		http.Error(w, b.String(), http.StatusForbidden)
	}))
	t.Cleanup(echo.Close)
	secrets := []string{"HDR-canary-41", "COOKIE-canary-42", "PASS-canary-43", "QUERY-canary-44", "QUERY-canary-45"}
	u, _ := url.Parse(strings.Replace(echo.URL, "http://", "ws://user:"+secrets[2]+"@", 1) +
		"/ws?room=1&apitoken=" + secrets[3] + "&access_key=" + secrets[4])
	rec := tracetest.NewSpanRecorder()
	tp := trace.NewTracerProvider(trace.WithSpanProcessor(rec))
	att := (&probe.Prober{Tracer: tp.Tracer("t")}).Attempt(context.Background(), probe.Request{
		URL: u, Header: http.Header{"X-Api-Key": {secrets[0]}, "Cookie": {"theme=dark; session=" + secrets[1]}},
	})
	if att.Status != 403 || !strings.Contains(att.Body, "GET /ws") {
		t.Fatalf("status %d body %q", att.Status, att.Body)
	}
	dump, _ := json.Marshal(att)
	var spans strings.Builder
	for _, s := range rec.Ended() {
		for _, kv := range s.Attributes() {
			fmt.Fprintf(&spans, "%s=%s\n", kv.Key, kv.Value.String())
		}
	}
	basic := base64.StdEncoding.EncodeToString([]byte("user:" + secrets[2]))
	for _, s := range append(secrets, basic) {
		if strings.Contains(string(dump), s) {
			t.Errorf("%s leaked into the attempt: %s", s, dump)
		}
		if strings.Contains(spans.String(), s) {
			t.Errorf("%s leaked into a span:\n%s", s, spans.String())
		}
	}
}
