package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/monitor/testbed"
	"github.com/wscanary/wscanary/notifier"
)

// TestGroupedBurst: 2,000 checks behind one real nginx edge that starts
// refusing every one of them (its deny rule) are one group message, kept
// up to date, with one recovery in its thread: a handful of Slack calls
// instead of 6,001. Slack answers 429 for a while (those answers are not
// counted), and the daemon is killed with SIGKILL mid-storm: the group's
// message is updated afterwards, not posted again.
func TestGroupedBurst(t *testing.T) {
	const n, maxCalls = 2000, 8
	origin := startOrigin(t, testbed.Behavior{}, nil)
	// The edge's deny rule is switched by a file nginx looks for on each
	// request: every check meets the change at once, as from a deployed
	// rule (a reload's old workers would answer some runs half-changed).
	deny := filepath.Join(t.TempDir(), "deny")
	edge := startEdgeWith(t, testbed.EdgeConfig{Upstream: origin.Addr(), Mode: testbed.EdgePass, DenyFile: deny})
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	listen, _ := testbed.FreeAddr()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "checks.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "wscanary.yaml"), []byte(fmt.Sprintf(
		"vantage: burst\nlisten: %s\nstate_dir: %s\ngroup: {interval: 30s}\nslack:\n  token: ${SLACK_BOT_TOKEN}\n  channel: \"#c\"\n  api_url: %s\n",
		listen, filepath.Join(dir, "state"), slack.APIURL())), 0o600)
	var b strings.Builder
	b.WriteString("checks:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: g%04d, url: \"ws://%s/ws?c=%04d\", schedule: \"@every 5s\", timeout: 3s}\n", i, edge.Listen, i)
	}
	os.WriteFile(filepath.Join(dir, "checks.d", "burst.yaml"), []byte(b.String()), 0o600)
	cfg := filepath.Join(dir, "wscanary.yaml")

	var p *daemonProc
	logs := ""
	t.Cleanup(func() {
		if t.Failed() && p != nil {
			t.Logf("logs:\n%s\nslack calls:\n%s", lastLines(logs+p.stderr.String(), 60), lastLines(callList(slack), 40))
		}
	})
	p = startRun(t, cfg, daemonEnv...)
	const stall = time.Minute
	statusCount := func(s string) func() int {
		return func() int {
			_, doc := getStatus(t, listen)
			return strings.Count(doc, `"status": `+s)
		}
	}
	testbed.WaitProgress(t, "every series healthy", n, stall, statusCount("101"))

	slack.FailNext(http.StatusTooManyRequests, http.StatusTooManyRequests, http.StatusTooManyRequests)
	if err := os.WriteFile(deny, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testbed.WaitProgress(t, "the storm under way", n/2, stall, statusCount("403"))
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- nil
	logs = p.stderr.String()

	p = startRun(t, cfg, daemonEnv...)
	testbed.WaitProgress(t, "every check refused", n, stall, statusCount("403"))
	groupSays := func(what string) func() int {
		return func() int {
			for _, c := range slack.Calls() {
				if strings.Contains(c.Text, what) {
					return n
				}
			}
			return 0
		}
	}
	testbed.WaitProgress(t, "the group's message with every check", n, stall, groupSays(fmt.Sprintf("%d checks fail together", n)))
	if err := os.Remove(deny); err != nil {
		t.Fatal(err)
	}
	testbed.WaitProgress(t, "every check upgrading again", n, stall, statusCount("101"))
	testbed.WaitProgress(t, "the group's recovery", n, stall, groupSays(fmt.Sprintf("RECOVERED  all %d checks", n)))
	time.Sleep(3 * time.Second) // nothing else may follow
	p.stop(t)
	logs += p.stderr.String()

	calls := slack.Calls()
	roots, replies := slack.Posts()
	var lines []string
	for _, c := range calls {
		lines = append(lines, c.Method+" "+c.ThreadTS+" "+strings.SplitN(c.Text, "\n", 2)[0])
	}
	t.Logf("%d Slack calls answered 200 for %d checks:\n%s", len(calls), n, strings.Join(lines, "\n"))
	if len(calls) > maxCalls {
		t.Errorf("%d Slack calls for one edge change behind %d checks, want at most %d", len(calls), n, maxCalls)
	}
	// The group that recovered was posted once (after the kill its message
	// is updated, not posted again).
	var group string
	for _, r := range replies {
		if strings.HasPrefix(r.Text, "RECOVERED") {
			group = r.ThreadTS
		}
	}
	var id string
	for _, r := range roots {
		if r.Answered == group {
			id = regexp.MustCompile(`group-[0-9a-f]{8}-\d{8}T\d{6}Z-[0-9a-f]{6}`).FindString(r.Blocks)
		}
	}
	posted := 0
	for _, r := range roots {
		if id != "" && strings.Contains(r.Blocks, id) {
			posted++
		}
	}
	if id == "" || posted != 1 {
		t.Errorf("the group %q that recovered was posted %d times, want once (updated after the kill, not posted again)", id, posted)
	}
	recov := 0
	for _, r := range replies {
		if strings.HasPrefix(r.Text, "RECOVERED") {
			recov++
		}
	}
	if recov != 1 {
		t.Errorf("%d recoveries in threads, want the group's one", recov)
	}
	for _, bad := range lossLines {
		if strings.Contains(logs, bad) {
			t.Errorf("the daemon logged %q", bad)
		}
	}
}

