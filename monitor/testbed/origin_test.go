package testbed_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wscanary/wscanary/monitor/testbed"
)

func TestOriginUpgradeEchoesAndRecords(t *testing.T) {
	t.Parallel()
	o := testbed.NewOriginT(t, testbed.OriginOptions{Behavior: testbed.Behavior{Subprotocols: []string{"chat.v1"}}})
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	c, status, _, err := dialWS(t, o.URL()+"?room=1", &websocket.DialOptions{
		HTTPHeader:   http.Header{"Origin": {"https://app.test"}, "Traceparent": {tp}},
		Subprotocols: []string{"chat.v1"},
	})
	if err != nil || status != http.StatusSwitchingProtocols {
		t.Fatalf("dial: %d %v", status, err)
	}
	if c.Subprotocol() != "chat.v1" {
		t.Errorf("subprotocol %q", c.Subprotocol())
	}
	if got := exchangeText(t, c, "hello"); got != "hello" {
		t.Errorf("echo: %q", got)
	}
	if got := exchangeText(t, c, "ping"); got != "pong" {
		t.Errorf("ping: %q", got)
	}
	r, ok := o.Last()
	if !ok {
		t.Fatal("nothing recorded")
	}
	if r.Status != 101 || r.Origin != "https://app.test" || r.Traceparent != tp || r.RemoteIP != "127.0.0.1" ||
		r.Host != o.Addr() || r.Path != "/ws" || r.Proto != "HTTP/1.1" || r.Method != http.MethodGet ||
		r.Query.Get("room") != "1" || !r.WantsUpgrade() || r.Header.Get("Sec-WebSocket-Key") == "" || r.SNI != "" {
		t.Errorf("record: %+v", r)
	}
	// Requests returns copies.
	reqs := o.Requests()
	reqs[0].Header.Set("Origin", "changed")
	if r, _ := o.Last(); r.Origin != "https://app.test" || r.Header.Get("Origin") != "https://app.test" {
		t.Errorf("record changed through a copy: %+v", r)
	}
	o.Reset()
	if n := len(o.Requests()); n != 0 {
		t.Errorf("after Reset: %d requests", n)
	}
}

func TestOriginOriginRules(t *testing.T) {
	t.Parallel()
	allow := []string{"https://app.test"}
	for _, tc := range []struct {
		name     string
		b        testbed.Behavior
		origin   string
		status   int
		bodyPart string
	}{
		{"any origin", testbed.Behavior{}, "https://evil.test", 101, ""},
		{"no origin", testbed.Behavior{}, "", 101, ""},
		{"allowed", testbed.Behavior{AllowedOrigins: allow}, "https://app.test", 101, ""},
		{"allowed any case", testbed.Behavior{AllowedOrigins: allow}, "HTTPS://APP.TEST", 101, ""},
		{"not allowed", testbed.Behavior{AllowedOrigins: allow}, "https://evil.test", 403, testbed.BodyOriginForbidden},
		{"empty list", testbed.Behavior{AllowedOrigins: []string{}}, "https://app.test", 403, testbed.BodyOriginForbidden},
		{"list, no origin", testbed.Behavior{AllowedOrigins: allow}, "", 101, ""},
		{"required, none", testbed.Behavior{RequireOrigin: true}, "", 403, testbed.BodyOriginRequired},
		{"required, list, none", testbed.Behavior{AllowedOrigins: allow, RequireOrigin: true}, "", 403, testbed.BodyOriginRequired},
		{"required, present", testbed.Behavior{RequireOrigin: true}, "https://x.test", 101, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := testbed.NewOriginT(t, testbed.OriginOptions{Behavior: tc.b})
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			_, status, body, _ := dialWS(t, o.URL(), &websocket.DialOptions{HTTPHeader: h})
			if status != tc.status || !strings.Contains(body, tc.bodyPart) {
				t.Fatalf("got %d %q, want %d %q", status, body, tc.status, tc.bodyPart)
			}
			if r, _ := o.Last(); r.Status != tc.status {
				t.Fatalf("recorded status %d", r.Status)
			}
		})
	}
}

