package notifier_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"

	"github.com/wscanary/wscanary/monitor/testbed"
	"github.com/wscanary/wscanary/notifier"
)

// call is one request the fake Slack received, decoded.
type call struct {
	Method string
	Path   string
	Form   url.Values     // form-encoded bodies (what slack-go sends to chat.*)
	JSON   map[string]any // JSON bodies (webhooks)
	Raw    string
	Header http.Header
}

func (c call) param(k string) string {
	if c.Form != nil {
		return c.Form.Get(k)
	}
	if v, ok := c.JSON[k]; ok {
		if s, ok := v.(string); ok {
			return s
		}
		raw, _ := json.Marshal(v)
		return string(raw)
	}
	return ""
}

// blocks decodes the call's blocks the way a Slack server would.
func (c call) blocks(t *testing.T) []slack.Block {
	t.Helper()
	raw := c.param("blocks")
	if raw == "" {
		t.Fatalf("%s: no blocks in %s", c.Method, c.Raw)
	}
	var bs slack.Blocks
	if err := json.Unmarshal([]byte(raw), &bs); err != nil {
		t.Fatalf("%s: blocks do not decode: %v", c.Method, err)
	}
	return bs.BlockSet
}

// fakeSlack is an httptest server that decodes what slack-go sends to the
// Web API (under /api/) and to webhooks (anything else), and answers like
// Slack unless respond takes over.
type fakeSlack struct {
	srv *httptest.Server

	mu      sync.Mutex
	calls   []call
	respond func(c call, w http.ResponseWriter) bool
}

func newFakeSlack(t *testing.T) *fakeSlack {
	t.Helper()
	f := &fakeSlack{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.handle))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSlack) handle(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	c := call{Path: r.URL.Path, Raw: string(raw), Header: r.Header.Clone()}
	c.Method, _ = strings.CutPrefix(r.URL.Path, "/api/")
	if c.Method == r.URL.Path {
		c.Method = "webhook"
	}
	switch ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct {
	case "application/x-www-form-urlencoded":
		c.Form, _ = url.ParseQuery(string(raw))
	case "application/json":
		_ = json.Unmarshal(raw, &c.JSON)
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	n, respond := len(f.calls), f.respond
	f.mu.Unlock()

	if respond != nil && respond(c, w) {
		return
	}
	if c.Method == "webhook" {
		_, _ = io.WriteString(w, "ok")
		return
	}
	ts := fmt.Sprintf("1764000750.%06d", 100+n)
	if c.Method == "chat.update" {
		ts = c.param("ts")
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": "C0ALERTS", "ts": ts})
}

func (f *fakeSlack) setRespond(fn func(c call, w http.ResponseWriter) bool) {
	f.mu.Lock()
	f.respond = fn
	f.mu.Unlock()
}

func (f *fakeSlack) take() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	cs := f.calls
	f.calls = nil
	return cs
}

func methods(cs []call) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Method
	}
	return out
}

// answer makes respond reply with status, headers and body for method ("" = any).
func answer(method string, status int, header map[string]string, body string) func(call, http.ResponseWriter) bool {
	return func(c call, w http.ResponseWriter) bool {
		if method != "" && c.Method != method {
			return false
		}
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
		return true
	}
}

func slackError(code string) string { return `{"ok":false,"error":"` + code + `"}` }

const canaryToken = "xoxb-CANARY-123456"

func debugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newBot(t *testing.T, f *fakeSlack, logs io.Writer) *notifier.Slack {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	s, err := notifier.NewSlack(notifier.SlackOptions{
		Token:      canaryToken,
		Channel:    "#ws-alerts",
		APIURL:     f.srv.URL + "/api/",
		HTTPClient: f.srv.Client(),
		Logger:     debugLogger(logs),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const webhookPath = "/services/T0CANARY/B0CANARY/CanaryHookSecret9f8e7d"

func newWebhook(t *testing.T, f *fakeSlack, logs io.Writer) *notifier.Slack {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	s, err := notifier.NewSlack(notifier.SlackOptions{
		WebhookURL: f.srv.URL + webhookPath,
		HTTPClient: f.srv.Client(),
		Logger:     debugLogger(logs),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSlackBotOpen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		channel     string
		wantChannel string
	}{
		{"default channel", "", "#ws-alerts"},
		{"message overrides channel", "#chat-oncall", "#chat-oncall"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeSlack(t)
			s := newBot(t, f, nil)
			m := openMsg()
			m.Channel = tt.channel
			d, err := s.Notify(t.Context(), m)
			if err != nil {
				t.Fatal(err)
			}
			if d.Channel != "C0ALERTS" || d.TS == "" {
				t.Errorf("Delivery = %+v, want the channel ID and ts Slack answered with", d)
			}
			cs := f.take()
			if len(cs) != 1 || cs[0].Method != "chat.postMessage" {
				t.Fatalf("calls = %v, want one chat.postMessage", methods(cs))
			}
			c := cs[0]
			if got := c.param("channel"); got != tt.wantChannel {
				t.Errorf("channel = %q, want %q", got, tt.wantChannel)
			}
			if got := c.param("thread_ts"); got != "" {
				t.Errorf("an incident is posted in thread %q", got)
			}
			all := texts(t, c.blocks(t))
			for _, w := range []string{"403 Forbidden on 3 of 6", "chat", "us-east-1", "ap-south-1", "cdn_blocked", firstHint} {
				if !strings.Contains(all, w) {
					t.Errorf("posted blocks do not mention %q", w)
				}
			}
			if text := c.param("text"); text != "FAILING  chat: 403 Forbidden on 3 of 6" {
				t.Errorf("fallback text = %q, want the headline", text)
			}
			if c.param("unfurl_links") != "false" {
				t.Error("links unfurl")
			}
		})
	}
}

func TestSlackBotThreads(t *testing.T) {
	t.Parallel()
	noChannel := func(m notifier.Message) notifier.Message { m.Thread = &notifier.Delivery{TS: root.TS}; return m }
	noThread := func(m notifier.Message) notifier.Message { m.Thread = nil; return m }
	emptyThread := func(m notifier.Message) notifier.Message { m.Thread = &notifier.Delivery{}; return m }

	tests := []struct {
		name     string
		msg      notifier.Message
		want     string // methods in order
		has      string // in the blocks sent
		channel  string
		threadTS string
		ts       string // chat.update's ts
	}{
		{"update replaces the incident message", updateMsg(), "chat.update", "426 Upgrade Required", "C0ALERTS", "", root.TS},
		{"resolving update", resolvedUpdateMsg(), "chat.update", "RESOLVED", "C0ALERTS", "", root.TS},
		{"reply in the thread", replyMsg(widened()), "chat.postMessage", "WIDER", "C0ALERTS", root.TS, ""},
		{"recovery in the thread", recoveryMsg(), "chat.postMessage", "RECOVERED", "C0ALERTS", root.TS, ""},
		{"thread without channel uses the default", noChannel(replyMsg(reminder())), "chat.postMessage", "STILL FAILING", "#ws-alerts", root.TS, ""},
		{"update without a thread does nothing", noThread(updateMsg()), "", "", "", "", ""},
		{"update with an empty thread does nothing", emptyThread(updateMsg()), "", "", "", "", ""},
		{"reply without a thread is a plain post", noThread(recoveryMsg()), "chat.postMessage", "RECOVERED", "#ws-alerts", "", ""},
		{"notice is a post of its own", noticeMsg(), "chat.postMessage", "expires in 5 days", "#ws-alerts", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeSlack(t)
			s := newBot(t, f, nil)
			if _, err := s.Notify(t.Context(), tt.msg); err != nil {
				t.Fatal(err)
			}
			cs := f.take()
			if got := strings.Join(methods(cs), ","); got != tt.want {
				t.Fatalf("calls = %v, want %v", got, tt.want)
			}
			if len(cs) == 0 {
				return
			}
			c := cs[0]
			if c.param("channel") != tt.channel || c.param("thread_ts") != tt.threadTS || c.param("ts") != tt.ts {
				t.Errorf("%s channel=%q thread_ts=%q ts=%q, want %q %q %q", c.Method, c.param("channel"), c.param("thread_ts"), c.param("ts"), tt.channel, tt.threadTS, tt.ts)
			}
			if all := texts(t, c.blocks(t)); !strings.Contains(all, tt.has) {
				t.Errorf("blocks do not say %q:\n%s", tt.has, all)
			}
		})
	}
}

// The whole story against the decoding server: the incident message is
// posted, updated in place, answered in its thread and marked resolved.
func TestSlackIncidentStory(t *testing.T) {
	t.Parallel()
	f := newFakeSlack(t)
	s := newBot(t, f, nil)
	d, err := s.Notify(t.Context(), openMsg())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []notifier.Message{updateMsg(), resolvedUpdateMsg(), recoveryMsg()} {
		m.Thread = &d
		if _, err := s.Notify(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	cs := f.take()
	if got := strings.Join(methods(cs), ","); got != "chat.postMessage,chat.update,chat.update,chat.postMessage" {
		t.Fatalf("calls = %s", got)
	}
	for _, u := range cs[1:3] {
		if u.param("ts") != d.TS || u.param("channel") != d.Channel {
			t.Errorf("update channel=%q ts=%q, want %+v", u.param("channel"), u.param("ts"), d)
		}
	}
	if !strings.HasPrefix(cs[2].param("text"), "RESOLVED  chat") {
		t.Errorf("resolving update text = %q", cs[2].param("text"))
	}
	if cs[3].param("thread_ts") != d.TS {
		t.Errorf("recovery thread_ts=%q, want %q", cs[3].param("thread_ts"), d.TS)
	}
}

func TestSlackUpdateFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		respond    func(call, http.ResponseWriter) bool
		wantErr    bool
		wantRetry  time.Duration
		wantLogged string
	}{
		{"message deleted: done, logged", answer("chat.update", 200, nil, slackError("message_not_found")), false, 0, "message_not_found"},
		{"edit refused: done, logged", answer("chat.update", 200, nil, slackError("cant_update_message")), false, 0, "cant_update_message"},
		{"server error: retry", answer("chat.update", 500, nil, "oops"), true, 0, ""},
		{"rate limited: retry after", answer("chat.update", 429, map[string]string{"Retry-After": "3"}, ""), true, 3 * time.Second, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeSlack(t)
			var logs testbed.SyncBuffer
			s := newBot(t, f, &logs)
			f.setRespond(tt.respond)
			_, err := s.Notify(t.Context(), updateMsg())
			if got := strings.Join(methods(f.take()), ","); got != "chat.update" {
				t.Errorf("calls = %s, want chat.update only", got)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if notifier.Permanent(err) {
					t.Errorf("Permanent(%v) = true", err)
				}
				if got, _ := notifier.RetryAfter(err); got != tt.wantRetry {
					t.Errorf("RetryAfter = %v, want %v", got, tt.wantRetry)
				}
				return
			}
			if l := logs.String(); !strings.Contains(l, `"level":"WARN"`) || !strings.Contains(l, tt.wantLogged) {
				t.Errorf("no warning about the failed update in:\n%s", l)
			}
		})
	}
}

type errorCase struct {
	name       string
	status     int
	header     map[string]string
	body       string
	permanent  bool
	retryAfter time.Duration // 0: none expected; <0: some, roughly -retryAfter
	code       string
}

func checkError(t *testing.T, err error, op string, tt errorCase) {
	t.Helper()
	if err == nil {
		t.Fatal("Notify succeeded")
	}
	if got := notifier.Permanent(err); got != tt.permanent {
		t.Errorf("Permanent(%q) = %v, want %v", err, got, tt.permanent)
	}
	got, ok := notifier.RetryAfter(err)
	switch {
	case tt.retryAfter == 0 && ok:
		t.Errorf("RetryAfter(%q) = %v, want none", err, got)
	case tt.retryAfter > 0 && (!ok || got != tt.retryAfter):
		t.Errorf("RetryAfter(%q) = %v, %v; want %v", err, got, ok, tt.retryAfter)
	case tt.retryAfter < 0 && (!ok || got < -tt.retryAfter-5*time.Second || got > -tt.retryAfter+time.Second):
		t.Errorf("RetryAfter(%q) = %v, %v; want about %v", err, got, ok, -tt.retryAfter)
	}
	var e *notifier.Error
	if !errors.As(err, &e) {
		t.Fatalf("%T is not a *notifier.Error", err)
	}
	if e.Op != op || e.Code != tt.code {
		t.Errorf("Op, Code = %q, %q; want %q, %q", e.Op, e.Code, op, tt.code)
	}
	if e.HTTPStatus != tt.status {
		t.Errorf("HTTPStatus = %d, want %d", e.HTTPStatus, tt.status)
	}
	if !strings.HasPrefix(err.Error(), "slack "+op+": ") {
		t.Errorf("error %q does not name %s", err, op)
	}
}

func TestSlackBotErrors(t *testing.T) {
	t.Parallel()
	date := time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat)
	tests := []errorCase{
		{"429 with Retry-After seconds", 429, map[string]string{"Retry-After": "3"}, "", false, 3 * time.Second, "rate_limited"},
		{"429 with Retry-After date", 429, map[string]string{"Retry-After": date}, "", false, -2 * time.Minute, "rate_limited"},
		{"429 without Retry-After", 429, nil, "", false, 0, "rate_limited"},
		{"500", 500, nil, "<html>oops</html>", false, 0, ""},
		{"503 with Retry-After", 503, map[string]string{"Retry-After": "7"}, "", false, 7 * time.Second, ""},
		{"404", 404, nil, "not found", true, 0, ""},
		// Slack's ok:false answers arrive with 200.
		{"invalid_auth", 200, nil, slackError("invalid_auth"), true, 0, "invalid_auth"},
		{"channel_not_found", 200, nil, slackError("channel_not_found"), true, 0, "channel_not_found"},
		{"missing_scope", 200, nil, `{"ok":false,"error":"missing_scope","needed":"chat:write","provided":"users:read"}`, true, 0, "missing_scope"},
		{"ratelimited in the body", 200, nil, slackError("ratelimited"), false, 0, "ratelimited"},
		{"internal_error", 200, nil, slackError("internal_error"), false, 0, "internal_error"},
		{"200 that is not JSON", 200, nil, "<html>proxy login</html>", false, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeSlack(t)
			s := newBot(t, f, nil)
			f.setRespond(answer("", tt.status, tt.header, tt.body))
			_, err := s.Notify(t.Context(), openMsg())
			checkError(t, err, "chat.postMessage", tt)
		})
	}
}

