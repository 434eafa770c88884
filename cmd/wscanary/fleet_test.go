package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/testbed"
)

// fleetRegions are the members of a test fleet and their egress addresses.
var fleetRegions = []struct{ name, addr string }{{"eu", "127.0.0.2"}, {"us", "127.0.0.3"}, {"ap", "127.0.0.4"}}

// fleetRig is three `wscanary run` processes (eu, us, ap, each dialling
// from its own address) sharing one real PostgreSQL database, probing one
// check through a real nginx edge (which can deny one address) and around
// it, posting to one Slack test server that records every call.
type fleetRig struct {
	origin  *testbed.Origin
	nginx   *testbed.Nginx
	edge    testbed.EdgeConfig
	slack   *testbed.FakeSlack
	pg      *testbed.Postgres
	dsn     string
	cfg     map[string]string // member -> main file
	listen  map[string]string
	members map[string]*daemonProc
}

// newFleet starts the fleet; alert is extra YAML for the check's alert
// section ("" for the defaults).
func newFleet(t *testing.T, alert string) *fleetRig {
	t.Helper()
	return newFleetOf(t, alert, 1)
}

// newFleetOf is newFleet with n checks (chat, then chat2, chat3...).
func newFleetOf(t *testing.T, alert string, n int) *fleetRig {
	t.Helper()
	r := &fleetRig{origin: startOrigin(t, testbed.Behavior{}, nil), slack: testbed.NewFakeSlack(canarySlackToken),
		cfg: map[string]string{}, listen: map[string]string{}, members: map[string]*daemonProc{}}
	t.Cleanup(r.slack.Close)
	r.pg = testbed.StartPostgresT(t)
	r.dsn = r.pg.NewDatabaseT(t)
	r.nginx, r.edge = startEdge(t, r.origin.Addr(), testbed.EdgePass)
	dir := t.TempDir()
	checks := filepath.Join(dir, "checks.d")
	os.MkdirAll(checks, 0o755)
	check := "checks:\n"
	for i := range n {
		name := "chat"
		if i > 0 {
			name = fmt.Sprintf("chat%d", i+1)
		}
		check += fmt.Sprintf("  - name: %s\n    url: ws://%s/ws?room=%d\n    direct: {address: %q}\n    schedule: \"@every 1s\"\n    timeout: 2s\n",
			name, r.edge.Listen, i+1, r.origin.Addr())
		if alert != "" {
			check += "    alert: " + alert + "\n"
		}
	}
	os.WriteFile(filepath.Join(checks, "chat.yaml"), []byte(check), 0o600)
	for _, m := range fleetRegions {
		listen, _ := testbed.FreeAddr()
		main := fmt.Sprintf(`vantage: %s
source_address: %s
listen: %s
state_dir: %s
checks_dir: %s
store: %s
slack:
  token: ${SLACK_BOT_TOKEN}
  channel: "#ws-alerts"
  api_url: %s
`, m.name, m.addr, listen, filepath.Join(dir, m.name), checks, r.dsn, r.slack.APIURL())
		path := filepath.Join(dir, m.name+".yaml")
		os.WriteFile(path, []byte(main), 0o600)
		r.cfg[m.name], r.listen[m.name] = path, listen
		r.members[m.name] = startRun(t, path, daemonEnv...)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Slack calls:\n%s", callList(r.slack))
			for name, p := range r.members {
				t.Logf("logs of %s:\n%s", name, lastLines(p.stderr.String(), 40))
			}
		}
	})
	waitFor(t, "six healthy series a check and three members", 30*time.Second, func() bool {
		_, s := getStatus(t, r.listen["eu"])
		return strings.Count(s, `"outcome": "upgraded"`) == 6*n && strings.Count(s, `"started"`) == 3
	})
	return r
}

// deny makes the edge refuse these addresses (403, nginx's own page);
// none lets everyone through.
func (r *fleetRig) deny(t *testing.T, addrs ...string) {
	t.Helper()
	ec := r.edge
	ec.Mode, ec.Deny = testbed.EdgeDeny, addrs
	if len(addrs) == 0 {
		ec.Mode = testbed.EdgePass
	}
	conf, err := ec.Conf()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.nginx.Reload(conf); err != nil {
		t.Fatal(err)
	}
}

