package protocol

import (
	"encoding/binary"
	"fmt"
	"regexp"

	"github.com/wscanary/wscanary/monitor/probe"
)

// mqtt: a CONNECT (MQTT 3.1.1, or 5 with version: "5") with the
// username of protocol_options and the credential as its password, then
// the broker's CONNACK: return code 0 (3.1.1) or reason code 0 (5) is
// accepted, anything else is the broker's refusal in its own code. The
// subprotocol is mqtt, as MQTT over WebSockets requires (MQTT 3.1.1
// section 6, MQTT 5.0 section 6).
func mqtt(opts map[string]string, token bool) (Session, error) {
	level := byte(4)
	switch opts["version"] {
	case "", "3.1.1":
	case "5":
		level = 5
	default:
		return Session{}, fmt.Errorf("protocol_options.version: %q is not 3.1.1 or 5", opts["version"])
	}
	user, id := opts["username"], opts["client_id"]
	if id == "" {
		id = "wscanary"
	}
	if len(user) > 0xffff || len(id) > 23 {
		return Session{}, fmt.Errorf("protocol_options: username too long or client_id over 23 characters")
	}
	build := func(password string) []byte {
		return mqttConnect(level, id, user, password, token)
	}
	return Session{
		Subprotocol: "mqtt",
		Steps: []probe.Step{{Name: "CONNECT", Build: build,
			// CONNACK (0x20), its length, the session-present flags and
			// return (reason) code 0.
			Expect:  regexp.MustCompile(`^\x20[\x02-\x7f][\x00\x01]\x00`),
			Refused: func(msg []byte) (string, bool) { return connackRefusal(level, msg) }}},
		CarriesToken: token,
	}, nil
}

// mqttConnect builds a CONNECT packet: clean session, keep-alive 60 s.
func mqttConnect(level byte, id, user, password string, withPassword bool) []byte {
	str := func(b []byte, s string) []byte {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		return append(b, s...)
	}
	flags := byte(0x02) // clean session / clean start
	if user != "" {
		flags |= 0x80
	}
	if withPassword {
		flags |= 0x40
	}
	body := str(nil, "MQTT")
	body = append(body, level, flags, 0x00, 0x3c)
	if level == 5 {
		body = append(body, 0x00) // no properties
	}
	body = str(body, id)
	if user != "" {
		body = str(body, user)
	}
	if withPassword {
		body = str(body, password)
	}
	pkt := []byte{0x10}
	for n := len(body); ; { // remaining length, a variable byte integer
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		pkt = append(pkt, b)
		if n == 0 {
			break
		}
	}
	return append(pkt, body...)
}

// connackRefusal reads a CONNACK that refuses: its code, named, and for
// MQTT 5 the broker's reason string when it sent one.
func connackRefusal(level byte, msg []byte) (string, bool) {
	if len(msg) < 4 || msg[0] != 0x20 || msg[3] == 0 {
		return "", false
	}
	code := msg[3]
	var name string
	if level == 5 {
		name = mqtt5Reasons[code]
	} else {
		name = mqtt311Codes[code]
	}
	if name == "" {
		name = "unknown code"
	}
	reason := fmt.Sprintf("CONNACK %s (0x%02x)", name, code)
	if level == 5 {
		if s := reasonString(msg[4:]); s != "" {
			reason += ": " + s
		}
	}
	return reason, true
}

// reasonString finds the Reason String property (0x1F) in a CONNACK's
// properties.
func reasonString(props []byte) string {
	if len(props) == 0 || props[0] >= 0x80 {
		return ""
	}
	n := int(props[0])
	p := props[1:min(len(props), 1+n)]
	for len(p) > 0 {
		id := p[0]
		p = p[1:]
		switch id {
		case 0x1f, 0x12, 0x1a, 0x1c, 0x15: // strings: reason, assigned id, response info, server ref, auth method
			if len(p) < 2 {
				return ""
			}
			l := int(binary.BigEndian.Uint16(p))
			if len(p) < 2+l {
				return ""
			}
			if id == 0x1f {
				return string(p[2 : 2+l])
			}
			p = p[2+l:]
		case 0x11, 0x27: // four-byte integers
			p = p[min(len(p), 4):]
		case 0x13, 0x21, 0x22: // two-byte integers
			p = p[min(len(p), 2):]
		case 0x24, 0x25, 0x28, 0x29, 0x2a: // bytes
			p = p[min(len(p), 1):]
		default:
			return "" // a property this reader does not skip
		}
	}
	return ""
}

// The CONNACK return codes of MQTT 3.1.1 (3.2.2.3).
var mqtt311Codes = map[byte]string{
	1: "unacceptable protocol version", 2: "identifier rejected", 3: "server unavailable",
	4: "bad user name or password", 5: "not authorized",
}

// The CONNACK reason codes of MQTT 5.0 (3.2.2.2).
var mqtt5Reasons = map[byte]string{
	0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error", 0x83: "implementation specific error",
	0x84: "unsupported protocol version", 0x85: "client identifier not valid", 0x86: "bad user name or password",
	0x87: "not authorized", 0x88: "server unavailable", 0x89: "server busy", 0x8a: "banned",
	0x8c: "bad authentication method", 0x90: "topic name invalid", 0x95: "packet too large", 0x97: "quota exceeded",
	0x99: "payload format invalid", 0x9a: "retain not supported", 0x9b: "QoS not supported", 0x9c: "use another server",
	0x9d: "server moved", 0x9f: "connection rate exceeded",
}