func TestSlackWebhookErrors(t *testing.T) {
	t.Parallel()
	tests := []errorCase{
		{"429", 429, map[string]string{"Retry-After": "3"}, "rate_limited", false, 3 * time.Second, "rate_limited"},
		{"500", 500, nil, "", false, 0, ""},
		{"no_service", 404, nil, "no_service", true, 0, "no_service"},
		{"invalid_token", 403, nil, "invalid_token", true, 0, "invalid_token"},
		{"channel_is_archived", 410, nil, "channel_is_archived", true, 0, "channel_is_archived"},
		{"invalid_payload", 400, nil, "invalid_payload", true, 0, "invalid_payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeSlack(t)
			s := newWebhook(t, f, nil)
			f.setRespond(answer("", tt.status, tt.header, tt.body))
			_, err := s.Notify(t.Context(), openMsg())
			checkError(t, err, "webhook", tt)
		})
	}
}

func TestSlackContext(t *testing.T) {
	t.Parallel()
	f := newFakeSlack(t)
	s := newBot(t, f, nil)
	f.setRespond(func(c call, w http.ResponseWriter) bool {
		select {
		case <-time.After(10 * time.Second):
		case <-t.Context().Done():
		}
		return false
	})

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := s.Notify(ctx, openMsg())
	if !errors.Is(err, context.DeadlineExceeded) || notifier.Permanent(err) {
		t.Errorf("after the deadline: err = %v, Permanent = %v", err, notifier.Permanent(err))
	}

	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	_, err = s.Notify(ctx, openMsg())
	if !errors.Is(err, context.Canceled) || notifier.Permanent(err) {
		t.Errorf("canceled: err = %v, Permanent = %v", err, notifier.Permanent(err))
	}
}

