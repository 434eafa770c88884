package testbed_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wscanary/wscanary/monitor/testbed"
)

// nginxForbidden is nginx's own 403 page with server_tokens off.
const nginxForbidden = "<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n" +
	"<center><h1>403 Forbidden</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"

// Bodies coder/websocket answers a request that is no upgrade with.
const (
	bodyHTTP10       = "WebSocket protocol violation: handshake request must be at least HTTP/1.1: \"HTTP/1.0\"\n"
	bodyNoConnection = "WebSocket protocol violation: Connection header \"\" does not contain Upgrade\n"
)

var cfRay = regexp.MustCompile(`^[0-9a-f]{16}-TST$`)

// denied is the address the deny mode refuses; allowed another client.
const (
	denied  = "127.0.0.3"
	allowed = "127.0.0.2"
)

// checkEdge asserts what an edge at addr in mode does, nginx or Go, in front
// of o. isNginx picks the one known difference: the protocol nginx talks to
// the origin in strip mode.
func checkEdge(t *testing.T, addr string, o *testbed.Origin, mode testbed.EdgeMode, isNginx bool) {
	t.Helper()
	o.Reset()
	switch mode {
	case testbed.EdgePass:
		a := roundTrip(t, addr, "", upgradeRequest("chat.test", "/ws?room=1", "Origin: https://app.test"))
		if a.status != 101 || a.header.Get("Server") != "nginx" || a.header.Get("Sec-WebSocket-Accept") == "" {
			t.Fatalf("pass: %d %v", a.status, a.header)
		}
		r, _ := o.Last()
		if !r.WantsUpgrade() || r.Proto != "HTTP/1.1" || r.Host != "chat.test" || r.Query.Get("room") != "1" ||
			r.Origin != "https://app.test" || r.Header.Get("X-Forwarded-For") != "127.0.0.1" || r.Header.Get("X-Real-Ip") != "127.0.0.1" {
			t.Fatalf("pass: origin saw %+v", r)
		}
		// Frames cross the tunnel both ways.
		c, status, body, err := dialWS(t, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}})
		if err != nil {
			t.Fatalf("pass: dial %d %q %v", status, body, err)
		}
		if got := exchangeText(t, c, "ping"); got != "pong" {
			t.Fatalf("pass: ping through the edge: %q", got)
		}
		if r, _ := o.Last(); r.Traceparent == "" {
			t.Fatalf("pass: traceparent lost")
		}

	case testbed.EdgeStripUpgrade:
		a := roundTrip(t, addr, "", upgradeRequest("chat.test", "/ws"))
		want := bodyNoConnection
		if isNginx {
			want = bodyHTTP10
		}
		if a.status != 426 || a.body != want || a.header.Get("Server") != "nginx" || a.header.Get("Upgrade") != "" {
			t.Fatalf("strip: %d %v %q", a.status, a.header, a.body)
		}
		r, _ := o.Last()
		if r.UpgradeWebSocket || r.ConnectionUpgrade || r.Status != 426 || r.Header.Get("Sec-Websocket-Key") == "" {
			t.Fatalf("strip: origin saw %+v", r)
		}
		if isNginx && (r.Proto != "HTTP/1.0" || r.Header.Get("Connection") != "close") {
			t.Fatalf("strip: nginx talked %s, Connection %q", r.Proto, r.Header.Get("Connection"))
		}

	case testbed.EdgeWAF403CloudflareLike:
		a := roundTrip(t, addr, "", upgradeRequest("chat.test", "/ws"))
		if a.status != 403 || a.header.Get("Server") != "cloudflare" || a.header.Get("Cf-Mitigated") != "challenge" ||
			!cfRay.MatchString(a.header.Get("Cf-Ray")) || a.header.Get("Content-Type") != "text/html; charset=UTF-8" ||
			a.body != testbed.ChallengePage || !strings.Contains(a.body, "Just a moment...") {
			t.Fatalf("waf: %d %v %q", a.status, a.header, a.body)
		}
		if n := len(o.Requests()); n != 0 {
			t.Fatalf("waf: the origin saw %d requests", n)
		}
		// Not an upgrade: forwarded, and the origin answers its 426.
		a = roundTrip(t, addr, "", "GET /ws HTTP/1.1\r\nHost: chat.test\r\n\r\n")
		if a.status != 426 || a.header.Get("Server") != "nginx" || a.header.Get("Cf-Mitigated") != "" {
			t.Fatalf("waf, plain GET: %d %v %q", a.status, a.header, a.body)
		}

	case testbed.EdgeDeny:
		a := roundTrip(t, addr, denied, upgradeRequest("chat.test", "/ws"))
		if a.status != 403 || a.body != nginxForbidden || a.header.Get("Server") != "nginx" || a.header.Get("Content-Type") != "text/html" {
			t.Fatalf("deny from %s: %d %v %q", denied, a.status, a.header, a.body)
		}
		if n := len(o.Requests()); n != 0 {
			t.Fatalf("deny: the origin saw %d requests", n)
		}
		a = roundTrip(t, addr, allowed, upgradeRequest("chat.test", "/ws"))
		if a.status != 101 {
			t.Fatalf("deny, from %s: %d %v %q", allowed, a.status, a.header, a.body)
		}
		if r, _ := o.Last(); r.Header.Get("X-Real-Ip") != allowed {
			t.Fatalf("deny: origin saw X-Real-IP %q", r.Header.Get("X-Real-Ip"))
		}
	}
}

var allModes = []testbed.EdgeMode{testbed.EdgePass, testbed.EdgeStripUpgrade, testbed.EdgeWAF403CloudflareLike, testbed.EdgeDeny}

// upgradeStatus is the status of a plain upgrade through addr.
func upgradeStatus(t *testing.T, addr string) int {
	t.Helper()
	return roundTrip(t, addr, "", upgradeRequest("chat.test", "/ws")).status
}

// eventually retries check until it passes or 5s pass.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