// TestGroupButtons: the buttons of a group's message act on every member
// still failing: Acknowledge marks each (reminders stop) and the group's
// message says who; Silence 1h silences each check; Run again runs each,
// bounded like a click on its own message. A click on the group must come
// from the group's message.
func TestGroupButtons(t *testing.T) {
	t.Parallel()
	origin := startOrigin(t, testbed.Behavior{Status: 403, Body: "forbidden"}, nil)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	slack.EnableSocketMode(canaryAppToken)
	listen, _ := testbed.FreeAddr()
	state := filepath.Join(t.TempDir(), "state")
	var checks strings.Builder
	checks.WriteString("checks:\n")
	for _, n := range []string{"a", "b", "c"} {
		fmt.Fprintf(&checks, "  - {name: %s, url: \"ws://%s/ws?%s\", schedule: \"@every 1s\", timeout: 2s}\n", n, origin.Addr(), n)
	}
	cfg := writeConfig(t, fmt.Sprintf("vantage: us\nlisten: %s\nstate_dir: %s\nslack:\n  token: ${SLACK_BOT_TOKEN}\n  app_token: ${SLACK_APP_TOKEN}\n"+
		"  channel: \"#ws-alerts\"\n  api_url: %s\n", listen, state, slack.APIURL()), checks.String())
	p := startRun(t, cfg, append(daemonEnv, "SLACK_APP_TOKEN="+canaryAppToken)...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Slack calls:\n%s\nlogs:\n%s", callList(slack), lastLines(p.stderr.String(), 60))
		}
		p.stop(t)
	})
	var root testbed.SlackCall
	waitFor(t, "the group's message and a Socket Mode connection", 30*time.Second, func() bool {
		for _, c := range slack.Calls() {
			if strings.Contains(c.Text, "3 checks fail together") && c.ThreadTS == "" {
				root = c
			}
		}
		return root.Answered != "" && slack.SocketOpens() == 1
	})
	ts := root.Answered
	if root.Method == "chat.update" {
		ts = root.TS
	}
	gid := regexp.MustCompile(`group-[0-9a-f]{8}-\d{8}T\d{6}Z-[0-9a-f]{6}`).FindString(root.Blocks)
	if gid == "" || !strings.Contains(root.Blocks, notifier.ActionAck) {
		t.Fatalf("the group's message has no id or no buttons:\n%s", root.Blocks)
	}
	click := func(action, channel, at string) {
		t.Helper()
		env, err := slack.Click(action, gid, "U0ALICE", "alice", channel, at)
		if err != nil {
			t.Fatal(err)
		}
		if !slack.Acked(env, 5*time.Second) {
			t.Fatalf("envelope %s not acknowledged", env)
		}
	}
	updated := func(what string) func() bool {
		return func() bool {
			for _, c := range slack.Calls() {
				if c.Method == "chat.update" && c.TS == ts && strings.Contains(c.Blocks, what) {
					return true
				}
			}
			return false
		}
	}
	click(notifier.ActionAck, "C0ALERTS", "1700000000.999999") // not the group's message
	waitFor(t, "the stray click refused", 10*time.Second, func() bool {
		return strings.Contains(p.stderr.String(), "the click did not come from the incident's message")
	})
	click(notifier.ActionAck, "C0ALERTS", ts)
	waitFor(t, "the group's message acknowledged", 15*time.Second, updated("Acknowledged by"))
	st, err := store.Open(context.Background(), store.Options{Dir: state, Beside: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, n := range []string{"a", "b", "c"} {
		var rec *store.Record
		st.Update(context.Background(), func(tx *store.Tx) error { rec, err = tx.Incident(context.Background(), n); return err })
		if rec == nil || rec.Decision.Acked == nil || rec.Decision.Group != gid {
			t.Errorf("member %s after the group's acknowledgement: %+v", n, rec)
		}
	}
	click(notifier.ActionSilence, "C0ALERTS", ts)
	waitFor(t, "the group's message saying the silence", 15*time.Second, updated("3 checks silenced until"))
	sls, err := st.Silences(context.Background(), time.Now())
	if err != nil || len(sls) != 3 {
		t.Fatalf("%d silences (%v) after Silence 1h on a group of 3", len(sls), err)
	}
	click(notifier.ActionRun, "C0ALERTS", ts)
	waitFor(t, "the answer to Run again", 15*time.Second, func() bool {
		for _, r := range slack.Responses() {
			if strings.Contains(r, "of the group's 3 failing checks again") {
				return true
			}
		}
		return false
	})
}

// TestGroupAcrossFleet: three members on one PostgreSQL see the same edge
// change refuse five checks: one group message, decided once in the shared
// store, and one recovery in its thread.
func TestGroupAcrossFleet(t *testing.T) {
	t.Parallel()
	r := newFleetOf(t, "", 5)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		db, err := sql.Open("pgx", r.dsn)
		if err != nil {
			return
		}
		defer db.Close()
		for _, q := range []string{"SELECT id || ' ' || check_name || ' ' || state || ' key=' || group_key || ' in=' || COALESCE((decision::json)->>'group', '') FROM incidents ORDER BY opened",
			"SELECT group_id || ' ' || check_name || ' open=' || open || ' key=' || member_key FROM group_members"} {
			rows, err := db.Query(q)
			if err != nil {
				t.Log(err)
				continue
			}
			for rows.Next() {
				var line string
				rows.Scan(&line)
				t.Log(line)
			}
			rows.Close()
		}
	})
	var addrs []string
	for _, m := range fleetRegions {
		addrs = append(addrs, m.addr)
	}
	r.deny(t, addrs...)
	// The group's message is a post of its own, or the first member's
	// message it took: one message (ts) either way.
	groupRoots := func() (group, other int) {
		roots, _ := r.slack.Posts()
		groups := map[string]bool{}
		for _, c := range r.slack.Calls() {
			switch {
			case !strings.Contains(c.Text, "checks fail together"):
			case c.Method == "chat.update":
				groups[c.TS] = true
			case c.ThreadTS == "":
				groups[c.Answered] = true
			}
		}
		for _, c := range roots {
			if strings.HasPrefix(c.Text, "FAILING") && !strings.Contains(c.Text, "checks fail together") {
				other++
			}
		}
		return len(groups), other
	}
	waitFor(t, "the group's message with the five checks", 60*time.Second, func() bool {
		for _, c := range r.slack.Calls() {
			if strings.Contains(c.Text, "5 checks fail together") {
				return true
			}
		}
		return false
	})
	r.deny(t)
	waitFor(t, "the group's recovery", 60*time.Second, func() bool {
		_, replies := r.slack.Posts()
		for _, c := range replies {
			if strings.Contains(c.Text, "RECOVERED  all 5 checks") {
				return true
			}
		}
		return false
	})
	time.Sleep(3 * time.Second) // nothing else may follow
	group, other := groupRoots()
	t.Logf("Slack calls:\n%s", callList(r.slack))
	if group != 1 {
		t.Errorf("%d group messages, want one", group)
	}
	// The incidents posted before the group formed point at it, and none
	// of them recovers on its own.
	pointers := map[string]bool{}
	for _, c := range r.slack.Calls() {
		if c.Method == "chat.update" && strings.HasPrefix(c.Text, "IN GROUP") {
			pointers[c.TS] = true
		}
		if c.ThreadTS != "" && strings.HasPrefix(c.Text, "RECOVERED  chat") {
			t.Errorf("a member recovered on its own: %s", c.Text)
		}
	}
	if other > 0 && len(pointers) < other-1 {
		t.Errorf("%d incidents posted before the group formed, %d of them point at it (all but the one the group took)", other, len(pointers))
	}
}

