package notifier_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
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
	var out []string
	walkJSON(t, blocks, func(obj map[string]any) {
		if s, ok := obj["text"].(string); ok {
			out = append(out, s)
		}
	})
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
			file:   "open.golden.json",
			blocks: notifier.Blocks(incidentView()),
			want: []string{
				":rotating_light: chat: 403 Forbidden on 3 of 6", "`cdn_blocked` (cloudflare)",
				"ap-south-1/cdn, eu-west-1/cdn, us-east-1/cdn",
				"us-east-1   ✗ 403 Forbidden  ✓ 101", // the matrix
				firstHint, "Security &gt; WAF",       // the second hint, escaped
				"Cf-Ray: 8e1f2a3b4c5d6e7f-IAD", "Cf-Mitigated: challenge", "Server: cloudflare",
				"&lt;!DOCTYPE html&gt;", // body snippet, escaped
				"us-east-1/cdn no-origin: 403 Forbidden", "us-east-1/cdn no-token: no answer: connect: connection refused",
				"<https://grafana.example.com/explore?traceId=" + trace + "|" + trace + ">",
				"wss://chat.example.com/ws?room=1&amp;token=REDACTED",
				"2026-11-24T10:00:00Z (12m ago)",
			},
		},
		{
			file:   "resolved.golden.json",
			blocks: notifier.Blocks(resolvedView()),
			want: []string{
				":white_check_mark: RESOLVED chat: upgraded again on all 6 after 47m (was 403 Forbidden)",
				"2026-11-24T10:47:00Z after 47m",
				"`cdn_blocked` (cloudflare)", firstHint, // the incident's facts are kept
			},
		},
		{
			file:   "replies.golden.json",
			blocks: notifier.ReplyBlocks(replyMsg(widened(), causeChanged(), reminder())),
			want: []string{
				"WIDER  chat: now also eu-west-1/cdn, ap-south-1/cdn; 403 Forbidden on 3 of 6",
				"CAUSE CHANGED  chat: cdn_blocked (cloudflare) -&gt; proxy_stripped_upgrade (nginx)",
				"STILL FAILING  chat: for 4h00m, 403 Forbidden on 3 of 6",
			},
		},
		{
			file:   "recovery.golden.json",
			blocks: notifier.ReplyBlocks(recoveryMsg()),
			want:   []string{":white_check_mark: RECOVERED  chat: upgraded again on all 6 after 47m"},
		},
		{
			file:   "notice.golden.json",
			blocks: notifier.NoticeBlocks(*noticeMsg().Notice),
			want:   []string{"expires in 5 days", "opens no incident"},
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
	var all strings.Builder
	for _, m := range []notifier.Message{openMsg(), updateMsg(), replyMsg(widened(), causeChanged()), recoveryMsg(), resolvedUpdateMsg(), replyMsg(reopened()), noticeMsg()} {
		all.WriteString(notifier.Text(m))
		all.WriteString("----\n")
	}
	golden(t, "messages.golden.txt", []byte(all.String()))
}

