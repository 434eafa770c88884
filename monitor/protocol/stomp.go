package protocol

import (
	"cmp"
	"fmt"
	"regexp"
	"strings"

	"github.com/wscanary/wscanary/monitor/probe"
)

// stomp: a STOMP 1.2 CONNECT over the v12.stomp subprotocol, with
// protocol_options.login and the check's token as passcode (or in the
// CONNECT header named by protocol_options.header), then CONNECTED, or an
// ERROR frame whose message header says why. Heart-beating is off: a
// check's session is short. CONNECT frames are not escaped (STOMP 1.2,
// "Value Encoding"). https://stomp.github.io/stomp-specification-1.2.html
func stomp(opts map[string]string, token bool) (Session, error) {
	host := opts["host"]
	if host == "" {
		host = "/"
	}
	header := opts["header"]
	if header == "" {
		header = "passcode"
	}
	for k, v := range map[string]string{"login": opts["login"], "host": host, "header": header} {
		if strings.ContainsAny(v, "\n\r\x00") || k == "header" && strings.Contains(v, ":") {
			return Session{}, fmt.Errorf("protocol_options.%s: %q cannot go in a STOMP header", k, v)
		}
	}
	frame := "CONNECT\naccept-version:1.2\nhost:" + host + "\n"
	if opts["login"] != "" {
		frame += "login:" + opts["login"] + "\n"
	}
	if token {
		frame += header + ":{token}\n"
	}
	frame += "heart-beat:0,0\n\n\x00"
	return Session{
		Subprotocol: "v12.stomp",
		Steps: []probe.Step{{Name: "CONNECT", Send: frame, Expect: regexp.MustCompile(`^\n*CONNECTED\r?\n`),
			Refused: stompError}},
		CarriesToken: token,
	}, nil
}

// stompError reads an ERROR frame: its message header, and the start of
// its body when it says more.
func stompError(msg []byte) (string, bool) {
	s := strings.TrimLeft(string(msg), "\r\n")
	if !strings.HasPrefix(s, "ERROR\n") && !strings.HasPrefix(s, "ERROR\r\n") {
		return "", false
	}
	head, body, _ := strings.Cut(s, "\n\n")
	var message string
	for _, line := range strings.Split(head, "\n")[1:] {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "message:"); ok {
			message = v
			break
		}
	}
	body = strings.Trim(body, " \t\r\n\x00")
	switch {
	case message == "":
		message = cmp.Or(body, "ERROR")
	case body != "" && !strings.Contains(message, body):
		message += ": " + body
	}
	return message, true
}
