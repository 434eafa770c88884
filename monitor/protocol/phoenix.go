package protocol

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
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
	payload, err := payloadOf(opts["payload"], token)
	if err != nil {
		return Session{}, err
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
				return "join refused: " + cmp.Or(reason, "error"), true
			}}},
		CarriesToken: token && strings.Contains(payload, "{token}"),
	}, nil
}

// signalr: the JSON hub protocol's handshake, {"protocol":"json",
// "version":1} and the record separator 0x1E, answered {} (accepted) or
// {"error": ...}; a close message (type 7) carries the server's error.
// Before it, as SignalR's clients do, the negotiate request
// (signalrNegotiate), unless protocol_options.negotiate is false (the
// clients' skipNegotiation). Source: ASP.NET Core's HubProtocol.md and
// TransportProtocols.md.
func signalr(opts map[string]string) (Session, error) {
	const rs = "\x1e"
	var negotiate func(context.Context, *http.Client, *url.URL, http.Header) (*url.URL, *http.Response, error)
	switch opts["negotiate"] {
	case "", "true":
		negotiate = signalrNegotiate
	case "false":
	default:
		return Session{}, fmt.Errorf("protocol_options.negotiate: %q is not true or false", opts["negotiate"])
	}
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
					return "hub refused: " + cmp.Or(e, "closed"), true
				}
				return "", false
			}}},
		// The server's ping (type 6) needs no answer within a check.
		Negotiate: negotiate,
	}, nil
}

// signalrNegotiate is SignalR's negotiate request (TransportProtocols.md,
// negotiateVersion 1): POST {endpoint}/negotiate with the request's
// headers (its access token), then the WebSocket URL with the connection
// token as id, or the URL and access token the answer redirects to
// (Azure SignalR Service). A refusal (401, 403) is returned as the
// answer; an error the body names is an error.
func signalrNegotiate(ctx context.Context, c *http.Client, u *url.URL, h http.Header) (*url.URL, *http.Response, error) {
	nu := *u
	nu.Scheme = map[string]string{"ws": "http", "wss": "https"}[u.Scheme]
	nu.Path = strings.TrimSuffix(u.Path, "/") + "/negotiate"
	q := nu.Query()
	q.Set("negotiateVersion", "1")
	nu.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, nu.String(), nil)
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range h {
		if !strings.HasPrefix(strings.ToLower(k), "sec-websocket") {
			req.Header[k] = vs
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("POST %s: %w", nu.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp, nil
	}
	defer resp.Body.Close()
	var n struct {
		ConnectionToken     string `json:"connectionToken"`
		ConnectionID        string `json:"connectionId"`
		URL                 string `json:"url"`
		AccessToken         string `json:"accessToken"`
		Error               string `json:"error"`
		AvailableTransports []struct {
			Transport string `json:"transport"`
		} `json:"availableTransports"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&n); err != nil {
		return nil, nil, fmt.Errorf("its answer is not negotiate JSON: %w", err)
	}
	switch {
	case n.Error != "":
		return nil, nil, fmt.Errorf("the server says %q", n.Error)
	case n.URL != "":
		r, err := url.Parse(n.URL)
		if err != nil || (r.Scheme != "http" && r.Scheme != "https") {
			return nil, nil, fmt.Errorf("it redirects to %q, not an http(s) URL", n.URL)
		}
		r.Scheme = map[string]string{"http": "ws", "https": "wss"}[r.Scheme]
		if n.AccessToken != "" {
			rq := r.Query()
			rq.Set("access_token", n.AccessToken)
			r.RawQuery = rq.Encode()
		}
		return r, nil, nil
	}
	if !slices.ContainsFunc(n.AvailableTransports, func(t struct {
		Transport string `json:"transport"`
	}) bool {
		return t.Transport == "WebSockets"
	}) {
		return nil, nil, errors.New("WebSockets is not among its transports")
	}
	id := cmp.Or(n.ConnectionToken, n.ConnectionID)
	if id == "" {
		return nil, nil, errors.New("its answer has no connection token")
	}
	ws := *u
	wq := ws.Query()
	wq.Set("id", id)
	ws.RawQuery = wq.Encode()
	return &ws, nil, nil
}

// payloadOf is protocol_options.payload, a JSON object with {token} where
// the credential goes; by default {"token": "{token}"} with a credential,
// {} without.
func payloadOf(payload string, token bool) (string, error) {
	if payload == "" {
		payload = "{}"
		if token {
			payload = `{"token":"{token}"}`
		}
	}
	if err := jsonObject(payload); err != nil {
		return "", fmt.Errorf("protocol_options.payload: %w", err)
	}
	return payload, nil
}

func jsonObject(s string) error {
	probeJSON := strings.ReplaceAll(s, "{token}", "t")
	if !json.Valid([]byte(probeJSON)) || !strings.HasPrefix(strings.TrimSpace(probeJSON), "{") {
		return fmt.Errorf("%q is not a JSON object (with {token} where the credential goes)", s)
	}
	return nil
}
