package probe_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wscanary/wscanary/monitor/probe"
	"github.com/wscanary/wscanary/monitor/report"
)

// TestStepsBounded: a server that floods messages, or never answers,
// holds a step no longer than its within, and what is kept of a flood is
// bounded in count and bytes; a token the server echoes is redacted.
func TestStepsBounded(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_, msg, err := c.Read(r.Context())
		if err != nil || string(msg) == "quiet" {
			<-r.Context().Done()
			return
		}
		big := string(msg) + strings.Repeat("x", 4000) // the echo first: it is what is kept
		for r.Context().Err() == nil {
			if c.Write(r.Context(), websocket.MessageText, []byte(big)) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(strings.Replace(srv.URL, "http", "ws", 1))
	for _, tt := range []struct {
		send   string
		result report.StepResult
	}{
		{"flood {token}", report.StepNoMatch},
		{"quiet", report.StepTimeout},
	} {
		start := time.Now()
		a := (&probe.Prober{}).Attempt(context.Background(), probe.Request{URL: u, Timeout: 10 * time.Second,
			Credential: &probe.Credential{Value: "flood-canary-secret", In: "message"},
			Steps:      []probe.Step{{Send: tt.send, Expect: regexp.MustCompile("^never$"), Within: 500 * time.Millisecond}}})
		took := time.Since(start)
		step, failed := a.FailedStep()
		if !failed || step.Result != tt.result || a.Outcome != report.OutcomeRejectedAfterOpen {
			t.Errorf("%s: step %+v, outcome %s (%s)", tt.send, step, a.Outcome, a.Error)
		}
		// The step's 500 ms, not the attempt's 10 s (a busy machine adds
		// to it, never 10 s).
		if took > 5*time.Second {
			t.Errorf("%s: the attempt took %s", tt.send, took)
		}
		total := 0
		for _, m := range a.Messages {
			total += len(m)
			if strings.Contains(m, "flood-canary-secret") {
				t.Errorf("the echoed token is in the evidence")
			}
		}
		if len(a.Messages) > probe.MaxMessages || total > probe.MaxMessageBytes {
			t.Errorf("%s: kept %d messages, %d bytes", tt.send, len(a.Messages), total)
		}
		t.Logf("%s: %s after %s, %d messages kept (%d bytes)", tt.send, step.Result, took.Round(time.Millisecond), len(a.Messages), total)
	}
}
