package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wscanary/wscanary/monitor/testbed"
)

// incidentRig is one `wscanary run` with three vantages (its own address
// and the source addresses 127.0.0.2 and .3) and both routes, against a real
// nginx edge and a test origin, posting to a Slack test server that records
// every call.
type incidentRig struct {
	origin *testbed.Origin
	nginx  *testbed.Nginx
	edge   testbed.EdgeConfig
	slack  *testbed.FakeSlack
	listen string
	cfg    string
	p      *daemonProc
}

// openWAFIncident waits for the six series to upgrade, then turns the
// edge into a Cloudflare-like WAF that refuses the upgrade, and waits for
// the incident's message.
func (r *incidentRig) openWAFIncident(t *testing.T) {
	t.Helper()
	waitFor(t, "six healthy series", 15*time.Second, func() bool {
		_, s := getStatus(t, r.listen)
		return strings.Count(s, `"outcome": "upgraded"`) == 6
	})
	setMode(t, r.nginx, r.edge, testbed.EdgeWAF403CloudflareLike)
	waitFor(t, "the incident's message", 15*time.Second, func() bool { roots, _ := r.slack.Posts(); return len(roots) == 1 })
}

func newIncidentRig(t *testing.T, mode testbed.EdgeMode, deny ...string) *incidentRig {
	t.Helper()
	r := &incidentRig{origin: startOrigin(t, testbed.Behavior{}, nil), slack: testbed.NewFakeSlack(canarySlackToken)}
	t.Cleanup(r.slack.Close)
	r.nginx, r.edge = startEdge(t, r.origin.Addr(), mode, deny...)
	r.listen, _ = testbed.FreeAddr()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "checks.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "wscanary.yaml"), []byte(fmt.Sprintf(`vantage: us
listen: %s
state_dir: %s
vantages:
  - {name: eu, source_address: 127.0.0.2}
  - {name: ap, source_address: 127.0.0.3}
slack:
  token: ${SLACK_BOT_TOKEN}
  channel: "#ws-alerts"
  api_url: %s
`, r.listen, filepath.Join(dir, "state"), r.slack.APIURL())), 0o600)
	os.WriteFile(filepath.Join(dir, "checks.d", "chat.yaml"), []byte(fmt.Sprintf(`checks:
  - name: chat
    url: ws://%s/ws?room=1
    direct: {address: "%s"}
    schedule: "@every 1s"
    timeout: 2s
    vantages: [us, eu, ap]
`, r.edge.Listen, r.origin.Addr())), 0o600)
	r.cfg = filepath.Join(dir, "wscanary.yaml")
	r.p = startRun(t, r.cfg, daemonEnv...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Slack calls:\n%s\nlogs:\n%s", callList(r.slack), r.p.stderr.String())
		}
	})
	return r
}

// headlines are the first lines of calls of a method ("" for all).
func headlines(s *testbed.FakeSlack, method string) []string {
	var out []string
	for _, c := range s.Calls() {
		if method == "" || c.Method == method {
			head, _, _ := strings.Cut(c.Text, "\n")
			out = append(out, head)
		}
	}
	return out
}

// TestIncidentSixCells: the CDN edge blocks upgrades from every vantage,
// then the origin refuses too: exactly one incident message, updated in
// place until it shows all six cells failing; a restart and a SIGKILL in
// the middle change nothing; the recovery replies in its thread and the
// message is updated to resolved.
func TestIncidentSixCells(t *testing.T) {
	r := newIncidentRig(t, testbed.EdgePass)
	r.openWAFIncident(t)
	roots, _ := r.slack.Posts()
	root := roots[0]
	if !strings.HasPrefix(root.Text, "FAILING  chat: 403 Forbidden on 3 of 6") || !strings.Contains(root.Blocks, "cdn_blocked") {
		t.Fatalf("root %q", root.Text)
	}
	if _, m := get(r.listen, "/metrics"); !strings.Contains(m, `wscanary_incident_open{check="chat"} 1`) ||
		strings.Count(m, "\nwscanary_series_status{") != 6 || !strings.Contains(m, `wscanary_series_success{check="chat",route="direct",vantage="ap"} 1`) {
		t.Errorf("/metrics does not show the incident and its series:\n%s", grepLines(m, "wscanary_series", 20))
	}

	// The origin refuses too: every cell fails.
	r.origin.Set(testbed.Behavior{Status: 403, Body: "forbidden"})
	waitFor(t, "the message updated to six of six", 20*time.Second, func() bool {
		return len(updatesOf(r.slack, root, "on 6 of 6")) > 0
	})
	// The edge still challenges, but its page says nothing about the
	// origin: the message leads with the origin's refusal and names the
	// edge's challenge beside it, so fixing one does not hide the other.
	for _, c := range updatesOf(r.slack, root, "on 6 of 6") {
		if !(strings.Contains(c.Blocks, "through direct from") && strings.Contains(c.Blocks, "Cloudflare edge answers with a challenge page too")) {
			t.Errorf("the six-of-six update does not name both the origin's refusal and the edge's challenge:\n%s", c.Blocks)
		}
	}

	// A restart and a SIGKILL mid-incident post nothing new.
	r.p.stop(t)
	r.p = startRun(t, r.cfg, daemonEnv...)
	time.Sleep(2500 * time.Millisecond)
	r.p.cmd.Process.Signal(syscall.SIGKILL)
	<-r.p.done
	r.p.done <- nil
	r.p = startRun(t, r.cfg, daemonEnv...)
	time.Sleep(2500 * time.Millisecond)
	if roots, _ := r.slack.Posts(); len(roots) != 1 {
		t.Fatalf("%d incident messages after a restart and a SIGKILL", len(roots))
	}

	// Recovery.
	r.origin.Set(testbed.Behavior{})
	setMode(t, r.nginx, r.edge, testbed.EdgePass)
	waitFor(t, "the recovery in the thread and the message resolved", 30*time.Second, func() bool {
		resolved, recovered := false, false
		for _, c := range r.slack.Calls() {
			resolved = resolved || (c.Method == "chat.update" && c.TS == root.Answered && strings.HasPrefix(c.Text, "RESOLVED"))
			recovered = recovered || (c.ThreadTS == root.Answered && strings.Contains(c.Text, "RECOVERED"))
		}
		return resolved && recovered
	})
	time.Sleep(2 * time.Second) // nothing else may follow
	r.p.stop(t)
	roots, replies := r.slack.Posts()
	if len(roots) != 1 {
		t.Fatalf("%d incident messages, want 1", len(roots))
	}
	for _, rep := range replies {
		if rep.ThreadTS != root.Answered {
			t.Errorf("a reply outside the incident's thread: %q", rep.Text)
		}
	}
	calls := r.slack.Calls()
	t.Logf("%d Slack calls for the incident: %s", len(calls), strings.Join(headlines(r.slack, ""), " | "))
	t.Logf("root blocks: %s", root.Blocks)
	for _, c := range calls {
		if c.Method == "chat.update" && strings.Contains(c.Text, "on 6 of 6") {
			t.Logf("update blocks: %s", c.Blocks)
			break
		}
	}
	for _, c := range replies {
		if strings.Contains(c.Text, "RECOVERED") {
			t.Logf("recovery reply: %s", c.Blocks)
		}
	}
}

// TestIncidentVantageBlocked: the edge denies one vantage's address (from
// the first run on): one incident, vantage_blocked, naming that vantage.
func TestIncidentVantageBlocked(t *testing.T) {
	r := newIncidentRig(t, testbed.EdgeDeny, "127.0.0.3")
	waitFor(t, "the incident's message", 15*time.Second, func() bool { roots, _ := r.slack.Posts(); return len(roots) == 1 })
	time.Sleep(3 * time.Second)
	roots, _ := r.slack.Posts()
	r.p.stop(t)
	if len(roots) != 1 {
		t.Fatalf("%d incident messages", len(roots))
	}
	if !strings.HasPrefix(roots[0].Text, "FAILING  chat: 403 Forbidden on 1 of 6 since the first run") ||
		!strings.Contains(roots[0].Blocks, "vantage_blocked") || !strings.Contains(roots[0].Blocks, "ap/cdn") {
		t.Fatalf("root %q\n%s", roots[0].Text, roots[0].Blocks)
	}
}

// TestIncidentCauseChanges: during an incident the edge goes from a WAF
// 403 to dropping the upgrade headers: the message is updated, one reply
// says the cause changed, and no second message is posted.
func TestIncidentCauseChanges(t *testing.T) {
	r := newIncidentRig(t, testbed.EdgePass)
	r.openWAFIncident(t)
	setMode(t, r.nginx, r.edge, testbed.EdgeStripUpgrade)
	waitFor(t, "a reply saying the cause changed", 30*time.Second, func() bool {
		_, replies := r.slack.Posts()
		for _, c := range replies {
			if strings.Contains(c.Text, "CAUSE CHANGED  chat: cdn_blocked (cloudflare) -&gt; proxy_stripped_upgrade") {
				return true
			}
		}
		return false
	})
	r.p.stop(t)
	roots, replies := r.slack.Posts()
	changed := 0
	for _, c := range replies {
		changed += strings.Count(c.Text, "CAUSE CHANGED")
	}
	updates := 0
	for _, c := range r.slack.Calls() {
		if c.Method == "chat.update" && c.TS == roots[0].Answered {
			updates++
		}
	}
	if len(roots) != 1 || changed != 1 || updates == 0 {
		t.Fatalf("%d messages, %d cause changes, %d updates", len(roots), changed, updates)
	}
}

// TestIncidentFirstMessageAuth: the server upgrades, then closes with 1008
// after the first message. The default rule opens an incident, and it
// stays open while the server keeps closing: a rejection after the
// upgrade is never a recovery.
func TestIncidentFirstMessageAuth(t *testing.T) {
	origin := startOrigin(t, testbed.Behavior{}, nil)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	cfg := writeConfig(t, fmt.Sprintf("vantage: us\nlisten: \"\"\nslack: {token: \"${SLACK_BOT_TOKEN}\", channel: \"#c\", api_url: %q}\n", slack.APIURL()),
		fmt.Sprintf("checks:\n  - {name: feed, url: \"ws://%s/ws\", schedule: \"@every 1s\", timeout: 2s, send: '{\"type\":\"auth\"}'}\n", origin.Addr()))
	p := startRun(t, cfg, daemonEnv...)
	time.Sleep(2 * time.Second)
	origin.Set(testbed.Behavior{CloseWith: websocket.StatusPolicyViolation})
	waitFor(t, "the incident", 15*time.Second, func() bool { roots, _ := slack.Posts(); return len(roots) == 1 })
	time.Sleep(4 * time.Second) // four more runs closed with 1008
	roots, replies := slack.Posts()
	if !strings.HasPrefix(roots[0].Text, "FAILING  feed: rejected after the upgrade on 1 of 1") || !strings.Contains(roots[0].Blocks, "post_handshake_rejected") {
		t.Fatalf("root %q", roots[0].Text)
	}
	if len(replies) != 0 {
		t.Fatalf("the incident said something while the server kept closing: %q", replies[0].Text)
	}
	origin.Set(testbed.Behavior{})
	waitFor(t, "the recovery", 20*time.Second, func() bool { _, rep := slack.Posts(); return len(rep) == 1 })
	p.stop(t)
}

// TestIncidentNoAnswer: with alert.on: [no_answer], an origin that is gone
// (connection refused) opens an incident.
func TestIncidentNoAnswer(t *testing.T) {
	origin := startOrigin(t, testbed.Behavior{}, nil)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	cfg := writeConfig(t, fmt.Sprintf("vantage: us\nlisten: \"\"\nslack: {token: \"${SLACK_BOT_TOKEN}\", channel: \"#c\", api_url: %q}\n", slack.APIURL()),
		fmt.Sprintf("checks:\n  - {name: gone, url: \"ws://%s/ws\", schedule: \"@every 1s\", timeout: 1s, alert: {on: [no_answer]}}\n", origin.Addr()))
	p := startRun(t, cfg, daemonEnv...)
	time.Sleep(2 * time.Second)
	origin.Close()
	waitFor(t, "the incident", 15*time.Second, func() bool { roots, _ := slack.Posts(); return len(roots) == 1 })
	p.stop(t)
	roots, _ := slack.Posts()
	if !strings.HasPrefix(roots[0].Text, "FAILING  gone: no answer on 1 of 1") || !strings.Contains(roots[0].Blocks, "connect_error") {
		t.Fatalf("root %q\n%s", roots[0].Text, roots[0].Blocks)
	}
}

// TestCertificateWarning: a certificate that expires in five days posts
// one warning, once, and opens no incident.
func TestCertificateWarning(t *testing.T) {
	ca, err := testbed.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	leaf, err := ca.Leaf([]string{"localhost"}, now.Add(-48*time.Hour), now.Add(5*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	origin := startOrigin(t, testbed.Behavior{}, &tls.Config{Certificates: []tls.Certificate{leaf}})
	_, port, _ := strings.Cut(origin.Addr(), ":")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, ca.PEM(), 0o600)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	cfg := writeConfig(t, fmt.Sprintf("vantage: us\nlisten: \"\"\nslack: {token: \"${SLACK_BOT_TOKEN}\", channel: \"#c\", api_url: %q}\n", slack.APIURL()),
		fmt.Sprintf("checks:\n  - {name: tls, url: \"wss://localhost:%s/ws\", schedule: \"@every 1s\", tls: {ca_file: %q}}\n", port, caFile))
	p := startRun(t, cfg, daemonEnv...)
	waitFor(t, "the warning", 15*time.Second, func() bool { return len(slack.Calls()) >= 1 })
	time.Sleep(4 * time.Second) // more runs, still expiring
	p.stop(t)
	calls := slack.Calls()
	if len(calls) != 1 || !regexp.MustCompile(`^WARNING  tls: the TLS certificate of localhost expires in [45] days`).MatchString(calls[0].Text) {
		t.Fatalf("calls: %s", strings.Join(headlines(slack, ""), " | "))
	}
}
