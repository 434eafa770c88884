package protocol_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/wscanary/wscanary/monitor/protocol"
)

// TestSocketIOReader: what the socket.io session sends and how it reads
// the server's packets (Socket.IO protocol v5, Engine.IO v4).
func TestSocketIOReader(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		ns, token  bool
		connect    string
		msg        string
		refused    bool
		reason     string
		acceptedOK bool
	}{
		{connect: "40", msg: `44{"message":"not authorized"}`, refused: true, reason: "not authorized"},
		{token: true, connect: `40{"token":"{token}"}`, msg: `40{"sid":"abc"}`, acceptedOK: true},
		{ns: true, token: true, connect: `40/admin,{"token":"{token}"}`, msg: `44/admin,{"message":"token expired"}`, refused: true, reason: "token expired"},
		{ns: true, connect: "40/admin,", msg: `44{"message":"main namespace"}`},             // another namespace's refusal
		{connect: "40", msg: `44"a bare string"`, refused: true, reason: `"a bare string"`}, // not the v5 shape: quoted as it came
		{connect: "40", msg: `42["hello","world"]`},                                         // an event is neither
		{ns: true, connect: "40/admin,", msg: `40/admin,{"sid":"x"}`, acceptedOK: true},
	} {
		opts := map[string]string{}
		if tt.ns {
			opts["namespace"] = "/admin"
		}
		sess, err := protocol.Open(protocol.SocketIO, opts, tt.token)
		if err != nil {
			t.Fatal(err)
		}
		step := sess.Steps[1]
		if step.Send != tt.connect {
			t.Errorf("%v: CONNECT %q, want %q", opts, step.Send, tt.connect)
		}
		reason, refused := step.Refused([]byte(tt.msg))
		if refused != tt.refused || reason != tt.reason {
			t.Errorf("%q: refused %v %q, want %v %q", tt.msg, refused, reason, tt.refused, tt.reason)
		}
		if got := step.Expect.MatchString(tt.msg); got != tt.acceptedOK {
			t.Errorf("%q: accepted %v, want %v", tt.msg, got, tt.acceptedOK)
		}
		if sess.CarriesToken != tt.token {
			t.Errorf("carries token %v, want %v", sess.CarriesToken, tt.token)
		}
	}
	sess, _ := protocol.Open(protocol.SocketIO, nil, false)
	if r, ok := sess.Answer([]byte("2")); !ok || string(r) != "3" {
		t.Errorf("ping answered %q %v", r, ok)
	}
	if _, ok := sess.Answer([]byte(`0{"sid":"x"}`)); ok {
		t.Error("the open packet was answered")
	}
}

// TestGraphQLWSSession: connection_init's payload and the pong.
func TestGraphQLWSSession(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		payload string
		token   bool
		send    string
		carries bool
		err     string
	}{
		{"", true, `{"type":"connection_init","payload":{"token":"{token}"}}`, true, ""},
		{"", false, `{"type":"connection_init","payload":{}}`, false, ""},
		{`{"Authorization":"Bearer {token}"}`, true, `{"type":"connection_init","payload":{"Authorization":"Bearer {token}"}}`, true, ""},
		{`{"tenant":"a"}`, true, `{"type":"connection_init","payload":{"tenant":"a"}}`, false, ""},
		{`[1]`, true, "", false, "is not a JSON object"},
	} {
		opts := map[string]string{}
		if tt.payload != "" {
			opts["payload"] = tt.payload
		}
		sess, err := protocol.Open(protocol.GraphQLWS, opts, tt.token)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: %v, want %q", tt.payload, err, tt.err)
			}
			continue
		}
		if err != nil || sess.Steps[0].Send != tt.send || sess.CarriesToken != tt.carries || sess.Subprotocol != "graphql-transport-ws" {
			t.Errorf("%q: %+v %v", tt.payload, sess, err)
		}
		if !sess.Steps[0].Expect.MatchString(`{"type":"connection_ack"}`) || sess.Steps[0].Expect.MatchString(`{"type":"next"}`) {
			t.Errorf("expect %s", sess.Steps[0].Expect)
		}
	}
	sess, _ := protocol.Open(protocol.GraphQLWS, nil, false)
	if r, ok := sess.Answer([]byte(`{"type":"ping"}`)); !ok || string(r) != `{"type":"pong"}` {
		t.Errorf("ping answered %q %v", r, ok)
	}
}

