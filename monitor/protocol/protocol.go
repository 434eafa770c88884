// Package protocol knows the application protocols that run over a
// WebSocket after the upgrade, as far as a monitor needs them: how a
// client opens a session (with its credential where the protocol carries
// one), and how the server says no. Each refusal starts with a 101: the
// handshake is fine and the users are not. A preset is a list of
// probe.Steps plus the reader of its refusal; the diagnosis quotes what
// the reader found.
package protocol

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/wscanary/wscanary/monitor/probe"
)

// Names are the presets, for the configuration and its schema.
var Names = []string{SocketIO, GraphQLWS, MQTT, STOMP, ActionCable, Centrifugo, Phoenix, SignalR}

const (
	// SocketIO is Socket.IO 4 (Engine.IO 4) over a WebSocket.
	SocketIO = "socket.io"
	// GraphQLWS is the graphql-transport-ws protocol of the graphql-ws
	// library.
	GraphQLWS = "graphql-ws"
	// MQTT is MQTT 3.1.1 or 5 over a WebSocket.
	MQTT = "mqtt"
	// STOMP is STOMP 1.2 over a WebSocket (RabbitMQ web-stomp, ActiveMQ).
	STOMP = "stomp"
	// ActionCable is Rails' Action Cable.
	ActionCable = "actioncable"
	// Centrifugo is Centrifugo's JSON client protocol.
	Centrifugo = "centrifugo"
	// Phoenix is Phoenix Channels (V2 JSON serializer).
	Phoenix = "phoenix"
	// SignalR is ASP.NET Core SignalR's JSON hub protocol.
	SignalR = "signalr"
)

// Options are each preset's protocol_options keys.
var Options = map[string][]string{
	SocketIO:    {"namespace"},
	GraphQLWS:   {"payload"},
	MQTT:        {"username", "client_id", "version"},
	STOMP:       {"login", "host", "header"},
	ActionCable: {"channel", "params"},
	Centrifugo:  {},
	Phoenix:     {"topic", "payload"},
	SignalR:     {"negotiate"},
}

// Session is how a check opens a session of its protocol.
type Session struct {
	Steps []probe.Step
	// Subprotocol is the one the protocol needs offered ("" for none).
	Subprotocol string
	// Answer replies to the server's keep-alives while a step waits.
	Answer func([]byte) ([]byte, bool)
	// Negotiate is an HTTP exchange the protocol makes before the
	// WebSocket (SignalR's negotiate), nil for none.
	Negotiate func(ctx context.Context, c *http.Client, u *url.URL, h http.Header) (*url.URL, *http.Response, error)
	// CarriesToken: the credential goes in a message of the session, so
	// token.in: message needs no {token} in the check's own steps.
	CarriesToken bool
}

// Open returns the session of the named protocol with its options; token
// says whether the check has a credential that goes in a message.
func Open(name string, opts map[string]string, token bool) (Session, error) {
	for k := range opts {
		if !slices.Contains(Options[name], k) {
			return Session{}, fmt.Errorf("protocol_options: %q is not an option of %s (%s)", k, name, strings.Join(Options[name], ", "))
		}
	}
	switch name {
	case SocketIO:
		return socketIO(opts["namespace"], token)
	case GraphQLWS:
		return graphQLWS(opts["payload"], token)
	case MQTT:
		return mqtt(opts, token)
	case STOMP:
		return stomp(opts, token)
	case ActionCable:
		return actionCable(opts)
	case Centrifugo:
		return centrifugo(token)
	case Phoenix:
		return phoenix(opts, token)
	case SignalR:
		return signalr(opts)
	}
	known := slices.Clone(Names)
	sort.Strings(known)
	return Session{}, fmt.Errorf("protocol: %q is not a known protocol (%s)", name, strings.Join(known, ", "))
}

// socketIO: the server's open packet (0{...}), then the client's
// namespace CONNECT (40, with the credential in its auth payload), then
// 40 back, or 44 CONNECT_ERROR with the middleware's {"message": ...}.
// The server's ping (2) is answered with pong (3). Socket.IO's protocol:
// https://socket.io/docs/v4/socket-io-protocol/ and engine.io-protocol.
func socketIO(namespace string, token bool) (Session, error) {
	ns := ""
	switch {
	case namespace == "" || namespace == "/":
	case strings.HasPrefix(namespace, "/") && !strings.ContainsAny(namespace, ",\"\\ \n"):
		ns = namespace + ","
	default:
		return Session{}, fmt.Errorf("protocol_options.namespace: %q must start with / and hold no comma, quote or space", namespace)
	}
	connect := "40" + ns
	if token {
		connect += `{"token":"{token}"}`
	}
	accepted := regexp.MustCompile(`^40` + regexp.QuoteMeta(ns))
	refused := func(msg []byte) (string, bool) {
		rest, ok := strings.CutPrefix(string(msg), "44"+ns)
		if !ok {
			return "", false
		}
		var body struct {
			Message string `json:"message"`
		}
		if json.Unmarshal([]byte(rest), &body) == nil && body.Message != "" {
			return body.Message, true
		}
		return strings.TrimSpace(rest), true
	}
	return Session{
		Steps: []probe.Step{
			{Name: "engine.io open", Expect: regexp.MustCompile(`^0\{`)},
			{Name: "namespace connect", Send: connect, Expect: accepted, Refused: refused},
		},
		Answer: func(msg []byte) ([]byte, bool) {
			if string(msg) == "2" {
				return []byte("3"), true
			}
			return nil, false
		},
		CarriesToken: token,
	}, nil
}

// graphQLWS: connection_init with the payload (default {"token":
// "{token}"} when the check has a credential), then connection_ack; a
// refusal is a close, 4403 Forbidden from onConnect returning false,
// 4401 or 4400. https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md
func graphQLWS(payload string, token bool) (Session, error) {
	payload, err := payloadOf(payload, token)
	if err != nil {
		return Session{}, err
	}
	return Session{
		Subprotocol: "graphql-transport-ws",
		Steps: []probe.Step{{Name: "connection_init", Send: `{"type":"connection_init","payload":` + payload + `}`,
			Expect: regexp.MustCompile(`"type"\s*:\s*"connection_ack"`)}},
		// The server pings (type ping) and expects a pong.
		Answer: func(msg []byte) ([]byte, bool) {
			var m struct{ Type string }
			if json.Unmarshal(msg, &m) == nil && m.Type == "ping" {
				return []byte(`{"type":"pong"}`), true
			}
			return nil, false
		},
		CarriesToken: token && strings.Contains(payload, "{token}"),
	}, nil
}
