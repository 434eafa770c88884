package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// socketMode is the Socket Mode side of a FakeSlack, as Slack documents it
// (api.slack.com/apis/socket-mode): apps.connections.open with the app
// token answers a WebSocket URL; the socket says hello, pings, carries
// envelopes and expects each acknowledged with its envelope_id.
type socketMode struct {
	appToken string

	mu    sync.Mutex
	conn  *websocket.Conn
	opens int
	n     int
	acked map[string]chan struct{}
}

// EnableSocketMode makes the fake accept apps.connections.open with this
// app-level token and serve the socket it points to.
func (f *FakeSlack) EnableSocketMode(appToken string) {
	f.sm.mu.Lock()
	f.sm.appToken = appToken
	f.sm.acked = map[string]chan struct{}{}
	f.sm.mu.Unlock()
}

// SocketOpens counts the sockets opened so far.
func (f *FakeSlack) SocketOpens() int {
	f.sm.mu.Lock()
	defer f.sm.mu.Unlock()
	return f.sm.opens
}

// DropSocket closes the open socket abruptly, like a network that went
// away; the client is expected to open another.
func (f *FakeSlack) DropSocket() {
	f.sm.mu.Lock()
	c := f.sm.conn
	f.sm.conn = nil
	f.sm.mu.Unlock()
	if c != nil {
		c.CloseNow()
	}
}

// Click sends an interactive envelope with a block_actions payload, as
// Slack does when someone clicks a button, and returns its envelope id.
func (f *FakeSlack) Click(actionID, value, userID, userName, channel, ts string) (string, error) {
	f.sm.mu.Lock()
	c := f.sm.conn
	f.sm.n++
	id := fmt.Sprintf("env-%04d", f.sm.n)
	f.sm.acked[id] = make(chan struct{})
	f.sm.mu.Unlock()
	if c == nil {
		return "", errors.New("testbed: no Socket Mode connection")
	}
	payload := map[string]any{
		"type":      "block_actions",
		"user":      map[string]any{"id": userID, "username": userName, "name": userName, "team_id": "T0TEST"},
		"team":      map[string]any{"id": "T0TEST", "domain": "test"},
		"channel":   map[string]any{"id": channel, "name": "ws-alerts"},
		"container": map[string]any{"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false},
		"message":   map[string]any{"type": "message", "ts": ts, "text": "FAILING"},
		"actions": []map[string]any{{"action_id": actionID, "block_id": "wscanary_actions", "value": value, "type": "button",
			"text": map[string]any{"type": "plain_text", "text": actionID}, "action_ts": fmt.Sprintf("%d.000000", time.Now().Unix())}},
		"trigger_id":   "1.2.3",
		"api_app_id":   "A0TEST",
		"response_url": f.URL + "/response/" + id,
	}
	env := map[string]any{"envelope_id": id, "type": "interactive", "accepts_response_payload": false, "payload": payload}
	b, _ := json.Marshal(env)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return id, c.Write(ctx, websocket.MessageText, b)
}

// Acked waits up to timeout for the envelope's acknowledgement.
func (f *FakeSlack) Acked(id string, timeout time.Duration) bool {
	f.sm.mu.Lock()
	ch := f.sm.acked[id]
	f.sm.mu.Unlock()
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	case <-time.After(timeout):
		return false
	}
}

// serveSocketMode answers apps.connections.open and the socket; it reports
// whether the request was one of them.
func (f *FakeSlack) serveSocketMode(w http.ResponseWriter, r *http.Request) bool {
	switch r.URL.Path {
	case "/api/apps.connections.open":
		f.sm.mu.Lock()
		want := f.sm.appToken
		f.sm.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if want == "" || r.Header.Get("Authorization") != "Bearer "+want {
			json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_auth"})
			return true
		}
		url := "ws://" + r.Host + "/link/?ticket=t" + fmt.Sprint(time.Now().UnixNano())
		json.NewEncoder(w).Encode(map[string]any{"ok": true, "url": url})
		return true
	case "/link/":
		f.serveSocket(w, r)
		return true
	}
	return false
}

func (f *FakeSlack) serveSocket(w http.ResponseWriter, r *http.Request) {
	// Slack's client sends Origin: https://api.slack.com.
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	f.sm.mu.Lock()
	if old := f.sm.conn; old != nil {
		old.CloseNow()
	}
	f.sm.conn = c
	f.sm.opens++
	f.sm.mu.Unlock()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	hello, _ := json.Marshal(map[string]any{"type": "hello", "num_connections": 1,
		"debug_info":      map[string]any{"host": "testbed", "approximate_connection_time": 3600},
		"connection_info": map[string]any{"app_id": "A0TEST"}})
	if c.Write(ctx, websocket.MessageText, hello) != nil {
		return
	}
	go func() { // Slack pings; the client reconnects when it stops
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
				c.Ping(pctx)
				pcancel()
			}
		}
	}()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			f.sm.mu.Lock()
			if f.sm.conn == c {
				f.sm.conn = nil
			}
			f.sm.mu.Unlock()
			c.CloseNow()
			return
		}
		var ack struct {
			EnvelopeID string `json:"envelope_id"`
		}
		if json.Unmarshal(b, &ack) == nil && ack.EnvelopeID != "" {
			f.sm.mu.Lock()
			if ch, ok := f.sm.acked[ack.EnvelopeID]; ok {
				select {
				case <-ch:
				default:
					close(ch)
				}
			}
			f.sm.mu.Unlock()
		}
	}
}