// TestMQTTPackets: the CONNECT built (MQTT 3.1.1 section 3.1, 5.0
// section 3.1) and the CONNACKs read (3.2), byte for byte.
func TestMQTTPackets(t *testing.T) {
	t.Parallel()
	sess, err := protocol.Open(protocol.MQTT, map[string]string{"username": "u"}, true)
	if err != nil {
		t.Fatal(err)
	}
	got := hex.EncodeToString(sess.Steps[0].Build("p"))
	// 10 len | 00 04 MQTT | level 4 | flags user+password+clean | keep-alive 60 | id | user | password
	want := "101a" + "00044d515454" + "04" + "c2" + "003c" + "0008" + hex.EncodeToString([]byte("wscanary")) + "000175" + "000170"
	if got != want || sess.Subprotocol != "mqtt" {
		t.Errorf("CONNECT 3.1.1 %s, want %s", got, want)
	}
	s5, _ := protocol.Open(protocol.MQTT, map[string]string{"version": "5", "client_id": "c1"}, false)
	if got := hex.EncodeToString(s5.Steps[0].Build("")); got != "100f"+"00044d515454"+"05"+"02"+"003c"+"00"+"0002"+hex.EncodeToString([]byte("c1")) {
		t.Errorf("CONNECT 5 without credentials %s", got)
	}
	for _, tt := range []struct {
		v5       bool
		connack  string
		accepted bool
		reason   string
	}{
		{false, "20020000", true, ""},
		{false, "20020100", true, ""},
		{false, "20020004", false, "CONNACK bad user name or password (0x04)"},
		{false, "20020005", false, "CONNACK not authorized (0x05)"},
		{true, "2003000000", true, ""},
		{true, "2003008700", false, "CONNACK not authorized (0x87)"},
		{true, "200b008708" + "1f0005" + hex.EncodeToString([]byte("hello")), false, "CONNACK not authorized (0x87): hello"},
		{true, "2003008a00", false, "CONNACK banned (0x8a)"},
	} {
		s := sess
		if tt.v5 {
			s = s5
		}
		msg, _ := hex.DecodeString(tt.connack)
		reason, refused := s.Steps[0].Refused(msg)
		if refused == tt.accepted || reason != tt.reason || s.Steps[0].Expect.Match(msg) != tt.accepted {
			t.Errorf("%s: refused %v %q, accepted %v", tt.connack, refused, reason, s.Steps[0].Expect.Match(msg))
		}
	}
	if _, err := protocol.Open(protocol.MQTT, map[string]string{"version": "4"}, false); err == nil {
		t.Error("version 4 accepted")
	}
}

