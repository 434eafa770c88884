package monitor

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/engine"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/monitor/testbed"
	"github.com/wscanary/wscanary/notifier"
)

// simulated is a daemon driven by a fake clock: runs are fed in by hand and
// the outbox is delivered when the test says so.
type simulated struct {
	d     *Daemon
	cfg   *config.Config
	clock *testbed.Clock
	st    *store.Store
}

func newSimulated(t *testing.T, checks string, slackAPI string) *simulated {
	t.Helper()
	return newSimulatedWith(t, "vantage: us\n", checks, slackAPI)
}

// newSimulatedWith is newSimulated with a main file of its own.
func newSimulatedWith(t *testing.T, main, checks string, slackAPI string) *simulated {
	t.Helper()
	clock := testbed.NewClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	cfg, err := config.LoadBytes("m.yaml", []byte(main), map[string][]byte{"c.yaml": []byte(checks)},
		config.Options{Lookup: func(string) (string, bool) { return "", false }, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	n, _ := notifier.NewSlack(notifier.SlackOptions{Token: "xoxb-test", Channel: "#c", APIURL: slackAPI})
	d, err := NewDaemon(DaemonOptions{Config: cfg, Store: st, Notifier: n, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.cancel)
	return &simulated{d: d, cfg: cfg, clock: clock, st: st}
}

// run feeds one run of check i whose only attempt ended with status.
func (s *simulated) run(i, status int) {
	c := &s.cfg.Checks[i]
	a := report.Attempt{Vantage: "us", Route: report.RouteCDN, Variant: report.VariantConfigured, Status: status, OK: status == 101}
	a.Outcome = report.OutcomeOf(a)
	cause := report.CauseAuthRejected
	if status == 101 {
		cause = report.CauseOK
	}
	s.d.engine.Record([]engine.Observation{engine.NewObservation(c, "", report.Report{Check: c.Name, Diagnosis: report.Diagnosis{Cause: cause},
		Attempts: []report.Attempt{a}}, s.clock.Now(), false)})
}

// TestSlackOutageSimulatedMinutes: for five minutes of simulated time
// Slack answers 500 and then 429 (Retry-After: 30) while two checks fail,
// change, flap and recover. Afterwards each check has exactly one message
// (the flapping one reopened its incident), every reply is in its thread,
// in the order it happened, and both messages end resolved.
func TestSlackOutageSimulatedMinutes(t *testing.T) {
	t.Parallel()
	fake := testbed.NewFakeSlack("xoxb-test")
	defer fake.Close()
	var clock *testbed.Clock
	outageEnd := time.Date(2026, 11, 25, 12, 5, 0, 0, time.UTC)
	var failures int
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := clock.Now()
		if now.Before(outageEnd) {
			failures++
			if now.Before(outageEnd.Add(-3 * time.Minute)) {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		fake.Config.Handler.ServeHTTP(w, r)
	}))
	defer front.Close()
	sim := newSimulated(t, "checks:\n  - {name: a, url: \"ws://127.0.0.1:1/a\", schedule: \"@every 1s\"}\n  - {name: b, url: \"ws://127.0.0.1:1/b\", schedule: \"@every 1s\"}\n", front.URL+"/api/")
	clock = sim.clock
	timeline := map[int][][2]int{ // second -> (check, status)
		1: {{0, 101}, {1, 101}}, 10: {{0, 403}}, 30: {{1, 401}}, 60: {{0, 101}}, 90: {{1, 403}},
		120: {{0, 403}}, 200: {{0, 101}}, 250: {{1, 101}},
	}
	for sec := 1; sec <= 900; sec++ {
		clock.Add(time.Second)
		for _, ev := range timeline[sec] {
			sim.run(ev[0], ev[1])
		}
		sim.d.deliverDue()
	}
	if failures < 5 {
		t.Fatalf("only %d requests met the outage", failures)
	}
	roots := map[string]string{} // ts -> check
	var replies []string
	resolved := map[string]bool{}
	checkRE := regexp.MustCompile(`^[A-Z ]+  ([ab]):`)
	for _, c := range fake.Calls() {
		m := checkRE.FindStringSubmatch(c.Text)
		if m == nil {
			t.Fatalf("a message without its check: %q", c.Text)
		}
		check := m[1]
		switch {
		case c.Method == "chat.update":
			if roots[c.TS] != check {
				t.Errorf("%s's message updated with %q", roots[c.TS], c.Text)
			}
			resolved[check] = strings.HasPrefix(c.Text, "RESOLVED")
		case c.ThreadTS == "":
			if _, dup := roots[c.Answered]; dup || len(roots) > 2 {
				t.Errorf("a second message: %q", c.Text)
			}
			roots[c.Answered] = check
			// Delivered after the incident ended, it shows it resolved.
			resolved[check] = strings.HasPrefix(c.Text, "RESOLVED")
		default:
			if roots[c.ThreadTS] != check {
				t.Errorf("a reply of %s in the thread of %q", check, roots[c.ThreadTS])
			}
			replies = append(replies, strings.Fields(c.Text)[0]+" "+check)
		}
	}
	if len(roots) != 2 || !resolved["a"] || !resolved["b"] {
		t.Fatalf("%d messages, resolved %v\ncalls: %+v", len(roots), resolved, fake.Calls())
	}
	last := map[string]string{}
	for _, r := range replies {
		f := strings.Fields(r)
		last[f[1]] = f[0]
	}
	if last["a"] != "RECOVERED" || last["b"] != "RECOVERED" {
		t.Fatalf("replies %v", replies)
	}
	if n, _ := sim.st.Pending(context.Background()); n != 0 {
		t.Fatalf("%d left in the outbox", n)
	}
	t.Logf("%d Slack calls; replies: %s", len(fake.Calls()), strings.Join(replies, ", "))
}

// TestFlappingCheck: a check that fails every other run for five minutes
// of simulated time keeps one message; its updates and replies stay under
// Slack's per-channel rate (about one a second, and well under it on
// average), and every recovery and relapse is told, merged when they come
// faster than replies are spaced.
func TestFlappingCheck(t *testing.T) {
	t.Parallel()
	fake := testbed.NewFakeSlack("xoxb-test")
	defer fake.Close()
	sim := newSimulated(t, "checks:\n  - {name: flappy, url: \"ws://127.0.0.1:1/f\", schedule: \"@every 1s\"}\n", fake.APIURL())
	perSecond := map[int64]int{}
	flips := 0
	start := sim.clock.Now()
	for sec := 1; sec <= 300; sec++ {
		sim.clock.Add(time.Second)
		status := 101
		if sec%2 == 0 {
			status = 403
		}
		sim.run(0, status)
		if sec > 1 {
			flips++
		}
		before := len(fake.Calls())
		sim.d.deliverDue()
		perSecond[sim.clock.Now().Unix()] += len(fake.Calls()) - before
	}
	// Let the last merged reply out.
	for range 30 {
		sim.clock.Add(time.Second)
		sim.run(0, 101)
		sim.d.deliverDue()
	}
	calls := fake.Calls()
	roots, replies := fake.Posts()
	busiest := 0
	for _, n := range perSecond {
		busiest = max(busiest, n)
	}
	lines := 0
	for _, r := range replies {
		lines += strings.Count(r.Text, "RECOVERED") + strings.Count(r.Text, "FAILING AGAIN")
	}
	elapsed := sim.clock.Now().Sub(start).Seconds()
	t.Logf("%d flips in 300 s: %d Slack calls (%.2f/s, busiest second %d), %d messages, %d replies telling %d recoveries and relapses",
		flips, len(calls), float64(len(calls))/elapsed, busiest, len(roots), len(replies), lines)
	if len(roots) != 1 {
		t.Fatalf("%d messages for one flapping check", len(roots))
	}
	if float64(len(calls))/elapsed > 0.5 || busiest > 3 {
		t.Fatalf("%d calls in %.0f s, busiest second %d: over Slack's rate", len(calls), elapsed, busiest)
	}
	if lines != flips-1 && lines != flips { // the first flip opened the incident
		t.Fatalf("%d recoveries and relapses told of %d flips", lines, flips)
	}
}
