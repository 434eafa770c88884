package protocol

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/wscanary/wscanary/monitor/probe"
)

// phoenix: a Phoenix Channels join over the V2 JSON serializer
// (/socket/websocket?vsn=2.0.0): the client sends [join_ref, ref, topic,
// "phx_join", payload] and the channel's join/3 answers a phx_reply whose
// payload is {"status": "ok"} or {"status": "error", "response":
// {"reason": ...}}. A socket's connect/3 that refuses answers the upgrade
// itself with 403. Source: Phoenix.Socket.V2.JSONSerializer and
// phoenix.js (the framework's own client).
func phoenix(opts map[string]string, token bool) (Session, error) {
	topic := opts["topic"]
	if topic == "" || strings.ContainsAny(topic, "\"\\\n") {
		return Session{}, fmt.Errorf("protocol_options.topic: the channel topic to join (room:lobby) is required, without quotes")
	}
	payload := opts["payload"]
	if payload == "" {
		payload = "{}"
		if token {
			payload = `{"token":"{token}"}`
		}
	}
	if err := jsonObject(payload); err != nil {
		return Session{}, fmt.Errorf("protocol_options.payload: %w", err)
	}
	join := `["1","1","` + topic + `","phx_join",` + payload + `]`
	reply := func(msg []byte) (ok bool, reason string, mine bool) {
		var frame []json.RawMessage
		if json.Unmarshal(msg, &frame) != nil || len(frame) != 5 {
			return false, "", false
		}
		var ref, event string
		json.Unmarshal(frame[1], &ref)
		json.Unmarshal(frame[3], &event)
		if ref != "1" || event != "phx_reply" {
			return false, "", false
		}
		var p struct {
			Status   string          `json:"status"`
			Response json.RawMessage `json:"response"`
		}
		json.Unmarshal(frame[4], &p)
		if p.Status == "ok" {
			return true, "", true
		}
		var r struct {
			Reason string `json:"reason"`
		}
		if json.Unmarshal(p.Response, &r) == nil && r.Reason != "" {
			return false, r.Reason, true
		}
		return false, strings.TrimSpace(string(p.Response)), true
	}
	return Session{
		Steps: []probe.Step{{Name: "phx_join " + topic, Send: join,
			Expect: regexp.MustCompile(`^\["1","1",` + regexp.QuoteMeta(`"`+topic+`"`) + `,"phx_reply",\{.*"status":"ok"`),
			Refused: func(msg []byte) (string, bool) {
				ok, reason, mine := reply(msg)
				if !mine || ok {
					return "", false
				}
				return "join refused: " + nameOr(reason, "error"), true
			}}},
		CarriesToken: token && strings.Contains(payload, "{token}"),
	}, nil
}

// signalr: the JSON hub protocol's handshake, {"protocol":"json",
// "version":1} and the record separator 0x1E, answered {} (accepted) or
// {"error": ...}; a close message (type 7) carries the server's error.
// The negotiate request some endpoints need before the WebSocket is not
// made: point the check at the WebSocket URL the clients use with
// skipNegotiation (or the one negotiate returns). Source: ASP.NET Core's
// HubProtocol.md and TransportProtocols.md.
func signalr(opts map[string]string) (Session, error) {
	const rs = "\x1e"
	parse := func(msg []byte) (errText string, isErr bool) {
		for _, rec := range strings.Split(string(msg), rs) {
			var m struct {
				Error *string `json:"error"`
				Type  int     `json:"type"`
			}
			if rec == "" || json.Unmarshal([]byte(rec), &m) != nil {
				continue
			}
			if m.Error != nil && (m.Type == 0 || m.Type == 7) {
				return *m.Error, true
			}
		}
		return "", false
	}
	return Session{
		Steps: []probe.Step{{Name: "hub handshake", Send: `{"protocol":"json","version":1}` + rs,
			Expect: regexp.MustCompile(`^\{\}` + rs),
			Refused: func(msg []byte) (string, bool) {
				if e, ok := parse(msg); ok {
					return "hub refused: " + nameOr(e, "closed"), true
				}
				return "", false
			}}},
		// The server's ping (type 6) needs no answer within a check.
	}, nil
}

func jsonObject(s string) error {
	probeJSON := strings.ReplaceAll(s, "{token}", "t")
	if !json.Valid([]byte(probeJSON)) || !strings.HasPrefix(strings.TrimSpace(probeJSON), "{") {
		return fmt.Errorf("%q is not a JSON object (with {token} where the credential goes)", s)
	}
	return nil
}

func nameOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