// TestGroupNotifiers: a real Alertmanager gets one alert per member, each
// with the group's id as its group label (Alertmanager's own group_by:
// [group] folds them), and they resolve together with the group;
// PagerDuty gets one incident for the group (its dedup_key the group's id,
// its members in custom_details), and an incident paged before its group
// formed is resolved into it; the webhook gets the group's events.
func TestGroupNotifiers(t *testing.T) {
	t.Parallel()
	am := testbed.StartAlertmanagerT(t)
	pd := &recorder{}
	pdSrv := httptest.NewServer(pd)
	t.Cleanup(pdSrv.Close)
	hook := &recorder{}
	hookSrv := httptest.NewServer(hook)
	t.Cleanup(hookSrv.Close)
	origin := startOrigin(t, testbed.Behavior{}, nil)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	listen, _ := testbed.FreeAddr()
	var checks strings.Builder
	checks.WriteString("checks:\n")
	for _, n := range []string{"a", "b", "c", "d"} {
		fmt.Fprintf(&checks, "  - {name: %s, url: \"ws://%s/ws?%s\", schedule: \"@every 1s\", timeout: 2s}\n", n, origin.Addr(), n)
	}
	cfg := writeConfig(t, fmt.Sprintf("vantage: us\nlisten: %s\nstate_dir: %s\nslack: {token: \"${SLACK_BOT_TOKEN}\", channel: \"#c\", api_url: %q}\n"+
		"notify:\n  - name: am\n    alertmanager: {url: %q}\n  - name: pager\n    pagerduty: {routing_key: \"${PD_KEY}\", api_url: %q}\n"+
		"  - name: hook\n    webhook: {url: %q, secret: \"${HOOK_SECRET}\"}\n",
		listen, filepath.Join(t.TempDir(), "state"), slack.APIURL(), am.URL, pdSrv.URL+"/v2/enqueue", hookSrv.URL+"/wscanary"), checks.String())
	p := startRun(t, cfg, append(daemonEnv, "PD_KEY="+canaryRoutingKey, "HOOK_SECRET="+canaryWebhookSecret)...)
	t.Cleanup(func() {
		if t.Failed() {
			as, _ := am.Alerts()
			bodies, _, _ := pd.taken()
			t.Logf("alerts: %+v\npagerduty: %s\nlogs:\n%s", as, bodies, lastLines(p.stderr.String(), 40))
		}
		p.stop(t)
	})
	waitFor(t, "the daemon", 15*time.Second, func() bool { return healthy(listen) })
	origin.Set(testbed.Behavior{Status: 403, Body: "forbidden"})
	var group string
	waitFor(t, "four alerts of one group", 60*time.Second, func() bool {
		as, err := am.Alerts()
		if err != nil || len(as) != 4 {
			return false
		}
		group = as[0].Labels["group"]
		for _, a := range as {
			if a.Labels["group"] == "" || a.Labels["group"] != group {
				return false
			}
		}
		return strings.HasPrefix(group, "group-")
	})
	origin.Set(testbed.Behavior{})
	waitFor(t, "every alert of the group resolved", 60*time.Second, func() bool {
		as, err := am.Alerts()
		return err == nil && len(as) == 0
	})
	// PagerDuty: the group's incident, triggered and resolved; every
	// member's own page (those sent before the group formed) resolved.
	type pdEvent struct {
		Action  string `json:"event_action"`
		Dedup   string `json:"dedup_key"`
		Payload struct {
			Component string         `json:"component"`
			Details   map[string]any `json:"custom_details"`
		} `json:"payload"`
	}
	waitFor(t, "the group's page resolved", 30*time.Second, func() bool {
		bodies, _, _ := pd.taken()
		for _, b := range bodies {
			var ev pdEvent
			if json.Unmarshal(b, &ev) == nil && ev.Dedup == group && ev.Action == "resolve" {
				return true
			}
		}
		return false
	})
	bodies, _, _ := pd.taken()
	last := map[string]string{}
	groupTriggered := false
	for _, b := range bodies {
		var ev pdEvent
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		last[ev.Dedup] = ev.Action
		if ev.Dedup == group && ev.Action == "trigger" {
			groupTriggered = ev.Payload.Component == "group" && ev.Payload.Details["checks"] == float64(4)
		}
	}
	hooked, _, _ := hook.taken()
	t.Logf("PagerDuty pages and their last action: %v; %d webhook events", last, len(hooked))
	if !groupTriggered {
		t.Errorf("no trigger of the group's page with its 4 checks: %s", bodies)
	}
	for key, action := range last {
		if action != "resolve" {
			t.Errorf("the page %s is left %s", key, action)
		}
	}
	if len(last) > 3 {
		t.Errorf("%d pages for one group of 4 (the group's and at most the 2 before it formed)", len(last))
	}
	// The webhook: the group's messages carry its object.
	hooks, _, _ := hook.taken()
	groupEvents := 0
	for _, b := range hooks {
		if strings.Contains(string(b), `"group":{"key"`) {
			groupEvents++
		}
	}
	if groupEvents == 0 {
		t.Errorf("no webhook event with the group object in %d events", len(hooks))
	}
}

