package notifier_test

import (
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/notifier"
)

// hostileTexts are what a target may put in its reason phrase, headers,
// body or close reason to break out of the message around it.
var hostileTexts = []string{
	"```",
	"Forbidden ```",
	"``` swallow the rest",
	"a`b``c```d````e",
	"```\n<!channel> ```",
	"`",
	"*bold* _it_ ~s~ ```code```",
	strings.Repeat("`", 301),
}

// mrkdwnTexts lists every mrkdwn text object of blocks.
func mrkdwnTexts(t *testing.T, blocks []slack.Block) []string {
	t.Helper()
	var out []string
	walkJSON(t, blocks, func(obj map[string]any) {
		if s, ok := obj["text"].(string); ok && obj["type"] == "mrkdwn" {
			out = append(out, s)
		}
	})
	return out
}

// TestMrkdwnFencesBalanced: whatever a target says, in whichever field it
// reaches a message, every mrkdwn text of the message has balanced code
// fences (a fence of the target's would swallow the rest of the message),
// and no hostile string with backticks in it reaches a text whole.
func TestMrkdwnFencesBalanced(t *testing.T) {
	t.Parallel()
	place := map[string]func(*notifier.Incident, string){
		"reason":  func(inc *notifier.Incident, s string) { inc.Attempt.Reason = s; inc.Cells[0].Reason = s },
		"body":    func(inc *notifier.Incident, s string) { inc.Attempt.Body = s },
		"header":  func(inc *notifier.Incident, s string) { inc.Attempt.Headers["Server"] = s },
		"summary": func(inc *notifier.Incident, s string) { inc.Summary = s },
		"hint":    func(inc *notifier.Incident, s string) { inc.Hints = append(inc.Hints, s) },
		"note":    func(inc *notifier.Incident, s string) { inc.Notes = append(inc.Notes, s) },
		"check":   func(inc *notifier.Incident, s string) { inc.Check = s },
		"vantage": func(inc *notifier.Incident, s string) { inc.Cells[0].Vantage = s; inc.Attempt.Vantage = s },
		"close": func(inc *notifier.Incident, s string) {
			inc.Attempt.Outcome, inc.Attempt.Status, inc.Attempt.CloseCode, inc.Attempt.CloseReason = report.OutcomeRejectedAfterOpen, 101, 4401, s
		},
		"variant": func(inc *notifier.Incident, s string) {
			inc.Variants = append(inc.Variants, report.Attempt{Vantage: "v", Route: report.RouteCDN, Variant: report.VariantNoOrigin, Status: 403, Reason: s})
		},
	}
	for field, put := range place {
		for _, hostile := range hostileTexts {
			inc := incidentView()
			put(&inc, hostile)
			reply := replyMsg(widened(), causeChanged())
			reply.Incident = &inc
			resolved := inc
			resolved.State = notifier.StateResolved
			sets := map[string][]slack.Block{
				"open":     notifier.Blocks(inc),
				"resolved": notifier.Blocks(resolved),
				"reply":    notifier.ReplyBlocks(reply),
				"notice":   notifier.NoticeBlocks(notifier.Notice{Check: inc.Check, Title: hostile, Lines: []string{hostile, inc.Summary}}),
			}
			for name, blocks := range sets {
				for _, text := range mrkdwnTexts(t, blocks) {
					if strings.Count(text, "```")%2 != 0 {
						t.Errorf("%s in %s, %s: unbalanced fences in %q", hostile, field, name, text)
					}
					if strings.Contains(hostile, "``") && strings.Trim(hostile, "`") != "" && strings.Contains(text, hostile) {
						t.Errorf("%s in %s, %s: the target's backticks reached the message: %q", hostile, field, name, text)
					}
				}
			}
		}
	}
}
