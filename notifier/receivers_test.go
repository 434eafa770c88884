package notifier_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wscanary/wscanary/notifier"
)

// TestReceiverErrors: how each answer of a receiver is classified, and
// that the routing key and the webhook secret never reach an error.
func TestReceiverErrors(t *testing.T) {
	t.Parallel()
	const key, secret = "R0UT1NG-secret-key", "whsec-secret-value"
	inc := &notifier.Incident{ID: "chat-1", Check: "chat", State: notifier.StateOpen, Opened: time.Now()}
	for _, tt := range []struct {
		status     int
		retryAfter string
		permanent  bool
		wait       time.Duration
	}{
		{http.StatusAccepted, "", false, 0},
		{http.StatusTooManyRequests, "7", false, 7 * time.Second},
		{http.StatusInternalServerError, "", false, 0},
		{http.StatusServiceUnavailable, "3", false, 3 * time.Second},
		{http.StatusRequestTimeout, "", false, 0},
		{http.StatusBadRequest, "", true, 0},
		{http.StatusUnauthorized, "", true, 0},
		{http.StatusNotFound, "", true, 0},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tt.retryAfter != "" {
				w.Header().Set("Retry-After", tt.retryAfter)
			}
			// A receiver that echoes the request (PagerDuty's carries the
			// routing key) in its error.
			b, _ := io.ReadAll(r.Body)
			w.WriteHeader(tt.status)
			w.Write(b)
		}))
		pd, _ := notifier.NewPagerDuty(notifier.PagerDutyOptions{RoutingKey: key, APIURL: srv.URL})
		wh, _ := notifier.NewWebhook(notifier.WebhookOptions{URL: srv.URL, Secret: secret})
		am, _ := notifier.NewAlertmanager(notifier.AlertmanagerOptions{URL: srv.URL})
		for name, n := range map[string]notifier.Notifier{"pagerduty": pd, "webhook": wh, "alertmanager": am} {
			_, err := n.Notify(context.Background(), notifier.Message{ID: "m1", Kind: notifier.KindOpen, Incident: inc})
			if tt.status < 300 {
				if err != nil {
					t.Errorf("%s %d: %v", name, tt.status, err)
				}
				continue
			}
			if err == nil || notifier.Permanent(err) != tt.permanent {
				t.Errorf("%s %d: err %v, permanent %v, want %v", name, tt.status, err, notifier.Permanent(err), tt.permanent)
				continue
			}
			if d, _ := notifier.RetryAfter(err); d != tt.wait {
				t.Errorf("%s %d: retry after %s, want %s", name, tt.status, d, tt.wait)
			}
			if msg := err.Error(); strings.Contains(msg, key) || strings.Contains(msg, secret) || !strings.HasPrefix(msg, name+" ") {
				t.Errorf("%s %d: error %q", name, tt.status, msg)
			}
		}
		srv.Close()
	}
}

// TestPagerDutySummaryCutsCharacters: PagerDuty takes a summary of 1,024
// characters at most; a long one is cut between characters, never inside
// one (a server's status reason can be any UTF-8).
func TestPagerDutySummaryCutsCharacters(t *testing.T) {
	t.Parallel()
	pd, err := notifier.NewPagerDuty(notifier.PagerDutyOptions{RoutingKey: "k", APIURL: "http://127.0.0.1:1/v2/enqueue"})
	if err != nil {
		t.Fatal(err)
	}
	inc := *openMsg().Incident
	for i := range inc.Cells {
		inc.Cells[i].Reason = strings.Repeat("€", 1500)
	}
	s := pd.EventOf(inc).Payload.Summary
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > 1000 || !strings.HasSuffix(s, "…") {
		t.Errorf("summary of %d bytes, %d characters, valid UTF-8 %v, ends %q", len(s), utf8.RuneCountInString(s), utf8.ValidString(s), s[max(0, len(s)-8):])
	}
}
