package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/testbed"
)

// startNode runs one of testbed's npm servers for the test.
func startNode(t *testing.T, script string, args ...string) *testbed.NodeServer {
	t.Helper()
	_, err := testbed.LookNode()
	requireTool(t, err, "nodejs and npm")
	s, err := testbed.StartNode(t.TempDir(), script, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// checkAny runs `wscanary check --output json` on one check, whatever its
// verdict, and returns its report.
func checkAny(t *testing.T, check string) report.Report {
	t.Helper()
	cfg := writeConfig(t, "vantage: us\nlisten: \"\"\n", "checks:\n"+check)
	out, errOut, code := wscanary(t, "check", "--config", cfg, "--output", "json")
	if code != 0 && code != 1 {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, errOut)
	}
	return reports(t, out)[0]
}

// TestSocketIOAuth: a real Socket.IO 4 server whose middleware admits the
// token in the namespace CONNECT's auth payload. protocol: socket.io with
// the good token passes (open packet, 40 back); a bad one is refused in
// the server's words (44 CONNECT_ERROR "not authorized" after the open
// packet, which the one-step expect of before compared with instead); the
// server saying the token expired is token_expired; a namespace works.
func TestSocketIOAuth(t *testing.T) {
	t.Parallel()
	const good = "sio-canary-token-5f3a"
	srv := startNode(t, "socketio-server.js", good)
	check := func(token, extra string) report.Report {
		return checkAny(t, fmt.Sprintf(`  - {name: sio, url: "ws://%s/socket.io/?EIO=4&transport=websocket", protocol: socket.io, token: {value: %q, in: message}, schedule: "@every 1m", timeout: 5s%s}
`, srv.Addr, token, extra))
	}
	ok := check(good, "")
	a := ok.Attempts[0]
	if !ok.OK || a.Protocol != "socket.io" || len(a.Steps) != 2 || a.Steps[1].Result != report.StepOK {
		t.Fatalf("good token: %+v", ok)
	}
	t.Logf("healthy exchange: steps %+v, reply after %.1f ms, messages %q", a.Steps, a.ReplyMS, a.Messages)
	if a.ReplyMS <= 0 {
		t.Errorf("no time to the first expected message")
	}
	for _, m := range a.Messages {
		if strings.Contains(m, good) {
			t.Errorf("the token reached the evidence: %q", m)
		}
	}

	bad := check("wrong", "")
	d := bad.Diagnosis
	t.Logf("bad token: %s: %s", d.Cause, d.Summary)
	if d.Cause != report.CausePostHandshakeRejected || !strings.Contains(d.Summary, `"not authorized"`) || bad.Attempts[0].Refusal != "not authorized" {
		t.Errorf("bad token: %+v\n%+v", d, bad.Attempts[0])
	}
	if len(bad.Attempts[0].Messages) < 2 || !strings.HasPrefix(bad.Attempts[0].Messages[0], "0{") {
		t.Errorf("the open packet and the refusal are not both in the evidence: %q", bad.Attempts[0].Messages)
	}
	if ms := bad.Attempts[0].DurationMS; ms > 4000 {
		t.Errorf("the refusal took %.0f ms: the step waited out its time instead of reading the refusal", ms)
	}

	// A token the server says has expired (the testbed's middleware says
	// so of tokens named expired-...).
	exp := check("expired-2026-11-30", ", protocol_options: {namespace: /admin}")
	if exp.Diagnosis.Cause != report.CauseTokenExpired {
		t.Errorf("expired: %+v", exp.Diagnosis)
	}
	t.Logf("expired token on /admin: %s: %s", exp.Diagnosis.Cause, exp.Diagnosis.Summary)
	if adm := check(good, ", protocol_options: {namespace: /admin}"); !adm.OK {
		t.Errorf("namespace /admin with the good token: %+v", adm.Diagnosis)
	}
}

// TestGraphQLWSAuth: a real graphql-ws server (graphql-transport-ws on
// ws) whose onConnect admits the token in connection_init's payload: the
// good token gets connection_ack, a bad one the library's close 4403.
func TestGraphQLWSAuth(t *testing.T) {
	t.Parallel()
	const good = "gql-canary-token-91c2"
	srv := startNode(t, "graphql-ws-server.js", good)
	check := func(token string) report.Report {
		return checkAny(t, fmt.Sprintf(`  - {name: gql, url: "ws://%s/graphql", protocol: graphql-ws, token: {value: %q, in: message}, schedule: "@every 1m", timeout: 5s}
`, srv.Addr, token))
	}
	if ok := check(good); !ok.OK || ok.Attempts[0].Subprotocol != "graphql-transport-ws" {
		t.Fatalf("good token: %+v\n%+v", ok.Diagnosis, ok.Attempts[0])
	}
	bad := check("wrong")
	a := bad.Attempts[0]
	t.Logf("bad token: %s: %s (close %d %q)", bad.Diagnosis.Cause, bad.Diagnosis.Summary, a.CloseCode, a.CloseReason)
	if bad.Diagnosis.Cause != report.CausePostHandshakeRejected || a.CloseCode != 4403 || !strings.Contains(bad.Diagnosis.Summary, "4403") {
		t.Errorf("bad token: %+v\n%+v", bad.Diagnosis, a)
	}
}

// TestStepsAgainstEcho: scripted steps on the testbed's echo origin: each
// step's expect reads until its message comes; a step whose reply never
// comes is unexpected_reply, named, within its own time; {token} works in
// any step.
func TestStepsAgainstEcho(t *testing.T) {
	t.Parallel()
	origin := startOrigin(t, testbed.Behavior{}, nil)
	rep := checkPasses(t, fmt.Sprintf(`  - name: steps
    url: ws://%s/ws
    schedule: "@every 1m"
    timeout: 5s
    token: {value: step-canary-77, in: message}
    steps:
      - {send: "hello", expect: "^hello$"}
      - {send: "auth {token}", expect: "^auth "}
      - {send: ping, expect: "^pong$"}
`, origin.Addr()))
	a := rep.Attempts[0]
	if !rep.OK || len(a.Steps) != 3 {
		t.Fatalf("%+v\n%+v", rep.Diagnosis, a)
	}
	for _, m := range a.Messages {
		if strings.Contains(m, "step-canary-77") {
			t.Errorf("the token echoed back reached the evidence: %q", m)
		}
	}
	rep = checkOnce(t, fmt.Sprintf(`  - name: silent
    url: ws://%s/ws
    schedule: "@every 1m"
    timeout: 10s
    steps:
      - {send: "hello", expect: "^hello$"}
      - {send: "question", expect: "^answer$", within: 1s}
`, origin.Addr()))
	a = rep.Attempts[0]
	t.Logf("%s: %s", rep.Diagnosis.Cause, rep.Diagnosis.Summary)
	if rep.Diagnosis.Cause != report.CauseUnexpectedReply || !strings.Contains(a.Error, "step 2") || a.DurationMS > 5000 {
		t.Errorf("%+v\n%+v", rep.Diagnosis, a)
	}
	if s, ok := a.FailedStep(); !ok || s.Result != report.StepNoMatch {
		t.Errorf("failed step %+v", s)
	}
}

// TestMQTTAuth: Debian's Mosquitto with its WebSocket listener and a
// password file: protocol: mqtt with the good password passes over MQTT
// 3.1.1 and 5; a bad one is refused in the broker's CONNACK code.
func TestMQTTAuth(t *testing.T) {
	t.Parallel()
	requireTool(t, testbed.LookMosquitto(), "mosquitto")
	const good = "mqtt-canary-pass-3d1e"
	m, err := testbed.StartMosquitto(t.TempDir(), map[string]string{"canary": good})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	for _, version := range []string{"3.1.1", "5"} {
		check := func(pass string) report.Report {
			return checkAny(t, fmt.Sprintf(`  - {name: mq, url: "ws://%s/", protocol: mqtt, protocol_options: {username: canary, version: %q}, token: {value: %q, in: message}, schedule: "@every 1m", timeout: 5s}
`, m.WSAddr, version, pass))
		}
		if ok := check(good); !ok.OK || ok.Attempts[0].Subprotocol != "mqtt" {
			t.Fatalf("MQTT %s, good password: %+v\n%+v", version, ok.Diagnosis, ok.Attempts[0])
		}
		bad := check("wrong")
		a := bad.Attempts[0]
		t.Logf("MQTT %s, bad password: %s: %s (messages %q)", version, bad.Diagnosis.Cause, bad.Diagnosis.Summary, a.Messages)
		if bad.Diagnosis.Cause != report.CausePostHandshakeRejected || !strings.Contains(a.Refusal, "CONNACK") ||
			!strings.Contains(bad.Diagnosis.Summary, "MQTT server refuses the session") {
			t.Errorf("MQTT %s, bad password: %+v\n%+v", version, bad.Diagnosis, a)
		}
	}
}

// TestSTOMPAuth: Debian's RabbitMQ with rabbitmq_web_stomp: protocol:
// stomp with guest's password is CONNECTED; a bad one gets the broker's
// ERROR frame, quoted.
func TestSTOMPAuth(t *testing.T) {
	t.Parallel()
	requireTool(t, testbed.LookRabbitMQ(), "rabbitmq-server")
	r, err := testbed.StartRabbitMQ(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	check := func(pass string) report.Report {
		return checkAny(t, fmt.Sprintf(`  - {name: stomp, url: "ws://%s/ws", protocol: stomp, protocol_options: {login: guest}, token: {value: %q, in: message}, schedule: "@every 1m", timeout: 10s}
`, r.WSAddr, pass))
	}
	if ok := check("guest"); !ok.OK || ok.Attempts[0].Subprotocol != "v12.stomp" {
		t.Fatalf("good password: %+v\n%+v", ok.Diagnosis, ok.Attempts[0])
	}
	bad := check("wrong")
	a := bad.Attempts[0]
	t.Logf("bad password: %s: %s", bad.Diagnosis.Cause, bad.Diagnosis.Summary)
	if bad.Diagnosis.Cause != report.CausePostHandshakeRejected || a.Refusal == "" || !strings.Contains(bad.Diagnosis.Summary, "STOMP server refuses the session") {
		t.Errorf("bad password: %+v\n%+v", bad.Diagnosis, a)
	}
}

// TestActionCableAuth: Debian's Action Cable under puma: a connection
// whose connect admits the token (token.in: query) is welcomed and its
// subscription confirmed; a bad token is the server's disconnect
// "unauthorized"; a room the channel rejects is reject_subscription.
func TestActionCableAuth(t *testing.T) {
	t.Parallel()
	requireTool(t, testbed.LookActionCable(), "ruby-actioncable and puma")
	const good = "cable-canary-token-6b0e"
	srv, err := testbed.StartActionCable(t.TempDir(), good)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	check := func(token, room string) report.Report {
		return checkAny(t, fmt.Sprintf(`  - {name: cable, url: "ws://%s/", protocol: actioncable, protocol_options: {channel: ChatChannel, params: '{"room":%q}'}, token: {value: %q, in: query}, schedule: "@every 1m", timeout: 8s}
`, srv.Addr, room, token))
	}
	if ok := check(good, "lobby"); !ok.OK || len(ok.Attempts[0].Steps) != 2 {
		t.Fatalf("good token: %+v\n%+v", ok.Diagnosis, ok.Attempts[0])
	}
	for _, tt := range []struct{ token, room, says string }{
		{"wrong", "lobby", `"disconnect: unauthorized"`},
		{good, "vip", `"subscription to ChatChannel rejected"`},
	} {
		rep := check(tt.token, tt.room)
		t.Logf("token %s, room %s: %s: %s", tt.token[:min(len(tt.token), 5)], tt.room, rep.Diagnosis.Cause, rep.Diagnosis.Summary)
		if rep.Diagnosis.Cause != report.CausePostHandshakeRejected || !strings.Contains(rep.Diagnosis.Summary, tt.says) {
			t.Errorf("%+v", rep.Diagnosis)
		}
		if strings.Contains(rep.Diagnosis.Summary+fmt.Sprint(rep.Attempts), good) {
			t.Errorf("the token reached the report")
		}
	}
}

// TestCentrifugoExpiredToken: a real Centrifugo (its Go module) with HMAC
// connection tokens: a live JWT connects; an expired one gets its error
// 109 "token expired", which is token_expired.
func TestCentrifugoExpiredToken(t *testing.T) {
	t.Parallel()
	_, err := testbed.LookCentrifugo()
	requireTool(t, err, "centrifugo (go install github.com/centrifugal/centrifugo/v6@v6.9.1)")
	const secret = "centrifugo-test-secret"
	srv, err := testbed.StartCentrifugo(t.TempDir(), secret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	token := func(exp time.Time) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: "canary",
			ExpiresAt: jwt.NewNumericDate(exp)}).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	check := func(tok string) report.Report {
		return checkAny(t, fmt.Sprintf(`  - {name: cf, url: "ws://%s/connection/websocket", protocol: centrifugo, token: {value: %q, in: message}, schedule: "@every 1m", timeout: 8s}
`, srv.Addr, tok))
	}
	if ok := check(token(time.Now().Add(time.Hour))); !ok.OK {
		t.Fatalf("live token: %+v\n%+v", ok.Diagnosis, ok.Attempts[0])
	}
	exp := check(token(time.Now().Add(-time.Hour)))
	t.Logf("expired token: %s: %s", exp.Diagnosis.Cause, exp.Diagnosis.Summary)
	if exp.Diagnosis.Cause != report.CauseTokenExpired || !strings.Contains(exp.Diagnosis.Summary, "token expired") {
		t.Errorf("expired token: %+v\n%+v", exp.Diagnosis, exp.Attempts[0])
	}
}

// TestSignalRNegotiate: no ASP.NET Core runs here, so the hub is written
// from SignalR's own documents (TransportProtocols.md: POST
// {endpoint}/negotiate?negotiateVersion=1 answers the connection token,
// the WebSocket then opens with ?id=; HubProtocol.md: the JSON handshake
// answered {} and the record separator). A token the endpoint refuses is
// refused at negotiate, with its 401, as ASP.NET Core's authorization
// does before any WebSocket.
func TestSignalRNegotiate(t *testing.T) {
	t.Parallel()
	const good, conn = "signalr-canary-token-2c4d", "conn-token-7f"
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hub/negotiate", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+good || r.URL.Query().Get("negotiateVersion") != "1" {
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, `{"negotiateVersion":1,"connectionId":"id-1","connectionToken":%q,"availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]},{"transport":"LongPolling","transferFormats":["Text","Binary"]}]}`, conn)
	})
	mux.HandleFunc("GET /hub", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		if _, msg, err := c.Read(r.Context()); err != nil || string(msg) != "{\"protocol\":\"json\",\"version\":1}\x1e" {
			return
		}
		reply := "{}\x1e"
		if r.URL.Query().Get("id") != conn {
			reply = "{\"error\":\"No Connection with that ID\"}\x1e"
		}
		c.Write(r.Context(), websocket.MessageText, []byte(reply))
		c.Read(r.Context())
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	check := func(token string) report.Report {
		return checkAny(t, fmt.Sprintf(`  - {name: hub, url: "ws://%s/hub", protocol: signalr, token: {value: %q, in: header}, schedule: "@every 1m", timeout: 5s}
`, addr, token))
	}
	if ok := check(good); !ok.OK {
		t.Fatalf("good token: %+v\n%+v", ok.Diagnosis, ok.Attempts[0])
	}
	bad := check("wrong")
	t.Logf("bad token: %s: %s", bad.Diagnosis.Cause, bad.Diagnosis.Summary)
	if a := bad.Attempts[0]; a.Status != http.StatusUnauthorized || a.OK || a.Outcome != report.OutcomeRefused {
		t.Errorf("bad token: %+v", a)
	}
	// Without negotiate this hub refuses in its handshake response.
	skip := checkAny(t, fmt.Sprintf(`  - {name: hub, url: "ws://%s/hub", protocol: signalr, protocol_options: {negotiate: "false"}, schedule: "@every 1m", timeout: 5s}
`, addr))
	t.Logf("without negotiate: %s: %s", skip.Diagnosis.Cause, skip.Diagnosis.Summary)
	if skip.Diagnosis.Cause != report.CausePostHandshakeRejected || !strings.Contains(skip.Diagnosis.Summary, "No Connection with that ID") {
		t.Errorf("without negotiate: %+v", skip.Diagnosis)
	}
}
