package testbed

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// SlackCall is one request slack-go made to a FakeSlack.
type SlackCall struct {
	At       time.Time
	Method   string // "chat.postMessage", "chat.update"
	Channel  string
	TS       string // chat.update: the message updated
	ThreadTS string
	Text     string
	Blocks   string
	// Form is the whole request form without the token field.
	Form string
	// Answered is the ts the fake answered with.
	Answered string
}

// FakeSlack is a Slack Web API server for tests: it decodes what slack-go
// really sends (form posts to /api/METHOD) and answers like Slack, after
// failing the first requests with the statuses in Fail.
type FakeSlack struct {
	*httptest.Server
	// Token is the bot token it accepts; others get invalid_auth.
	Token string

	mu    sync.Mutex
	calls []SlackCall
	fail  []int
	down  int // while not 0, every request fails with this status
	n     int
	// hang, while not nil, holds every request until it is closed; a
	// request whose client goes away meanwhile never happened.
	hang    chan struct{}
	waiting int
	sm      socketMode
	// delay holds every answer this long, like a slow Slack; refuse, while
	// not "", answers every call HTTP 200 {"ok":false,"error":refuse}.
	delay  time.Duration
	refuse string
	// inFlight and peak count the requests being answered at once.
	inFlight, peak int
	// responses are the texts posted to a click's response_url.
	responses []string
}

// Responses are the texts posted to the response_url of clicks (the
// ephemeral answers to who clicked).
func (f *FakeSlack) Responses() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.responses...)
}

// Slow makes every answer take d (0: at once).
func (f *FakeSlack) Slow(d time.Duration) {
	f.mu.Lock()
	f.delay = d
	f.mu.Unlock()
}

// Refuse answers every call with Slack's error code (invalid_auth,
// channel_not_found, ...) in an HTTP 200, until Refuse("").
func (f *FakeSlack) Refuse(code string) {
	f.mu.Lock()
	f.refuse = code
	f.mu.Unlock()
}

// Peak is the most requests answered at once so far.
func (f *FakeSlack) Peak() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peak
}

// Hang holds every request from now on until Release, like a Slack that
// accepted the connection and never answers. A request whose client gives
// up or dies while held is not recorded: Slack never processed it.
func (f *FakeSlack) Hang() {
	f.mu.Lock()
	if f.hang == nil {
		f.hang = make(chan struct{})
	}
	f.mu.Unlock()
}

// Release ends Hang; the requests held are answered.
func (f *FakeSlack) Release() {
	f.mu.Lock()
	if f.hang != nil {
		close(f.hang)
		f.hang = nil
	}
	f.mu.Unlock()
}

// Waiting counts the requests held by Hang now.
func (f *FakeSlack) Waiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waiting
}

// Down makes every request fail with status until Up (429 carries
// Retry-After: 1), like an outage of unknown length.
func (f *FakeSlack) Down(status int) {
	f.mu.Lock()
	f.down = status
	f.mu.Unlock()
}

// Up ends Down.
func (f *FakeSlack) Up() { f.Down(0) }

// NewFakeSlack starts a FakeSlack on 127.0.0.1. Point slack-go at
// APIURL().
func NewFakeSlack(token string) *FakeSlack {
	f := &FakeSlack{Token: token}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// APIURL is the base to give slack.OptionAPIURL (with its trailing slash).
func (f *FakeSlack) APIURL() string { return f.URL + "/api/" }

// FailNext makes the next requests fail with these HTTP statuses, in order
// (429 carries Retry-After: 1).
func (f *FakeSlack) FailNext(statuses ...int) {
	f.mu.Lock()
	f.fail = append(f.fail, statuses...)
	f.mu.Unlock()
}

// Calls returns the successful calls in order.
func (f *FakeSlack) Calls() []SlackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]SlackCall(nil), f.calls...)
}

// Posts splits chat.postMessage calls into thread roots and replies.
func (f *FakeSlack) Posts() (roots, replies []SlackCall) {
	for _, c := range f.Calls() {
		if c.Method != "chat.postMessage" {
			continue
		}
		if c.ThreadTS == "" {
			roots = append(roots, c)
		} else {
			replies = append(replies, c)
		}
	}
	return roots, replies
}

func (f *FakeSlack) serve(w http.ResponseWriter, r *http.Request) {
	if f.serveSocketMode(w, r) {
		return
	}
	if strings.HasPrefix(r.URL.Path, "/response/") {
		var body struct {
			Text         string `json:"text"`
			ResponseType string `json:"response_type"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		f.responses = append(f.responses, body.ResponseType+": "+body.Text)
		f.mu.Unlock()
		return
	}
	r.ParseForm()
	token := r.Form.Get("token")
	if token == "" {
		token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	r.Form.Del("token")
	f.mu.Lock()
	f.inFlight++
	f.peak = max(f.peak, f.inFlight)
	defer func() { f.mu.Lock(); f.inFlight--; f.mu.Unlock() }()
	if d := f.delay; d > 0 {
		f.mu.Unlock()
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		f.mu.Lock()
	}
	if hang := f.hang; hang != nil {
		f.waiting++
		f.mu.Unlock()
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		f.mu.Lock()
		f.waiting--
		if r.Context().Err() != nil {
			f.mu.Unlock()
			return
		}
	}
	defer f.mu.Unlock()
	if f.refuse != "" {
		json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": f.refuse})
		return
	}
	if len(f.fail) > 0 || f.down != 0 {
		code := f.down
		if code == 0 {
			code = f.fail[0]
			f.fail = f.fail[1:]
		}
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(code)
		return
	}
	if token != f.Token {
		json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	f.n++
	c := SlackCall{At: time.Now(), Method: strings.TrimPrefix(r.URL.Path, "/api/"), Channel: r.Form.Get("channel"),
		TS: r.Form.Get("ts"), ThreadTS: r.Form.Get("thread_ts"), Text: r.Form.Get("text"), Blocks: r.Form.Get("blocks"),
		Form: r.Form.Encode(), Answered: fmt.Sprintf("1700000000.%06d", f.n)}
	f.calls = append(f.calls, c)
	ts := c.Answered
	if c.Method == "chat.update" {
		ts = c.TS
	}
	json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": "C0ALERTS", "ts": ts})
}

// Close releases held requests and stops the server.
func (f *FakeSlack) Close() {
	f.Release()
	f.DropSocket()
	f.Server.Close()
}