func TestSlackUnknownKind(t *testing.T) {
	t.Parallel()
	f := newFakeSlack(t)
	s := newBot(t, f, nil)
	m := openMsg()
	m.Kind = "page"
	if _, err := s.Notify(t.Context(), m); err == nil || !notifier.Permanent(err) {
		t.Errorf("err = %v, want a permanent error", err)
	}
	if cs := f.take(); len(cs) != 0 {
		t.Errorf("calls = %v", methods(cs))
	}
}

// A webhook cannot update or thread: an incident is one post when it opens
// and one when it resolves (or fails again); the rest is dropped as done.
func TestSlackWebhook(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		msg  notifier.Message
		want string // "" for no post
	}{
		{"open", openMsg(), "403 Forbidden on 3 of 6"},
		{"update", updateMsg(), ""},
		{"widened", replyMsg(widened()), ""},
		{"recovery", recoveryMsg(), "RECOVERED"},
		{"reopened", replyMsg(reopened()), "FAILING AGAIN"},
		{"notice", noticeMsg(), "expires in 5 days"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeSlack(t)
			s := newWebhook(t, f, nil)
			d, err := s.Notify(t.Context(), tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if d != (notifier.Delivery{}) {
				t.Errorf("webhook Delivery = %+v, want empty", d)
			}
			cs := f.take()
			if tt.want == "" {
				if len(cs) != 0 {
					t.Fatalf("calls = %+v, want none", cs)
				}
				return
			}
			if len(cs) != 1 || cs[0].Path != webhookPath {
				t.Fatalf("calls = %+v, want one POST to the webhook", cs)
			}
			var msg slack.WebhookMessage
			if err := json.Unmarshal([]byte(cs[0].Raw), &msg); err != nil {
				t.Fatalf("payload does not decode: %v\n%s", err, cs[0].Raw)
			}
			if msg.Blocks == nil || len(msg.Blocks.BlockSet) == 0 {
				t.Fatalf("payload has no blocks: %s", cs[0].Raw)
			}
			if msg.ThreadTimestamp != "" || msg.ReplaceOriginal {
				t.Errorf("webhook payload threads or replaces: %s", cs[0].Raw)
			}
			if all := texts(t, msg.Blocks.BlockSet); !strings.Contains(all, tt.want) {
				t.Errorf("blocks do not say %q:\n%s", tt.want, all)
			}
			if msg.Text == "" || strings.ContainsAny(msg.Text, "<>") {
				t.Errorf("fallback text is empty or unescaped: %q", msg.Text)
			}
		})
	}
}

