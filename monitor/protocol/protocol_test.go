package protocol_test

import (
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