// TestGroupsTwoCausesReal: 20 checks fail at once for two causes, with
// real servers: a WAF rule of a real nginx edge (a Cloudflare-like
// challenge) for 12, and an origin that starts requiring a token for 8
// whose token has expired. Two group messages, each with the right
// members and its own hints said once.
func TestGroupsTwoCausesReal(t *testing.T) {
	t.Parallel()
	wafOrigin := startOrigin(t, testbed.Behavior{}, nil)
	edge, ec := startEdge(t, wafOrigin.Addr(), testbed.EdgePass)
	_, err := testbed.HeadersMoreModule()
	requireTool(t, err, "libnginx-mod-http-headers-more-filter")
	tokOrigin := startOrigin(t, testbed.Behavior{}, nil)
	expired := jwtToken(t, time.Now().Add(-time.Hour))
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	listen, _ := testbed.FreeAddr()
	state := filepath.Join(t.TempDir(), "state")
	var checks strings.Builder
	checks.WriteString("checks:\n")
	for i := range 12 {
		fmt.Fprintf(&checks, "  - {name: waf%02d, url: \"ws://%s/ws?c=%d\", direct: {address: %q}, schedule: \"@every 2s\", timeout: 2s}\n",
			i+1, ec.Listen, i, wafOrigin.Addr())
	}
	for i := range 8 {
		fmt.Fprintf(&checks, "  - {name: tok%02d, url: \"ws://%s/ws?c=%d\", schedule: \"@every 2s\", timeout: 2s, token: {value: %s}}\n", i+1, tokOrigin.Addr(), i, expired)
	}
	cfg := writeConfig(t, fmt.Sprintf("vantage: us\nlisten: %s\nstate_dir: %s\nslack: {token: \"${SLACK_BOT_TOKEN}\", channel: \"#c\", api_url: %q}\n",
		listen, state, slack.APIURL()), checks.String())
	p := startRun(t, cfg, daemonEnv...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Slack calls:\n%s\nlogs:\n%s", callList(slack), lastLines(p.stderr.String(), 40))
		}
		p.stop(t)
	})
	waitFor(t, "32 healthy series (the WAF's checks on both routes)", 30*time.Second, func() bool {
		_, s := getStatus(t, listen)
		return strings.Count(s, `"outcome": "upgraded"`) == 32
	})
	setMode(t, edge, ec, testbed.EdgeWAF403CloudflareLike)
	tokOrigin.Set(testbed.Behavior{Token: "the-real-one"})
	idRe := regexp.MustCompile(`group-[0-9a-f]{8}-\d{8}T\d{6}Z-[0-9a-f]{6}`)
	groups := map[int]testbed.SlackCall{}
	waitFor(t, "the two group messages, 12 and 8 checks", 60*time.Second, func() bool {
		for _, c := range slack.Calls() {
			for _, n := range []int{12, 8} {
				if strings.Contains(c.Text, fmt.Sprintf("FAILING  %d checks fail together", n)) {
					groups[n] = c
				}
			}
		}
		return len(groups) == 2
	})
	st, err := store.Open(context.Background(), store.Options{Dir: state, Beside: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for n, prefix := range map[int]string{12: "waf", 8: "tok"} {
		c := groups[n]
		id := idRe.FindString(c.Blocks)
		members, err := st.GroupChecks(context.Background(), id)
		if err != nil || len(members) != n {
			t.Fatalf("group %s of %d: members %v (%v)", id, n, members, err)
		}
		for _, m := range members {
			if !strings.HasPrefix(m, prefix) {
				t.Errorf("group of %d has %s", n, m)
			}
		}
		rec, err := st.IncidentByID(context.Background(), id)
		if err != nil || rec == nil || len(rec.View.Hints) == 0 {
			t.Fatalf("group %s: no hints (%v)", id, err)
		}
		if got := strings.Count(c.Blocks, jsonText(rec.View.Hints[0])); got != 1 {
			t.Errorf("group of %d says its first hint %d times, want once", n, got)
		}
		if (n == 12 && rec.View.Vendor != "cloudflare") || (n == 8 && rec.View.Cause != report.CauseTokenExpired) {
			t.Errorf("group of %d: cause %s vendor %q", n, rec.View.Cause, rec.View.Vendor)
		}
		t.Logf("the group message of %d checks (%s): %s\n%s", n, rec.View.Cause, c.Text, notifier.Text(notifier.Message{Kind: notifier.KindOpen, Incident: &rec.View}))
	}
}

// jsonText is how a text appears inside the blocks' JSON (Slack's escapes).
func jsonText(s string) string {
	b, _ := json.Marshal(strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s))
	return strings.Trim(string(b), `"`)
}