// slacktest is slack-go's own fake Web API: its chat.postMessage handler
// decodes what slack-go sends the way Slack would. It has no chat.update, so
// the test adds one.
func TestSlacktest(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var updates []url.Values
	srv := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.update", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			mu.Lock()
			updates = append(updates, r.PostForm)
			mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": r.PostForm.Get("channel"), "ts": r.PostForm.Get("ts")})
		})
	})
	srv.Start()
	defer srv.Stop()
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()

	s, err := notifier.NewSlack(notifier.SlackOptions{
		Token: canaryToken, Channel: "#ws-alerts",
		APIURL: srv.GetAPIURL(), HTTPClient: &http.Client{Transport: transport},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Notify(t.Context(), openMsg())
	if err != nil {
		t.Fatal(err)
	}
	if d.Channel != "#ws-alerts" || d.TS == "" {
		t.Errorf("Delivery = %+v", d)
	}
	upd := resolvedUpdateMsg()
	upd.Thread = &d
	if _, err := s.Notify(t.Context(), upd); err != nil {
		t.Fatal(err)
	}
	rec := recoveryMsg()
	rec.Thread = &d
	if _, err := s.Notify(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(updates) != 1 || updates[0].Get("ts") != d.TS || !strings.Contains(updates[0].Get("blocks"), "RESOLVED") {
		t.Errorf("chat.update calls = %v", updates)
	}
}

func TestNewSlack(t *testing.T) {
	t.Parallel()
	const hook = "https://hooks.slack.com/services/T000/B000/SecretHookPart"
	tests := []struct {
		name    string
		opts    notifier.SlackOptions
		wantErr string
	}{
		{"nothing", notifier.SlackOptions{}, "a webhook URL or a bot token is required"},
		{"both", notifier.SlackOptions{WebhookURL: hook, Token: canaryToken, Channel: "#a"}, "not both"},
		{"token without channel", notifier.SlackOptions{Token: canaryToken}, "needs a channel"},
		{"webhook not a URL", notifier.SlackOptions{WebhookURL: "hooks.slack.com/services/T000/B000/SecretHookPart"}, "not an http(s) URL"},
		{"webhook with a bad scheme", notifier.SlackOptions{WebhookURL: "ftp://hooks.slack.com/services/T000/B000/SecretHookPart"}, "not an http(s) URL"},
		{"bad API URL", notifier.SlackOptions{Token: canaryToken, Channel: "#a", APIURL: "::"}, "API URL"},
		{"webhook", notifier.SlackOptions{WebhookURL: hook}, ""},
		{"token", notifier.SlackOptions{Token: canaryToken, Channel: "#a"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := notifier.NewSlack(tt.opts)
			if tt.wantErr == "" {
				if err != nil || s == nil {
					t.Fatalf("NewSlack = %v, %v", s, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "SecretHookPart") || strings.Contains(err.Error(), "CANARY") {
				t.Errorf("error quotes a secret: %v", err)
			}
		})
	}
}

func TestSlackAPIURLWithoutSlash(t *testing.T) {
	t.Parallel()
	f := newFakeSlack(t)
	s, err := notifier.NewSlack(notifier.SlackOptions{Token: canaryToken, Channel: "#a", APIURL: f.srv.URL + "/api", HTTPClient: f.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Notify(t.Context(), openMsg()); err != nil {
		t.Fatal(err)
	}
	if cs := f.take(); len(cs) != 1 || cs[0].Path != "/api/chat.postMessage" {
		t.Errorf("calls = %+v", cs)
	}
}

func TestRetryAfterAndPermanentOnOtherErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		err       error
		permanent bool
		retry     time.Duration
	}{
		{"nil", nil, false, 0},
		{"plain", errors.New("boom"), false, 0},
		{"context", context.DeadlineExceeded, false, 0},
		{"slack-go rate limit", &slack.RateLimitedError{RetryAfter: 4 * time.Second}, false, 4 * time.Second},
		{"wrapped slack-go rate limit", fmt.Errorf("deliver: %w", &slack.RateLimitedError{RetryAfter: time.Second}), false, time.Second},
		{"slack-go invalid_auth", slack.SlackErrorResponse{Err: "invalid_auth"}, true, 0},
		{"slack-go fatal_error", slack.SlackErrorResponse{Err: "fatal_error"}, false, 0},
		{"slack-go 400", slack.StatusCodeError{Code: 400, Status: "400 Bad Request"}, true, 0},
		{"slack-go 429", slack.StatusCodeError{Code: 429, Status: "429 Too Many Requests"}, false, 0},
		{"slack-go 502", slack.StatusCodeError{Code: 502, Status: "502 Bad Gateway"}, false, 0},
	}
	for _, tt := range tests {
		if got := notifier.Permanent(tt.err); got != tt.permanent {
			t.Errorf("%s: Permanent = %v, want %v", tt.name, got, tt.permanent)
		}
		got, ok := notifier.RetryAfter(tt.err)
		if got != tt.retry || ok != (tt.retry > 0) {
			t.Errorf("%s: RetryAfter = %v, %v; want %v", tt.name, got, ok, tt.retry)
		}
	}
}
