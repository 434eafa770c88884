package notifier_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/notifier"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// marshal renders blocks the way the golden files hold them: indented, with
// <, > and & readable.
func marshal(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./notifier -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the built message (go test ./notifier -update rewrites it)\n--- got\n%s", path, got)
	}
}

// texts collects every "text" string in blocks, in order, so tests can look
// for what a reader sees without caring which block holds it.
func texts(t *testing.T, blocks []slack.Block) string {
	t.Helper()
	raw, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if s, ok := v["text"].(string); ok {
				out = append(out, s)
			}
			for k, x := range v {
				if k != "text" {
					walk(x)
				} else if m, ok := x.(map[string]any); ok {
					walk(m)
				}
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	return strings.Join(out, "\n")
}

func TestBlocksGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file   string
		blocks []slack.Block
		want   []string
	}{
		{
			file:   "alert.golden.json",
			blocks: notifier.Blocks(alertEvent()),
			want: []string{
				":rotating_light:", "chat", "us-east-1", "cdn", "101 -> 403", "`cdn_blocked` (cloudflare)",
				firstHint, "Security &gt; WAF", // the second hint, escaped
				"Cf-Ray: 8e1f2a3b4c5d6e7f-IAD", "Cf-Mitigated: challenge", "Server: cloudflare",
				"&lt;!DOCTYPE html&gt;", // body snippet, escaped
				"eu-west-1 / cdn: 403 Forbidden", "us-east-1 / direct: 101 ok",
				"<https://grafana.example.com/explore?traceId=" + trace + "|" + trace + ">",
				"wss://chat.example.com/ws?room=1&amp;token=REDACTED",
				"2026-11-24T10:00:00Z (12m ago)",
			},
		},
		{
			file:   "recovery.golden.json",
			blocks: notifier.Blocks(recoveryEvent()),
			want:   []string{":white_check_mark:", "recovered", "403 -> 101", "chat", "us-east-1", "cdn", "(open 47m)"},
		},
		{
			file:   "change.golden.json",
			blocks: notifier.Blocks(changeEvent()),
			want: []string{
				":warning:", "api", "eu-west-1", "401 -> 403", "`cdn_blocked` (aws)",
				"AWS WAF web ACL", "X-Amzn-Waf-Action: block", "X-Amz-Cf-Id: Q1w2E3r4T5y6==", "Via: 1.1 3f2a.cloudfront.net",
				"Trace `0af7651916cd43dd8448eb211c80319c`", // no trace_url: the id, no link
			},
		},
		{
			file:   "resolved.golden.json",
			blocks: notifier.Resolved(recoveryEvent()),
			want: []string{
				":white_check_mark: RESOLVED — chat: 403 -> 101 on us-east-1/cdn",
				"back to `101` after 47m",
				"`cdn_blocked` (cloudflare)", firstHint, // the alert's facts are kept
			},
		},
		{
			file:   "reminder.golden.json",
			blocks: notifier.Blocks(reminderEvent()),
			want:   []string{":alarm_clock:", "still 403", "(4h00m ago)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			golden(t, tt.file, marshal(t, tt.blocks))
			all := texts(t, tt.blocks)
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("blocks do not mention %q", w)
				}
			}
			checkLimits(t, tt.blocks)
			roundTrip(t, tt.blocks)
		})
	}
}

func TestTextGolden(t *testing.T) {
	t.Parallel()
	golden(t, "alert.golden.txt", []byte(notifier.Text(alertEvent())))
}

// roundTrip checks that slack-go (and so a Slack-like server) decodes the
// blocks back into the same message.
func roundTrip(t *testing.T, blocks []slack.Block) {
	t.Helper()
	raw := marshal(t, blocks)
	var bs slack.Blocks
	if err := json.Unmarshal(raw, &bs); err != nil {
		t.Fatalf("slack.Blocks cannot decode the message: %v", err)
	}
	if again := marshal(t, bs.BlockSet); !bytes.Equal(again, raw) {
		t.Errorf("blocks change in a round trip through slack.Blocks:\n%s", again)
	}
}

// checkLimits enforces Block Kit's documented limits.
func checkLimits(t *testing.T, blocks []slack.Block) {
	t.Helper()
	if len(blocks) == 0 || len(blocks) > 50 {
		t.Fatalf("%d blocks, want 1..50", len(blocks))
	}
	n := func(s string) int { return utf8.RuneCountInString(s) }
	for i, b := range blocks {
		switch b := b.(type) {
		case *slack.HeaderBlock:
			if l := n(b.Text.Text); l == 0 || l > 150 {
				t.Errorf("block %d: header of %d characters", i, l)
			}
			if b.Text.Type != slack.PlainTextType {
				t.Errorf("block %d: header is %s", i, b.Text.Type)
			}
		case *slack.SectionBlock:
			if b.Text == nil && len(b.Fields) == 0 {
				t.Errorf("block %d: empty section", i)
			}
			if b.Text != nil {
				if err := b.Text.Validate(); err != nil {
					t.Errorf("block %d: %v", i, err)
				}
			}
			if len(b.Fields) > 10 {
				t.Errorf("block %d: %d fields", i, len(b.Fields))
			}
			for _, f := range b.Fields {
				if err := f.Validate(); err != nil || n(f.Text) > 2000 {
					t.Errorf("block %d: field of %d characters: %v", i, n(f.Text), err)
				}
			}
		case *slack.ContextBlock:
			if l := len(b.ContextElements.Elements); l == 0 || l > 10 {
				t.Errorf("block %d: %d context elements", i, l)
			}
		default:
			t.Errorf("block %d: unexpected %T", i, b)
		}
	}
}

