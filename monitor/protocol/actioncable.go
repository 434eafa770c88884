package protocol

import (
	"cmp"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/wscanary/wscanary/monitor/probe"
)

// actionCable: Rails' Action Cable (actioncable-v1-json). The server
// sends {"type":"welcome"} once the connection's connect admitted it, or
// {"type":"disconnect","reason":"unauthorized"} when it called
// reject_unauthorized_connection; then the client subscribes to
// protocol_options.channel (its identifier, with protocol_options.params
// merged in) and gets confirm_subscription, or reject_subscription when
// the channel's subscribed called reject. Its pings need no answer.
// Source: ActionCable::Connection::Base and the @rails/actioncable
// client (actioncable/app/javascript).
func actionCable(opts map[string]string) (Session, error) {
	channel := opts["channel"]
	if channel == "" {
		return Session{}, fmt.Errorf("protocol_options.channel: the channel to subscribe to (ChatChannel) is required")
	}
	ident := map[string]any{}
	if p := opts["params"]; p != "" {
		if err := json.Unmarshal([]byte(p), &ident); err != nil {
			return Session{}, fmt.Errorf("protocol_options.params: %q is not a JSON object", p)
		}
	}
	ident["channel"] = channel
	identifier, _ := json.Marshal(ident) // keys sorted: the server matches identifiers as strings
	subscribe, _ := json.Marshal(map[string]string{"command": "subscribe", "identifier": string(identifier)})
	var frame struct {
		Type       string `json:"type"`
		Reason     string `json:"reason"`
		Identifier string `json:"identifier"`
	}
	read := func(msg []byte) bool {
		frame.Type, frame.Reason, frame.Identifier = "", "", ""
		return json.Unmarshal(msg, &frame) == nil
	}
	disconnect := func(msg []byte) (string, bool) {
		if read(msg) && frame.Type == "disconnect" {
			return "disconnect: " + cmp.Or(frame.Reason, "no reason"), true
		}
		return "", false
	}
	return Session{
		Subprotocol: "actioncable-v1-json",
		Steps: []probe.Step{
			{Name: "welcome", Expect: regexp.MustCompile(`"type"\s*:\s*"welcome"`), Refused: disconnect},
			{Name: "subscribe " + channel, Send: string(subscribe), Expect: regexp.MustCompile(`"type"\s*:\s*"confirm_subscription"`),
				Refused: func(msg []byte) (string, bool) {
					if r, ok := disconnect(msg); ok {
						return r, true
					}
					if read(msg) && frame.Type == "reject_subscription" {
						return "subscription to " + channel + " rejected", true
					}
					return "", false
				}},
		},
	}, nil
}
