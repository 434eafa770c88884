package main

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wscanary/wscanary/notifier"
)

// TestButtonsCheckedAndBounded: a click counts only from the incident's
// own message and from the people allowed; forty clicks on Run again make
// one extra run, and the others are told it is already running. Before:
// a click on a message of another channel acknowledged the check, and 40
// clicks made 94 handshakes in 4 s where the schedule makes 6.
func TestButtonsCheckedAndBounded(t *testing.T) {
	t.Parallel()
	r := newButtonsRig(t, "  allowed_users: [U0ALICE, \"@bob\"]\n", "2s")
	t.Cleanup(func() { r.p.stop(t) })
	origin, slack, p, root, id := r.origin, r.slack, r.p, r.root, r.id
	click := func(action, user, name, channel, ts string) {
		t.Helper()
		env, err := slack.Click(action, id, user, name, channel, ts)
		if err != nil {
			t.Fatal(err)
		}
		if !slack.Acked(env, 5*time.Second) {
			t.Fatalf("envelope %s not acknowledged", env)
		}
	}
	acked := func() bool {
		for _, c := range slack.Calls() {
			if c.Method == "chat.update" && strings.Contains(c.Blocks, "Acknowledged by") {
				return true
			}
		}
		return false
	}

	// Another channel, another message, someone not allowed: nothing.
	click(notifier.ActionAck, "U0ALICE", "alice", "C0OTHER", root.Answered)
	click(notifier.ActionAck, "U0ALICE", "alice", "C0ALERTS", "1700000000.999999")
	click(notifier.ActionAck, "U0MALLORY", "mallory", "C0ALERTS", root.Answered)
	waitFor(t, "the refusals logged and answered", 10*time.Second, func() bool {
		logs := p.stderr.String()
		return strings.Count(logs, "the click did not come from the incident's message") == 2 &&
			strings.Contains(logs, "slack action refused") && len(slack.Responses()) == 1
	})
	if acked() {
		t.Fatal("a click from another message or another person acknowledged the incident")
	}
	if r := slack.Responses()[0]; !strings.HasPrefix(r, "ephemeral: ") || !strings.Contains(r, "not allowed") {
		t.Errorf("the refusal's answer: %q", r)
	}
	// By handle, from the incident's message: acknowledged.
	click(notifier.ActionAck, "U0BOB", "bob", "C0ALERTS", root.Answered)
	waitFor(t, "the acknowledgement", 10*time.Second, acked)

	// Forty clicks on Run again at once: one run, the rest told.
	before := len(origin.Requests())
	start := time.Now()
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			env, err := slack.Click(notifier.ActionRun, id, "U0ALICE", "alice", "C0ALERTS", root.Answered)
			if err == nil {
				slack.Acked(env, 10*time.Second)
			}
		}()
	}
	wg.Wait()
	waitFor(t, "every click answered or carried out", 20*time.Second, func() bool {
		logs := p.stderr.String()
		return strings.Count(logs, "slack action coalesced")+strings.Count(logs, `"msg":"slack action carried out","action":"wscanary_run"`) >= 40
	})
	time.Sleep(time.Until(start.Add(4 * time.Second))) // the window
	handshakes := len(origin.Requests()) - before
	logs := p.stderr.String()
	ran := strings.Count(logs, `"msg":"slack action carried out","action":"wscanary_run"`)
	coalesced := strings.Count(logs, "slack action coalesced")
	t.Logf("40 clicks on Run again: %d run, %d coalesced, %d handshakes in 4 s (schedule: every 2 s)", ran, coalesced, handshakes)
	if ran != 1 || coalesced != 39 {
		t.Errorf("40 clicks: %d runs and %d coalesced, want 1 and 39", ran, coalesced)
	}
	answers := 0
	for _, r := range slack.Responses() {
		if strings.Contains(r, "already running") || strings.Contains(r, "ran a moment ago") {
			answers++
		}
	}
	if answers != 39 {
		t.Errorf("%d clicks told the check is running or just ran, want 39", answers)
	}
	// Scheduled runs (two in 4 s) and the one asked for, each with its
	// diagnostic variants: far from the 94 of before.
	if handshakes > 20 {
		t.Errorf("%d handshakes in 4 s after 40 clicks", handshakes)
	}
}