// TestHeadline: what the first line says for the shapes of incidents.
func TestHeadline(t *testing.T) {
	t.Parallel()
	cell := func(v string, r report.Route, o report.Outcome, status int, reason string, failing bool) notifier.Cell {
		return notifier.Cell{Vantage: v, Route: r, Outcome: o, Status: status, Reason: reason, Failing: failing}
	}
	up := func(v string) notifier.Cell { return cell(v, report.RouteCDN, report.OutcomeUpgraded, 101, "", false) }
	tests := []struct {
		inc  notifier.Incident
		want string
	}{
		{notifier.Incident{Check: "a", Cells: []notifier.Cell{cell("us", report.RouteCDN, report.OutcomeRefused, 401, "Unauthorized", true), up("eu")}},
			"a: 401 Unauthorized on 1 of 2"},
		{notifier.Incident{Check: "a", Cells: []notifier.Cell{cell("us", report.RouteCDN, report.OutcomeRefused, 401, "Unauthorized", true),
			cell("eu", report.RouteCDN, report.OutcomeRefused, 403, "Forbidden", true)}}, "a: 401, 403 on 2 of 2"},
		{notifier.Incident{Check: "feed", FirstRun: true, Cells: []notifier.Cell{cell("us", report.RouteCDN, report.OutcomeRejectedAfterOpen, 101, "closed 4003", true)}},
			"feed: rejected after the upgrade on 1 of 1 since the first run"},
		{notifier.Incident{Check: "a", Cells: []notifier.Cell{cell("us", report.RouteCDN, report.OutcomeNoAnswer, 0, "connect", true), up("eu")}},
			"a: no answer on 1 of 2"},
		{notifier.Incident{Check: "a", Cells: []notifier.Cell{cell("us", report.RouteCDN, report.OutcomeRefused, 502, "Bad Gateway", false)}},
			"a: 502 Bad Gateway on 1 of 1"},
	}
	for _, tt := range tests {
		if got := notifier.Headline(tt.inc); got != tt.want {
			t.Errorf("Headline = %q, want %q", got, tt.want)
		}
	}
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
	inc := incidentView()
	inc.Check = strings.Repeat("very-long-check-name-", 20)
	inc.Attempt.Body = "<!channel> <@U123> ```break out``` \x1b[2J" + strings.Repeat("A&B<C>", 2000)
	inc.Attempt.Headers = map[string]string{
		"server":             "<!here> " + strings.Repeat("x", 5000),
		"X-Amzn-Waf-Rule":    "r1",
		"X-Amzn-Waf-Action":  "block",
		"Www-Authenticate":   `Bearer realm="ws", error="invalid_token"`,
		"Location":           "https://login.example.com/?next=<script>",
		"X-Unrelated-Header": "not telling",
	}
	inc.Hints = nil
	for range 50 {
		inc.Hints = append(inc.Hints, strings.Repeat("hint ", 300))
	}
	inc.Variants = nil
	for range 200 {
		inc.Variants = append(inc.Variants, report.Attempt{Vantage: "v", Route: report.RouteCDN, Variant: report.VariantNoOrigin, Status: 403})
	}
	inc.Cells = nil
	for i := range 300 {
		inc.Cells = append(inc.Cells, notifier.Cell{Vantage: fmt.Sprintf("<!here>-%03d", i), Route: report.RouteCDN, Outcome: report.OutcomeRefused, Status: 403, Failing: true})
	}
	blocks := notifier.Blocks(inc)
	checkLimits(t, blocks)
	roundTrip(t, blocks)
	all := texts(t, blocks)
	for _, bad := range []string{"<!channel>", "<!here>", "<@U123>", "\x1b", "<script>", "X-Unrelated-Header"} {
		if strings.Contains(all, bad) {
			t.Errorf("blocks contain %q", bad)
		}
	}
	for _, want := range []string{"&lt;!channel&gt;", "server: &lt;!here&gt;", "X-Amzn-Waf-Action: block", "X-Amzn-Waf-Rule: r1", "Www-Authenticate", "and 190 more", "and 260 more vantages"} {
		if !strings.Contains(all, want) {
			t.Errorf("blocks do not contain %q", want)
		}
	}
	if strings.Contains(all, "``` break") || strings.Count(all, "```")%2 != 0 {
		t.Errorf("the body broke out of its code block:\n%s", all)
	}
	if text := notifier.Text(notifier.Message{Kind: notifier.KindOpen, Incident: &inc}); strings.Contains(text, "\x1b") {
		t.Error("Text passes an escape sequence from the body through")
	}
}

func TestMessageJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, m := range []notifier.Message{openMsg(), updateMsg(), replyMsg(widened(), causeChanged()), recoveryMsg(), noticeMsg()} {
		raw, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back notifier.Message
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		// The outbox keeps messages as this JSON: every field must come
		// back, not only what Text shows (the thread, hints, the target).
		again, _ := json.Marshal(back)
		if string(again) != string(raw) || notifier.Text(back) != notifier.Text(m) {
			t.Errorf("%s: the message changes in a JSON round trip:\n%s\n%s", m.ID, raw, again)
		}
	}
}

// walkJSON calls visit for every object of v's JSON, outermost first.
func walkJSON(t *testing.T, v any, visit func(map[string]any)) {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		t.Fatal(err)
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			visit(v)
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(tree)
}

// TestFlipsShown: a check that upgraded without staying up for
// alert.recover_after says so on its message and in its recovery.
func TestFlipsShown(t *testing.T) {
	t.Parallel()
	inc := incidentView()
	inc.Flips = 3
	if all := texts(t, notifier.Blocks(inc)); !strings.Contains(all, "upgraded 3 time(s) without staying up") {
		t.Errorf("the message does not count the flips: %s", all)
	}
	m := recoveryMsg()
	m.Events[0].Flips = 3
	if all := texts(t, notifier.ReplyBlocks(m)); !strings.Contains(all, "flipped back 3 time(s)") {
		t.Errorf("the recovery does not count the flips: %s", all)
	}
	if all := texts(t, notifier.ReplyBlocks(recoveryMsg())); strings.Contains(all, "flipped") {
		t.Errorf("a recovery without flips mentions them: %s", all)
	}
}