// TestPhoenixAndSignalRReaders: no Phoenix or SignalR server can run
// here, so their readers are checked on frames written as the protocols
// define them. Phoenix: the V2 JSON serializer's [join_ref, ref, topic,
// event, payload] frames as Phoenix.Socket.V2.JSONSerializer encodes
// them (Jason: map keys sorted), phx_reply with status ok or error and
// the join/3 {:error, %{reason: ...}} response (hexdocs.pm/phoenix,
// Phoenix.Channel "Authorization"). SignalR: the JSON hub protocol's
// handshake response ({} or {"error": ...}) and close message (type 7),
// each ended by the record separator 0x1E (dotnet/aspnetcore
// src/SignalR/docs/specs/HubProtocol.md).
func TestPhoenixAndSignalRReaders(t *testing.T) {
	t.Parallel()
	ph, err := protocol.Open(protocol.Phoenix, map[string]string{"topic": "room:lobby"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := ph.Steps[0].Send; got != `["1","1","room:lobby","phx_join",{"token":"{token}"}]` || !ph.CarriesToken {
		t.Errorf("phx_join %s", got)
	}
	sr, _ := protocol.Open(protocol.SignalR, nil, false)
	if sr.Steps[0].Send != "{\"protocol\":\"json\",\"version\":1}\x1e" {
		t.Errorf("handshake %q", sr.Steps[0].Send)
	}
	for _, tt := range []struct {
		s        protocol.Session
		frame    string
		accepted bool
		reason   string
	}{
		{ph, `["1","1","room:lobby","phx_reply",{"response":{},"status":"ok"}]`, true, ""},
		{ph, `["1","1","room:lobby","phx_reply",{"response":{"reason":"unauthorized"},"status":"error"}]`, false, "join refused: unauthorized"},
		{ph, `["1","1","room:lobby","phx_reply",{"response":{"reason":"token expired"},"status":"error"}]`, false, "join refused: token expired"},
		{ph, `[null,"2","phoenix","phx_reply",{"response":{},"status":"ok"}]`, false, ""}, // a heartbeat's reply
		{ph, `["1","1","room:other","phx_reply",{"response":{},"status":"ok"}]`, false, ""},
		{sr, "{}\x1e", true, ""},
		{sr, "{\"error\":\"Requested protocol 'json' is not available.\"}\x1e", false, "hub refused: Requested protocol 'json' is not available."},
		{sr, "{}\x1e{\"type\":7,\"error\":\"Connection closed with an error. Unauthorized\",\"allowReconnect\":false}\x1e", true, "hub refused: Connection closed with an error. Unauthorized"},
		{sr, "{\"type\":6}\x1e", false, ""},
	} {
		reason, refused := tt.s.Steps[0].Refused([]byte(tt.frame))
		if reason != tt.reason || refused != (tt.reason != "") {
			t.Errorf("%q: refused %v %q, want %q", tt.frame, refused, reason, tt.reason)
		}
		if got := tt.s.Steps[0].Expect.MatchString(tt.frame); got != tt.accepted {
			t.Errorf("%q: accepted %v, want %v", tt.frame, got, tt.accepted)
		}
	}
	if _, err := protocol.Open(protocol.Phoenix, nil, false); err == nil {
		t.Error("phoenix without a topic accepted")
	}
}

// TestSTOMPFrames: the CONNECT sent and the ERROR frames read (STOMP 1.2;
// the first ERROR is RabbitMQ web-stomp's to a bad passcode, seen here).
func TestSTOMPFrames(t *testing.T) {
	t.Parallel()
	s, err := protocol.Open(protocol.STOMP, map[string]string{"login": "guest", "host": "/app"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := "CONNECT\naccept-version:1.2\nhost:/app\nlogin:guest\npasscode:{token}\nheart-beat:0,0\n\n\x00"; s.Steps[0].Send != want || s.Subprotocol != "v12.stomp" {
		t.Errorf("CONNECT %q", s.Steps[0].Send)
	}
	h, _ := protocol.Open(protocol.STOMP, map[string]string{"header": "Authorization"}, true)
	if !strings.Contains(h.Steps[0].Send, "\nAuthorization:{token}\n") {
		t.Errorf("token header %q", h.Steps[0].Send)
	}
	for _, tt := range []struct{ frame, reason string }{
		{"ERROR\nmessage:Bad CONNECT\ncontent-type:text/plain\nversion:1.0,1.1,1.2\ncontent-length:32\n\nAccess refused for user 'guest'\n\x00\n", "Bad CONNECT: Access refused for user 'guest'"},
		{"ERROR\nmessage:malformed frame received\n\n\x00", "malformed frame received"},
		{"\nERROR\n\nno message header\x00", "no message header"},
		{"CONNECTED\nversion:1.2\n\n\x00", ""},
	} {
		reason, refused := s.Steps[0].Refused([]byte(tt.frame))
		if reason != tt.reason || refused != (tt.reason != "") {
			t.Errorf("%q: %v %q, want %q", tt.frame, refused, reason, tt.reason)
		}
	}
	if !s.Steps[0].Expect.MatchString("CONNECTED\nversion:1.2\n\n\x00") {
		t.Error("CONNECTED not accepted")
	}
	if _, err := protocol.Open(protocol.STOMP, map[string]string{"login": "a\nb"}, false); err == nil {
		t.Error("a newline in login accepted")
	}
}

// TestActionCableFrames: the subscribe command (its identifier a JSON
// string, keys sorted) and the frames read, as Action Cable 6.1 sends
// them (welcome, disconnect with a reason, confirm and reject).
func TestActionCableFrames(t *testing.T) {
	t.Parallel()
	s, err := protocol.Open(protocol.ActionCable, map[string]string{"channel": "ChatChannel", "params": `{"room":"lobby"}`}, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"command":"subscribe","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"lobby\"}"}`; s.Steps[1].Send != want {
		t.Errorf("subscribe %s, want %s", s.Steps[1].Send, want)
	}
	for _, tt := range []struct {
		step            int
		frame, reason   string
		accepted, isRef bool
	}{
		{0, `{"type":"welcome"}`, "", true, false},
		{0, `{"type":"disconnect","reason":"unauthorized","reconnect":false}`, "disconnect: unauthorized", false, true},
		{0, `{"type":"ping","message":1733354000}`, "", false, false},
		{1, `{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"lobby\"}","type":"confirm_subscription"}`, "", true, false},
		{1, `{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"vip\"}","type":"reject_subscription"}`, "subscription to ChatChannel rejected", false, true},
		{1, `{"type":"disconnect","reason":"server_restart","reconnect":true}`, "disconnect: server_restart", false, true},
	} {
		st := s.Steps[tt.step]
		reason, refused := st.Refused([]byte(tt.frame))
		if reason != tt.reason || refused != tt.isRef || st.Expect.MatchString(tt.frame) != tt.accepted {
			t.Errorf("%s: refused %v %q, accepted %v", tt.frame, refused, reason, st.Expect.MatchString(tt.frame))
		}
	}
	if _, err := protocol.Open(protocol.ActionCable, nil, false); err == nil {
		t.Error("no channel accepted")
	}
}

// TestCentrifugoReplies: the connect command and its replies as
// Centrifugo's JSON protocol sends them (client.proto: Reply with id,
// connect or error).
func TestCentrifugoReplies(t *testing.T) {
	t.Parallel()
	s, _ := protocol.Open(protocol.Centrifugo, nil, true)
	if s.Steps[0].Send != `{"id":1,"connect":{"token":"{token}","name":"wscanary"}}` {
		t.Errorf("connect %s", s.Steps[0].Send)
	}
	for _, tt := range []struct{ frame, reason string }{
		{`{"id":1,"connect":{"client":"c1","version":"6.9.1","ping":25,"pong":true}}`, ""},
		{`{"id":1,"error":{"code":109,"message":"token expired"}}`, "error 109: token expired"},
		{`{"id":1,"error":{"code":103,"message":"permission denied"}}`, "error 103: permission denied"},
		{`{"id":2,"error":{"code":109,"message":"token expired"}}`, ""}, // another command's
	} {
		reason, refused := s.Steps[0].Refused([]byte(tt.frame))
		if reason != tt.reason || refused != (tt.reason != "") {
			t.Errorf("%s: %v %q", tt.frame, refused, reason)
		}
	}
	if !s.Steps[0].Expect.MatchString(`{"id":1,"connect":{"client":"c1"}}`) {
		t.Error("connect reply not accepted")
	}
	if r, ok := s.Answer([]byte("{}")); !ok || string(r) != "{}" {
		t.Error("ping not answered")
	}
}
