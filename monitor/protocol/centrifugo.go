package protocol

import (
	"cmp"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/wscanary/wscanary/monitor/probe"
)

// centrifugo: Centrifugo's client protocol (JSON, /connection/websocket):
// a connect command with the connection token, then its reply with the
// client's id, or an error reply ({"code": 109, "message": "token
// expired"}), or a disconnect close (3500 invalid token, ...). Source:
// Centrifugo's client protocol documentation and its protocol's
// client.proto (centrifugal/protocol).
func centrifugo(token bool) (Session, error) {
	connect := `{"id":1,"connect":{"name":"wscanary"}}`
	if token {
		connect = `{"id":1,"connect":{"token":"{token}","name":"wscanary"}}`
	}
	return Session{
		Steps: []probe.Step{{Name: "connect", Send: connect, Expect: regexp.MustCompile(`^\{"id":1,"connect":`),
			Refused: func(msg []byte) (string, bool) {
				var r struct {
					ID    int `json:"id"`
					Error *struct {
						Code    int    `json:"code"`
						Message string `json:"message"`
					} `json:"error"`
				}
				if json.Unmarshal(msg, &r) != nil || r.ID != 1 || r.Error == nil {
					return "", false
				}
				return fmt.Sprintf("error %d: %s", r.Error.Code, cmp.Or(r.Error.Message, "no message")), true
			}}},
		// Its pings ({}) need the client's pong ({}) only after a minute.
		Answer: func(msg []byte) ([]byte, bool) {
			if string(msg) == "{}" {
				return []byte("{}"), true
			}
			return nil, false
		},
		CarriesToken: token,
	}, nil
}
