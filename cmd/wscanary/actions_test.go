package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/monitor/testbed"
	"github.com/wscanary/wscanary/notifier"
)

const canaryAppToken = "xapp-1-CANARY-app-5e5e"

// TestSlackButtons: with an app token the incident message carries
// Acknowledge, Silence 1h and Run again; clicks arrive over Socket Mode
// from a server that speaks the protocol as Slack documents it. Each
// envelope is acknowledged; each click changes the store and updates the
// message; clicks we never offered change nothing; a dropped connection is
// reopened; the app token is never shown.
// buttonsRig is a daemon with buttons (Socket Mode) and one check, chat,
// refused by its origin, whose incident's message is posted.
type buttonsRig struct {
	origin             *testbed.Origin
	slack              *testbed.FakeSlack
	listen, cfg, state string
	p                  *daemonProc
	root               testbed.SlackCall
	id                 string // the incident's
}

// newButtonsRig starts one; slackExtra is more YAML under slack:, every
// the check's schedule.
func newButtonsRig(t *testing.T, slackExtra, every string) *buttonsRig {
	t.Helper()
	r := &buttonsRig{origin: startOrigin(t, testbed.Behavior{Status: 403, Body: "forbidden"}, nil), slack: testbed.NewFakeSlack(canarySlackToken)}
	t.Cleanup(r.slack.Close)
	r.slack.EnableSocketMode(canaryAppToken)
	r.listen, _ = testbed.FreeAddr()
	r.state = filepath.Join(t.TempDir(), "state")
	r.cfg = writeConfig(t, fmt.Sprintf(`vantage: us
listen: %s
state_dir: %s
slack:
  token: ${SLACK_BOT_TOKEN}
  app_token: ${SLACK_APP_TOKEN}
  channel: "#ws-alerts"
  api_url: %s
%s`, r.listen, r.state, r.slack.APIURL(), slackExtra), fmt.Sprintf("checks:\n  - {name: chat, url: \"ws://%s/ws\", schedule: \"@every %s\", timeout: 2s}\n", r.origin.Addr(), every))
	r.p = startRun(t, r.cfg, append(daemonEnv, "SLACK_APP_TOKEN="+canaryAppToken)...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Slack calls:\n%s\nlogs:\n%s", callList(r.slack), lastLines(r.p.stderr.String(), 60))
		}
	})
	// Clicks come after the daemon recorded where the message is: Slack
	// answered the post, but a click in the milliseconds before the daemon
	// stored that answer is (rightly) not known as the incident's message.
	waitFor(t, "the incident's message, its delivery recorded, and a Socket Mode connection", 20*time.Second, func() bool {
		delivered := strings.Contains(r.p.stderr.String(), `"msg":"notification delivered","check":"chat","kind":"open"`)
		return len(incidentRoots(r.slack)) == 1 && delivered && r.slack.SocketOpens() == 1
	})
	r.root = incidentRoots(r.slack)[0]
	r.id = theIncident(t, r.listen)
	return r
}