func TestBlocksHostileInput(t *testing.T) {
	t.Parallel()
	ev := alertEvent()
	ev.Check = strings.Repeat("very-long-check-name-", 20)
	ev.Attempt.Body = "<!channel> <@U123> ```break out``` \x1b[2J" + strings.Repeat("A&B<C>", 2000)
	ev.Attempt.Headers = map[string]string{
		"server":             "<!here> " + strings.Repeat("x", 5000),
		"X-Amzn-Waf-Rule":    "r1",
		"X-Amzn-Waf-Action":  "block",
		"Www-Authenticate":   `Bearer realm="ws", error="invalid_token"`,
		"Location":           "https://login.example.com/?next=<script>",
		"X-Unrelated-Header": "not telling",
	}
	ev.Diagnosis.Hints = nil
	for range 50 {
		ev.Diagnosis.Hints = append(ev.Diagnosis.Hints, strings.Repeat("hint ", 300))
	}
	ev.Others = nil
	for range 200 {
		ev.Others = append(ev.Others, report.Attempt{Vantage: "v", Route: report.RouteCDN, Status: 403})
	}
	blocks := notifier.Blocks(ev)
	checkLimits(t, blocks)
	roundTrip(t, blocks)
	all := texts(t, blocks)
	for _, bad := range []string{"<!channel>", "<!here>", "<@U123>", "\x1b", "<script>", "X-Unrelated-Header"} {
		if strings.Contains(all, bad) {
			t.Errorf("blocks contain %q", bad)
		}
	}
	for _, want := range []string{"&lt;!channel&gt;", "server: &lt;!here&gt;", "X-Amzn-Waf-Action: block", "X-Amzn-Waf-Rule: r1", "Www-Authenticate", "and 180 more"} {
		if !strings.Contains(all, want) {
			t.Errorf("blocks do not contain %q", want)
		}
	}
	if strings.Contains(all, "``` break") || strings.Count(all, "```")%2 != 0 {
		t.Errorf("the body broke out of its code block:\n%s", all)
	}
	text := notifier.Text(ev)
	if strings.Contains(text, "\x1b") {
		t.Error("Text passes an escape sequence from the body through")
	}
}

func TestBlocksStatusZeroAndMissingFacts(t *testing.T) {
	t.Parallel()
	ev := notifier.Event{ID: "x", Kind: notifier.KindAlert, Check: "c", Vantage: "v", Route: report.RouteDirect,
		OldStatus: 0, NewStatus: 401, Attempt: report.Attempt{Status: 401, Error: ""}}
	blocks := notifier.Blocks(ev)
	checkLimits(t, blocks)
	all := texts(t, blocks)
	for _, want := range []string{"no answer -> 401", "Unauthorized", "*Since*\nunknown", "Event `x`"} {
		if !strings.Contains(all, want) {
			t.Errorf("blocks do not contain %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "Trace") || strings.Contains(all, "*Cause*") {
		t.Errorf("blocks show facts the event does not have:\n%s", all)
	}
}

func TestResolvedWithoutAlert(t *testing.T) {
	t.Parallel()
	ev := recoveryEvent()
	ev.Alert = nil
	blocks := notifier.Resolved(ev)
	checkLimits(t, blocks)
	all := texts(t, blocks)
	for _, want := range []string{"RESOLVED", "403 -&gt; 101", "chat", "(open 47m)"} {
		if !strings.Contains(all, want) {
			t.Errorf("blocks do not contain %q:\n%s", want, all)
		}
	}
}

func TestEventJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, ev := range []notifier.Event{alertEvent(), recoveryEvent(), changeEvent(), reminderEvent()} {
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		var back notifier.Event
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(marshal(t, notifier.Blocks(back)), marshal(t, notifier.Blocks(ev))) {
			t.Errorf("%s: the event renders differently after a JSON round trip", ev.ID)
		}
	}
}

func TestDeliveryRoot(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want notifier.Delivery }{
		{notifier.Delivery{}, notifier.Delivery{}},
		{notifier.Delivery{Channel: "C1", TS: "1.1"}, notifier.Delivery{Channel: "C1", TS: "1.1"}},
		{notifier.Delivery{Channel: "C1", TS: "2.2", ThreadTS: "1.1"}, notifier.Delivery{Channel: "C1", TS: "1.1"}},
	}
	for _, tt := range tests {
		if got := tt.in.Root(); got != tt.want {
			t.Errorf("%+v.Root() = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}