// incidentRoots are the incident messages (notices are roots too).
func incidentRoots(s *testbed.FakeSlack) []testbed.SlackCall {
	roots, _ := s.Posts()
	var out []testbed.SlackCall
	for _, c := range roots {
		if strings.HasPrefix(c.Text, "FAILING") {
			out = append(out, c)
		}
	}
	return out
}

// updatesOf are the chat.update calls of an incident's message whose
// text contains want.
func updatesOf(s *testbed.FakeSlack, root testbed.SlackCall, want string) []testbed.SlackCall {
	var out []testbed.SlackCall
	for _, c := range s.Calls() {
		if c.Method == "chat.update" && c.TS == root.Answered && strings.Contains(c.Text, want) {
			out = append(out, c)
		}
	}
	return out
}

// notices are the fleet notices whose first line matches.
func notices(s *testbed.FakeSlack, re string) []testbed.SlackCall {
	var out []testbed.SlackCall
	rx := regexp.MustCompile(re)
	roots, _ := s.Posts()
	for _, c := range roots {
		if head, _, _ := strings.Cut(c.Text, "\n"); rx.MatchString(head) {
			out = append(out, c)
		}
	}
	return out
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestFleetOneIncident: the edge blocks all three regions: exactly one
// incident message, whose final update shows the three regions failing,
// and one recovery.
func TestFleetOneIncident(t *testing.T) {
	t.Parallel()
	r := newFleet(t, "")
	setMode(t, r.nginx, r.edge, testbed.EdgeWAF403CloudflareLike)
	// Posted late (a busy machine), the message may show three regions
	// from the start: no update is owed then.
	waitFor(t, "the message updated to three regions", 30*time.Second, func() bool {
		roots := incidentRoots(r.slack)
		return len(roots) > 0 && (strings.Contains(roots[0].Text, "on 3 of 6") || len(updatesOf(r.slack, roots[0], "on 3 of 6")) > 0)
	})
	time.Sleep(3 * time.Second) // every member decides a few more runs
	passed := time.Now()
	setMode(t, r.nginx, r.edge, testbed.EdgePass)
	root := incidentRoots(r.slack)[0]
	waitFor(t, "the recovery", 30*time.Second, func() bool {
		for _, c := range r.slack.Calls() {
			if c.ThreadTS == root.Answered && strings.Contains(c.Text, "RECOVERED") {
				return true
			}
		}
		return false
	})
	time.Sleep(3 * time.Second) // nothing else may follow
	roots, replies := r.slack.Posts()
	if len(roots) != 1 {
		t.Fatalf("%d messages, want the incident's alone:\n%s", len(roots), callList(r.slack))
	}
	recovered := 0
	for _, c := range replies {
		recovered += strings.Count(c.Text, "RECOVERED")
	}
	if recovered != 1 {
		t.Errorf("%d recoveries, want 1", recovered)
	}
	// The last update before the edge let them through again (the
	// message itself when it was posted with all three).
	last := root
	for _, c := range r.slack.Calls() {
		if c.Method == "chat.update" && c.TS == root.Answered && c.At.Before(passed) {
			last = c
		}
	}
	if !strings.HasPrefix(last.Text, "FAILING  chat: 403 Forbidden on 3 of 6") {
		t.Errorf("the last update while blocked shows %q, want three of six cells", last.Text)
	}
	for _, region := range []string{"eu", "us", "ap"} {
		if !hasMatrixRow(last.Blocks, region) {
			t.Errorf("the matrix lacks %s:\n%s", region, last.Blocks)
		}
	}
	t.Logf("%d Slack calls for one incident seen from three regions: %s", len(r.slack.Calls()), strings.Join(headlines(r.slack, ""), " | "))
}

// TestFleetVantageBlocked: the edge denies ap's address alone: one
// incident, vantage_blocked, naming ap; the matrix shows every region.
func TestFleetVantageBlocked(t *testing.T) {
	t.Parallel()
	r := newFleet(t, "")
	r.deny(t, "127.0.0.4")
	waitFor(t, "the incident's message", 20*time.Second, func() bool { return len(incidentRoots(r.slack)) == 1 })
	time.Sleep(3 * time.Second)
	roots := incidentRoots(r.slack)
	if len(roots) != 1 {
		t.Fatalf("%d incident messages", len(roots))
	}
	root := roots[0]
	if !strings.HasPrefix(root.Text, "FAILING  chat: 403 Forbidden on 1 of 6") || !strings.Contains(root.Blocks, "vantage_blocked") ||
		!regexp.MustCompile(`from ap but 101 from (eu, us|us, eu)`).MatchString(root.Blocks) {
		t.Fatalf("root %q\n%s", root.Text, root.Blocks)
	}
	for _, region := range []string{"eu", "us", "ap"} {
		if !hasMatrixRow(root.Blocks, region) {
			t.Errorf("the matrix lacks %s:\n%s", region, root.Blocks)
		}
	}
}

// hasMatrixRow: the message's vantage x route matrix has a row for the
// region (its name at the start of a line, then a cell), not merely the
// letters somewhere in the blocks.
func hasMatrixRow(blocks, region string) bool {
	return regexp.MustCompile(`(\\n|\n)` + regexp.QuoteMeta(region) + ` +[✗✓•] `).MatchString(blocks)
}

// TestFleetMinVantages: with min_vantages 2, one region failing opens
// nothing; a second one opens one incident.
func TestFleetMinVantages(t *testing.T) {
	t.Parallel()
	r := newFleet(t, "{min_vantages: 2}")
	r.deny(t, "127.0.0.4")
	waitFor(t, "ap's series failing", 15*time.Second, func() bool {
		_, s := getStatus(t, r.listen["us"])
		return strings.Contains(s, `"failing": true`)
	})
	time.Sleep(5 * time.Second)
	if n := len(incidentRoots(r.slack)); n != 0 {
		t.Fatalf("%d incidents with one region of the two needed failing", n)
	}
	r.deny(t, "127.0.0.4", "127.0.0.3")
	waitFor(t, "the incident's message", 20*time.Second, func() bool { return len(incidentRoots(r.slack)) == 1 })
	time.Sleep(3 * time.Second)
	if roots := incidentRoots(r.slack); len(roots) != 1 || !strings.Contains(roots[0].Text, "on 2 of 6") {
		t.Fatalf("incident messages: %s", strings.Join(headlines(r.slack, ""), " | "))
	}
}

// TestFleetKillDuringDelivery: Slack hangs on the incident's message; the
// member delivering it is killed with SIGKILL. Once its lease runs out
// another member posts it: exactly once.
func TestFleetKillDuringDelivery(t *testing.T) {
	t.Parallel()
	r := newFleet(t, "")
	db, err := sql.Open("pgx", r.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r.slack.Hang()
	setMode(t, r.nginx, r.edge, testbed.EdgeWAF403CloudflareLike)
	var holder string
	waitFor(t, "a member delivering the incident's message", 20*time.Second, func() bool {
		if r.slack.Waiting() == 0 {
			return false
		}
		db.QueryRowContext(context.Background(), "SELECT claimed_by FROM outbox WHERE kind = 'open'").Scan(&holder)
		return holder != ""
	})
	p := r.members[holder]
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- nil
	waitFor(t, "the killed member's request to end", 10*time.Second, func() bool { return r.slack.Waiting() == 0 })
	r.slack.Release()
	start := time.Now()
	waitFor(t, "another member to post it", 90*time.Second, func() bool { return len(incidentRoots(r.slack)) == 1 })
	t.Logf("posted by another member %s after the kill (lease 60 s)", time.Since(start).Round(time.Second))
	time.Sleep(3 * time.Second)
	if n := len(incidentRoots(r.slack)); n != 1 {
		t.Fatalf("the incident's message was posted %d times", n)
	}
}

// TestFleetMemberSilent: one member stops: exactly one "stopped reporting"
// message; it comes back: exactly one saying so.
func TestFleetMemberSilent(t *testing.T) {
	t.Parallel()
	r := newFleet(t, "")
	r.members["ap"].stop(t)
	stopped := time.Now()
	waitFor(t, "the silence noticed", 40*time.Second, func() bool {
		return len(notices(r.slack, `^WARNING  wscanary in ap stopped reporting at`)) > 0
	})
	t.Logf("noticed %s after the stop", time.Since(stopped).Round(time.Second))
	_, s := getStatus(t, r.listen["eu"])
	if !regexp.MustCompile(`"name": "ap",[^}]*"silent": true`).MatchString(s) {
		t.Errorf("/status does not show ap silent:\n%s", s)
	}
	r.members["ap"] = startRun(t, r.cfg["ap"], daemonEnv...)
	waitFor(t, "the return noticed", 20*time.Second, func() bool {
		return len(notices(r.slack, `^OK  wscanary in ap reports again`)) > 0
	})
	time.Sleep(6 * time.Second)
	gone, back := notices(r.slack, `stopped reporting`), notices(r.slack, `reports again`)
	if len(gone) != 1 || len(back) != 1 {
		t.Fatalf("%d 'stopped reporting' and %d 'reports again' messages, want one each:\n%s", len(gone), len(back), callList(r.slack))
	}
	if n := len(incidentRoots(r.slack)); n != 0 {
		t.Fatalf("%d incidents from a member that stopped", n)
	}
}

// TestFleetStoreOutage: PostgreSQL stops for 150 s during an incident.
// Every member keeps probing, says /healthz degraded, and after two
// minutes says once that it alerts alone; when PostgreSQL is back nothing
// is posted twice and the incident goes on in the same message.
func TestFleetStoreOutage(t *testing.T) {
	t.Parallel()
	r := newFleet(t, "")
	setMode(t, r.nginx, r.edge, testbed.EdgeWAF403CloudflareLike)
	// The incident's message is rendered as the incident is when it is
	// posted: on a busy machine the three regions may all be in it
	// already, and no update follows.
	waitFor(t, "the incident at three regions", 30*time.Second, func() bool {
		roots := incidentRoots(r.slack)
		return len(roots) > 0 && (strings.Contains(roots[0].Text, "on 3 of 6") || len(updatesOf(r.slack, roots[0], "on 3 of 6")) > 0)
	})
	time.Sleep(2 * time.Second)
	before := len(r.slack.Calls())
	r.pg.Stop()
	down := time.Now()
	waitFor(t, "every member degraded", 20*time.Second, func() bool {
		for _, m := range fleetRegions {
			if _, body := get(r.listen[m.name], "/healthz"); !strings.HasPrefix(body, "degraded") {
				return false
			}
		}
		return true
	})
	attempts := func(name string) string {
		_, m := get(r.listen[name], "/metrics")
		return grepLines(m, "wscanary_attempts_total", 10)
	}
	probing := attempts("us")
	waitFor(t, "every member saying it alerts alone", 150*time.Second, func() bool {
		return len(notices(r.slack, `cannot reach the fleet store`)) == 3
	})
	t.Logf("members alone after %s", time.Since(down).Round(time.Second))
	if attempts("us") == probing {
		t.Error("us stopped probing while the store was down")
	}
	time.Sleep(time.Until(down.Add(150 * time.Second)))
	if err := r.pg.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every member back with the store", 30*time.Second, func() bool {
		for _, m := range fleetRegions {
			if _, body := get(r.listen[m.name], "/healthz"); body != "ok\n" {
				return false
			}
		}
		return true
	})
	time.Sleep(10 * time.Second)
	if n := len(incidentRoots(r.slack)); n != 1 {
		t.Fatalf("%d incident messages after the outage, want the one:\n%s", n, callList(r.slack))
	}
	if n := len(notices(r.slack, `cannot reach the fleet store`)); n != 3 {
		t.Fatalf("%d 'cannot reach' messages, want one per member", n)
	}
	if n := len(notices(r.slack, `stopped reporting`)); n != 0 {
		t.Fatalf("%d members named silent after an outage of the store itself", n)
	}
	var during []string
	for _, c := range r.slack.Calls()[before:] {
		head, _, _ := strings.Cut(c.Text, "\n")
		during = append(during, c.Method+" "+head)
	}
	t.Logf("Slack calls from the outage on: %s", strings.Join(during, " | "))
}