func TestSlackButtons(t *testing.T) {
	t.Parallel()
	r := newButtonsRig(t, "", "1s")
	origin, slack, listen, cfg, state, p, root, id := r.origin, r.slack, r.listen, r.cfg, r.state, r.p, r.root, r.id
	for _, b := range []string{notifier.ActionAck, notifier.ActionSilence, notifier.ActionRun} {
		if !strings.Contains(root.Blocks, b) {
			t.Fatalf("the message lacks the %s button:\n%s", b, root.Blocks)
		}
	}
	t.Logf("incident message with its buttons: %s", root.Blocks)
	st, err := store.Open(context.Background(), store.Options{Dir: state, Beside: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	click := func(action, value string) {
		t.Helper()
		env, err := slack.Click(action, value, "U0ALICE", "alice", "C0ALERTS", root.Answered)
		if err != nil {
			t.Fatal(err)
		}
		if !slack.Acked(env, 3*time.Second) {
			t.Fatalf("envelope %s (%s) not acknowledged within 3 s", env, action)
		}
	}
	updateWith := func(what string, cond func(testbed.SlackCall) bool) testbed.SlackCall {
		t.Helper()
		var found testbed.SlackCall
		waitFor(t, what, 10*time.Second, func() bool {
			for _, c := range slack.Calls() {
				if c.Method == "chat.update" && c.TS == root.Answered && cond(c) {
					found = c
					return true
				}
			}
			return false
		})
		return found
	}

	// Acknowledge: stored, shown, and its button gone.
	click(notifier.ActionAck, id)
	acked := updateWith("the message saying who acknowledged", func(c testbed.SlackCall) bool {
		return strings.Contains(c.Blocks, "Acknowledged by \\u003c@U0ALICE\\u003e") || strings.Contains(c.Blocks, "Acknowledged by <@U0ALICE>")
	})
	if strings.Contains(acked.Blocks, notifier.ActionAck) || !strings.Contains(acked.Blocks, notifier.ActionRun) {
		t.Errorf("after the acknowledgement the buttons are wrong:\n%s", acked.Blocks)
	}
	t.Logf("the update after Acknowledge: %s", acked.Blocks)
	rec, err := st.IncidentByID(context.Background(), id)
	if err != nil || rec == nil || rec.Decision.Acked == nil || rec.Decision.Acked.By != "U0ALICE" {
		t.Fatalf("the store's incident after Acknowledge: %+v, %v", rec, err)
	}

	// Silence 1h: stored and shown.
	click(notifier.ActionSilence, id)
	updateWith("the message saying it is silenced", func(c testbed.SlackCall) bool { return strings.Contains(c.Blocks, "Silenced until") })
	sls, err := st.Silences(context.Background(), time.Now())
	if err != nil || len(sls) != 1 || sls[0].Check != "chat" || sls[0].By != "U0ALICE" || sls[0].Ends.Sub(sls[0].Starts) != time.Hour {
		t.Fatalf("silences after Silence 1h: %+v, %v", sls, err)
	}

	// Run again: a run at once, and the message updated with it.
	before := len(slack.Calls())
	click(notifier.ActionRun, id)
	waitFor(t, "the run asked for, and the update after it", 10*time.Second, func() bool {
		return strings.Contains(p.stderr.String(), `"action":"wscanary_run"`) && len(slack.Calls()) > before
	})

	// Clicks we never offered, on incidents we do not know: nothing.
	recBefore, err := st.IncidentByID(context.Background(), id)
	if err != nil || recBefore == nil {
		t.Fatalf("the incident before the forged clicks: %v", err)
	}
	before = len(slack.Calls())
	click("wscanary_drop_tables", id)
	click(notifier.ActionAck, "chat-20200101T000000Z-ffffff")
	time.Sleep(2 * time.Second)
	for _, c := range slack.Calls()[before:] {
		if c.Method == "chat.update" && !strings.HasPrefix(c.Text, "FAILING") {
			t.Errorf("a forged click changed the message: %q", c.Text)
		}
	}
	// Nor the store: the acknowledgement and the one silence stand as they were.
	recAfter, err := st.IncidentByID(context.Background(), id)
	if err != nil || recAfter == nil || recAfter.Decision.State != recBefore.Decision.State ||
		recAfter.Decision.Acked == nil || *recAfter.Decision.Acked != *recBefore.Decision.Acked {
		t.Errorf("a forged click changed the incident: before %+v, after %+v (%v)", recBefore.Decision, recAfter, err)
	}
	if sls, err := st.Silences(context.Background(), time.Now()); err != nil || len(sls) != 1 {
		t.Errorf("silences after the forged clicks: %+v, %v", sls, err)
	}
	logs := p.stderr.String()
	for _, want := range []string{"ignored a click on a button wscanary does not post", "slack action ignored: no such incident"} {
		if !strings.Contains(logs, want) {
			t.Errorf("no log line %q", want)
		}
	}

	// A dropped connection is reopened, and clicks work again.
	slack.DropSocket()
	waitFor(t, "a second Socket Mode connection", 20*time.Second, func() bool { return slack.SocketOpens() == 2 })
	click(notifier.ActionRun, id)
	if _, m := get(listen, "/metrics"); !strings.Contains(m, `wscanary_slack_socket_connections_total{reconnect="true"} 1`) {
		t.Errorf("/metrics does not count the reconnection:\n%s", grepLines(m, "slack_socket", 5))
	}

	// A click on a check that is no longer configured: nothing.
	os.WriteFile(filepath.Join(filepath.Dir(cfg), "checks.d", "e2e.yaml"),
		[]byte(fmt.Sprintf("checks:\n  - {name: other, url: \"ws://%s/ws\", schedule: \"@every 1s\"}\n", origin.Addr())), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the reload", 10*time.Second, func() bool { return strings.Contains(p.stderr.String(), "configuration reloaded") })
	click(notifier.ActionRun, id)
	waitFor(t, "the click on a removed check logged", 5*time.Second, func() bool {
		return strings.Contains(p.stderr.String(), "the check is no longer configured")
	})
	p.stop(t)
	everything := p.stderr.String() + p.stdout.String()
	for _, c := range slack.Calls() {
		everything += c.Form
	}
	if strings.Contains(everything, canaryAppToken) {
		t.Fatal("the app token leaked into logs or Slack")
	}
}

// theIncident is the id of the one open incident /status lists.
func theIncident(t *testing.T, listen string) string {
	t.Helper()
	_, status := getStatus(t, listen)
	var doc struct {
		Incidents []struct{ ID string } `json:"incidents"`
	}
	json.Unmarshal([]byte(status), &doc)
	if len(doc.Incidents) != 1 {
		t.Fatalf("/status: %s", status)
	}
	return doc.Incidents[0].ID
}
