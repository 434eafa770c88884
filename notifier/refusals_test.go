package notifier_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wscanary/wscanary/notifier"
)

// TestBrokenRefusals: the answers only a person can fix are told apart
// from the message's own problems and from passing trouble; an update
// refused for one of them is an error, not a silent done.
func TestBrokenRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code   string
		broken bool
	}{
		{"invalid_auth", true}, {"token_revoked", true}, {"account_inactive", true}, {"not_authed", true},
		{"missing_scope", true}, {"channel_not_found", true}, {"not_in_channel", true}, {"is_archived", true},
		{"ratelimited", false}, {"internal_error", false}, {"msg_too_long", false}, {"invalid_blocks", false},
		{"cant_update_message", false},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			for _, m := range []notifier.Message{openMsg(), updateMsg()} {
				f := newFakeSlack(t)
				s := newBot(t, f, nil)
				f.setRespond(answer("", 200, nil, slackError(tt.code)))
				_, err := s.Notify(t.Context(), m)
				code, broken := notifier.Broken(err)
				if broken != tt.broken || (broken && code != tt.code) {
					t.Errorf("%s: Broken(%v) = %q, %v; want %v", m.Kind, err, code, broken, tt.broken)
				}
				if tt.broken && err == nil {
					t.Errorf("%s: a refusal a person must fix counted as delivered", m.Kind)
				}
			}
		})
	}
}

// TestTooLongShrinks: Slack refuses the full message for its size; the
// notifier sends it again shorter (fewer rows, no quotes), then the
// headline alone, and the delivery succeeds.
func TestTooLongShrinks(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		code    string
		refuses int // how many renderings Slack refuses
	}{{"msg_too_long", 1}, {"invalid_blocks", 2}} {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			f := newFakeSlack(t)
			s := newBot(t, f, nil)
			n := 0
			f.setRespond(func(c call, w http.ResponseWriter) bool {
				n++
				if n > tt.refuses {
					return false
				}
				w.Write([]byte(slackError(tt.code)))
				return true
			})
			m := openMsg()
			inc := *m.Incident
			inc.Attempt.Body = strings.Repeat("quoted body ", 200)
			m.Incident = &inc
			if _, err := s.Notify(t.Context(), m); err != nil {
				t.Fatalf("a message too long for Slack was not shrunk: %v", err)
			}
			calls := f.take()
			if len(calls) != tt.refuses+1 {
				t.Fatalf("%d calls, want %d", len(calls), tt.refuses+1)
			}
			first, last := calls[0].param("blocks"), calls[len(calls)-1].param("blocks")
			if len(last) >= len(first) || strings.Contains(last, "quoted body") {
				t.Errorf("the last try is not shorter: %d bytes after %d", len(last), len(first))
			}
		})
	}
	// Each level says less, and keeps the cells the headline counts.
	m := openMsg()
	one, two := notifier.Shrink(m, 1).Incident, notifier.Shrink(m, 2).Incident
	if one.Attempt.Body != "" || one.Attempt.Headers != nil || len(one.Cells) != len(m.Incident.Cells) {
		t.Errorf("level 1 keeps quotes or loses cells: %+v", one)
	}
	if len(two.Hints) != 0 || len(two.Variants) != 0 || len(two.Cells) != len(m.Incident.Cells) {
		t.Errorf("level 2 keeps hints or variants, or loses cells: %+v", two)
	}
}
