package notifier_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/testbed"
	"github.com/wscanary/wscanary/notifier"
)

// errorTexts is the text of err and of every error it wraps.
func errorTexts(err error) string {
	var b strings.Builder
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		b.WriteString(err.Error() + "\n")
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return b.String()
}

// The bot token must not leave through an error, a log record or a message.
// The only place it may appear is where slack-go authenticates: the form's
// token field (chat.* methods) or an Authorization header.
func TestCanaryToken(t *testing.T) {
	t.Parallel()
	leaky := openMsg()
	leaky.Incident.Attempt.Body = "upstream said: Authorization: Bearer " + canaryToken + " is not allowed"
	leaky.Incident.Attempt.Headers["Via"] = "1.1 proxy (" + canaryToken + ")"

	scenarios := []struct {
		name    string
		respond func(call, http.ResponseWriter) bool
		msg     notifier.Message
		closed  bool // the server is gone: a transport error that names the URL
		timeout bool
		wantErr bool
	}{
		{name: "success", msg: openMsg()},
		{name: "recovery", msg: recoveryMsg()},
		{name: "message echoing the token", msg: leaky},
		{name: "invalid_auth", respond: answer("", 200, nil, slackError("invalid_auth")), msg: openMsg(), wantErr: true},
		{name: "invalid_auth echoing the token", respond: answer("", 200, nil, `{"ok":false,"error":"invalid_auth","response_metadata":{"messages":["[ERROR] bad token `+canaryToken+`"]}}`), msg: openMsg(), wantErr: true},
		{name: "429", respond: answer("", 429, map[string]string{"Retry-After": "3"}, ""), msg: openMsg(), wantErr: true},
		{name: "500 echoing the token", respond: answer("", 500, nil, "token="+canaryToken), msg: openMsg(), wantErr: true},
		{name: "update refused", respond: answer("chat.update", 200, nil, slackError("message_not_found")), msg: resolvedUpdateMsg()},
		{name: "server gone", msg: openMsg(), closed: true, wantErr: true},
		{name: "timeout", msg: openMsg(), timeout: true, wantErr: true},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeSlack(t)
			var logs testbed.SyncBuffer
			s := newBot(t, f, &logs)
			f.setRespond(sc.respond)
			ctx := t.Context()
			if sc.timeout {
				f.setRespond(func(call, http.ResponseWriter) bool { time.Sleep(200 * time.Millisecond); return false })
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 20*time.Millisecond)
				defer cancel()
			}
			if sc.closed {
				f.srv.Close()
			}
			_, err := s.Notify(ctx, sc.msg)
			if (err != nil) != sc.wantErr {
				t.Errorf("err = %v, want error %v", err, sc.wantErr)
			}
			if strings.Contains(errorTexts(err), "CANARY") {
				t.Errorf("the error leaks the token:\n%s", errorTexts(err))
			}
			if strings.Contains(logs.String(), "CANARY") {
				t.Errorf("the log leaks the token:\n%s", logs.String())
			}
			for _, c := range f.take() {
				if c.Form.Get("token") != canaryToken {
					t.Errorf("%s: slack-go no longer sends the token as the form's token field; check where it went", c.Method)
				}
				rest := url.Values{}
				for k, v := range c.Form {
					if k != "token" {
						rest[k] = v
					}
				}
				if strings.Contains(rest.Encode(), "CANARY") {
					t.Errorf("%s: the message carries the token: %s", c.Method, rest.Encode())
				}
				if sc.name == "message echoing the token" && !strings.Contains(rest.Get("blocks"), "Bearer REDACTED") {
					t.Errorf("%s: the echoed token was not replaced: %s", c.Method, rest.Get("blocks"))
				}
				for k, vs := range c.Header {
					if strings.Contains(strings.Join(vs, ","), "CANARY") {
						t.Errorf("%s: header %s carries the token", c.Method, k)
					}
				}
			}
		})
	}
}

// A webhook URL is a credential too: it must not leave through errors or logs.
func TestCanaryWebhookURL(t *testing.T) {
	t.Parallel()
	for _, closed := range []bool{false, true} {
		f := newFakeSlack(t)
		var logs testbed.SyncBuffer
		s := newWebhook(t, f, &logs)
		f.setRespond(answer("", 404, nil, "no_service"))
		if closed {
			f.srv.Close()
		}
		_, err := s.Notify(t.Context(), openMsg())
		if err == nil {
			t.Fatal("Notify succeeded")
		}
		for what, text := range map[string]string{"error": errorTexts(err), "log": logs.String()} {
			if strings.Contains(text, "CanaryHookSecret") || strings.Contains(text, "T0CANARY") {
				t.Errorf("server closed=%v: the %s leaks the webhook URL:\n%s", closed, what, text)
			}
		}
		if closed {
			var ue *url.Error
			if !errors.As(err, &ue) || !strings.Contains(ue.URL, "REDACTED") {
				t.Errorf("transport error = %q, want a *url.Error with the URL redacted in its chain", err)
			}
		}
	}
}