func TestOriginTokenRules(t *testing.T) {
	t.Parallel()
	const tok = "s3cret"
	type req struct {
		query  string
		header http.Header
	}
	for _, tc := range []struct {
		name             string
		in               testbed.TokenIn
		tokenName        string
		missing, bad, ok req
	}{
		{"query default", "", "", req{}, req{query: "?token=nope"}, req{query: "?token=" + tok}},
		{"query named", testbed.TokenInQuery, "access_token", req{query: "?token=" + tok}, req{query: "?access_token=x"}, req{query: "?access_token=" + tok}},
		{"bearer", testbed.TokenInHeader, "", req{}, req{header: http.Header{"Authorization": {"Bearer nope"}}}, req{header: http.Header{"Authorization": {"Bearer " + tok}}}},
		{"bearer no scheme", testbed.TokenInHeader, "Authorization", req{}, req{header: http.Header{"Authorization": {tok}}}, req{header: http.Header{"Authorization": {"bearer " + tok}}}},
		{"custom header", testbed.TokenInHeader, "X-Token", req{header: http.Header{"Authorization": {"Bearer " + tok}}}, req{header: http.Header{"X-Token": {"nope"}}}, req{header: http.Header{"X-Token": {tok}}}},
		{"cookie", testbed.TokenInCookie, "session", req{header: http.Header{"Cookie": {"other=1"}}}, req{header: http.Header{"Cookie": {"session=nope"}}}, req{header: http.Header{"Cookie": {"a=b; session=" + tok}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := testbed.NewOriginT(t, testbed.OriginOptions{Behavior: testbed.Behavior{Token: tok, TokenIn: tc.in, TokenName: tc.tokenName}})
			try := func(r req) (int, string, http.Header) {
				a := roundTrip(t, o.Addr(), "", upgradeRequest(o.Addr(), "/ws"+r.query, headerLines(r.header)...))
				return a.status, a.body, a.header
			}
			if status, body, h := try(tc.missing); status != 401 || h.Get("WWW-Authenticate") != `Bearer realm="ws"` || !strings.Contains(body, testbed.BodyMissingToken) {
				t.Errorf("missing: %d %q %v", status, body, h)
			}
			if status, body, _ := try(tc.bad); status != 403 || strings.TrimSpace(body) != "invalid token" {
				t.Errorf("wrong: %d %q", status, body)
			}
			if status, body, _ := try(tc.ok); status != 101 {
				t.Errorf("right: %d %q", status, body)
			}
		})
	}
}

func headerLines(h http.Header) []string {
	var out []string
	for k, vs := range h {
		for _, v := range vs {
			out = append(out, k+": "+v)
		}
	}
	return out
}

func TestOriginTokenInMessage(t *testing.T) {
	t.Parallel()
	o := testbed.NewOriginT(t, testbed.OriginOptions{Behavior: testbed.Behavior{
		Token: "s3cret", TokenIn: testbed.TokenInMessage, MessageTimeout: 200 * time.Millisecond,
	}})

	c, _, _, err := dialWS(t, o.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := exchangeText(t, c, `{"type":"auth","token":"s3cret"}`); got != `{"type":"auth","token":"s3cret"}` {
		t.Errorf("auth message echo: %q", got)
	}
	if got := exchangeText(t, c, "ping"); got != "pong" {
		t.Errorf("after auth: %q", got)
	}

	wantClose := func(name string, send string) {
		t.Helper()
		o.Reset()
		c, status, _, err := dialWS(t, o.URL(), nil)
		if err != nil || status != 101 {
			t.Fatalf("%s: dial %d %v", name, status, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if send != "" {
			if err := c.Write(ctx, websocket.MessageText, []byte(send)); err != nil {
				t.Fatalf("%s: write: %v", name, err)
			}
		}
		_, _, err = c.Read(ctx)
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4003 || ce.Reason != "unauthorized" {
			t.Fatalf("%s: read: %v, want close 4003 unauthorized", name, err)
		}
		// The record is completed once the handler returns.
		deadline := time.Now().Add(5 * time.Second)
		for {
			r, _ := o.Last()
			if r.Status == 101 && r.CloseCode == 4003 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: record %+v", name, r)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wantClose("wrong token", `{"type":"auth","token":"nope"}`)
	wantClose("no message", "")
}

func TestOriginCSRF(t *testing.T) {
	t.Parallel()
	o := testbed.NewOriginT(t, testbed.OriginOptions{Behavior: testbed.Behavior{CSRF: true}})
	a := roundTrip(t, o.Addr(), "", upgradeRequest(o.Addr(), "/ws", "Origin: https://app.test"))
	if a.status != 403 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(a.body, "CSRF verification failed. Request aborted.") || a.body != testbed.CSRFPage {
		t.Fatalf("csrf: %d %v %q", a.status, a.header, a.body)
	}
}

func TestOriginFixedAnswers(t *testing.T) {
	t.Parallel()
	o := testbed.NewOriginT(t, testbed.OriginOptions{})
	for _, tc := range []testbed.Behavior{
		{Status: 404, Body: "404 page not found\n"},
		{Status: 500, Body: "boom", Headers: http.Header{"X-Error": {"db"}}},
		{Status: 302, Headers: http.Header{"Location": {"https://login.test/"}}},
		{Status: 200, Body: "<html>app</html>", Headers: http.Header{"Content-Type": {"text/html"}}},
	} {
		o.Set(tc)
		a := roundTrip(t, o.Addr(), "", upgradeRequest("chat.test", "/ws"))
		if a.status != tc.Status || a.body != tc.Body {
			t.Errorf("%d: got %d %q", tc.Status, a.status, a.body)
		}
		for k := range tc.Headers {
			if a.header.Get(k) != tc.Headers.Get(k) {
				t.Errorf("%d: header %s = %q", tc.Status, k, a.header.Get(k))
			}
		}
		if tc.Body != "" && tc.Headers.Get("Content-Type") == "" && a.header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("%d: content type %q", tc.Status, a.header.Get("Content-Type"))
		}
	}
	// The behavior passed to Set is copied.
	h := http.Header{"Location": {"/a"}}
	o.Set(testbed.Behavior{Status: 302, Headers: h})
	h.Set("Location", "/b")
	if got := o.Behavior().Headers.Get("Location"); got != "/a" {
		t.Errorf("Set did not copy: %q", got)
	}
}

// TestOriginNonUpgradeAnswers pins what coder/websocket answers to requests
// that are no upgrade: what an edge that strips the upgrade gets back.
func TestOriginNonUpgradeAnswers(t *testing.T) {
	t.Parallel()
	o := testbed.NewOriginT(t, testbed.OriginOptions{})
	a := roundTrip(t, o.Addr(), "", "GET /ws HTTP/1.0\r\nHost: chat.test\r\n\r\n")
	if a.status != 426 || a.body != "WebSocket protocol violation: handshake request must be at least HTTP/1.1: \"HTTP/1.0\"\n" {
		t.Errorf("HTTP/1.0: %d %q", a.status, a.body)
	}
	a = roundTrip(t, o.Addr(), "", "GET /ws HTTP/1.1\r\nHost: chat.test\r\n\r\n")
	if a.status != 426 || a.body != "WebSocket protocol violation: Connection header \"\" does not contain Upgrade\n" ||
		a.header.Get("Upgrade") != "websocket" {
		t.Errorf("HTTP/1.1 without upgrade: %d %v %q", a.status, a.header, a.body)
	}
	a = roundTrip(t, o.Addr(), "", "GET /ws HTTP/1.1\r\nHost: chat.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n\r\n")
	if a.status != 400 {
		t.Errorf("version 8: %d %q", a.status, a.body)
	}
	r, _ := o.Last()
	if !r.WantsUpgrade() || r.Status != 400 {
		t.Errorf("record: %+v", r)
	}
}

func TestOriginHeaderDelay(t *testing.T) {
	t.Parallel()
	o := testbed.NewOriginT(t, testbed.OriginOptions{Behavior: testbed.Behavior{HeaderDelay: 150 * time.Millisecond}})
	start := time.Now()
	if a := roundTrip(t, o.Addr(), "", upgradeRequest("chat.test", "/ws")); a.status != 101 {
		t.Fatalf("status %d", a.status)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("answered after %v, before the delay", d)
	}

	// A long delay ends with Close.
	o.Set(testbed.Behavior{HeaderDelay: time.Hour})
	c, err := net.Dial("tcp", o.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(upgradeRequest("chat.test", "/ws"))); err != nil {
		t.Fatal(err)
	}
	waitRecorded(t, o, 2)
	within(t, 5*time.Second, "Close during a delay", func() { _ = o.Close() })
}

func TestOriginHang(t *testing.T) {
	t.Parallel()
	o := testbed.NewOriginT(t, testbed.OriginOptions{Behavior: testbed.Behavior{Hang: true}})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, _, err := websocket.Dial(ctx, o.URL(), nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial: %v, want a timeout", err)
	}
	if r, ok := o.Last(); !ok || r.Status != 0 || !r.WantsUpgrade() {
		t.Fatalf("record: %+v", r)
	}
	// One more hanging client still connected when the Origin closes.
	c, err := net.Dial("tcp", o.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(upgradeRequest("chat.test", "/ws"))); err != nil {
		t.Fatal(err)
	}
	waitRecorded(t, o, 2)
	within(t, 5*time.Second, "Close with a hanging request", func() { _ = o.Close() })
}

func waitRecorded(t *testing.T, o *testbed.Origin, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(o.Requests()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("origin recorded %d requests, want %d", len(o.Requests()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOriginCloseEndsUpgradedConnections(t *testing.T) {
	t.Parallel()
	o := testbed.NewOriginT(t, testbed.OriginOptions{})
	c, _, _, err := dialWS(t, o.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "Close with an open WebSocket", func() { _ = o.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := c.Read(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read after Close: %v", err)
	}
}

// TestOriginSwitchesUnderLoad flips the behavior while clients dial: every
// answer is one of the two behaviors' (run with -race).
func TestOriginSwitchesUnderLoad(t *testing.T) {
	t.Parallel()
	o := testbed.NewOriginT(t, testbed.OriginOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			o.Update(func(b *testbed.Behavior) {
				if i%2 == 0 {
					b.Token = "t"
				} else {
					b.Token = ""
				}
			})
			_ = o.Behavior()
			time.Sleep(time.Millisecond)
		}
	}()
	seen := hammer(t, ctx, o.Addr())
	wg.Wait()
	for status := range seen {
		if status != 101 && status != 401 {
			t.Errorf("status %d under switching (all: %v)", status, seen)
		}
	}
	if len(o.Requests()) == 0 {
		t.Fatal("no requests")
	}
}

func TestOriginTLSRecordsSNI(t *testing.T) {
	t.Parallel()
	ca := testbed.NewCAT(t)
	leaf, err := ca.Leaf([]string{"chat.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	o := testbed.NewOriginT(t, testbed.OriginOptions{TLS: &tls.Config{Certificates: []tls.Certificate{leaf}}})
	if !strings.HasPrefix(o.URL(), "wss://") {
		t.Fatalf("URL %s", o.URL())
	}
	_, port, _ := net.SplitHostPort(o.Addr())
	c, status, _, err := dialWS(t, "wss://chat.test:"+port+"/ws", &websocket.DialOptions{
		HTTPClient: client(o.Addr(), "127.0.0.2", &tls.Config{RootCAs: ca.Pool()}),
	})
	if err != nil || status != 101 {
		t.Fatalf("dial: %d %v", status, err)
	}
	if got := exchangeText(t, c, "ping"); got != "pong" {
		t.Errorf("ping: %q", got)
	}
	r, _ := o.Last()
	if r.SNI != "chat.test" || r.Host != "chat.test:"+port || r.RemoteIP != "127.0.0.2" {
		t.Fatalf("record: SNI %q Host %q remote %q", r.SNI, r.Host, r.RemoteIP)
	}
}
