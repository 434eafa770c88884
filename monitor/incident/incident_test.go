package incident_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/incident"
	"github.com/wscanary/wscanary/monitor/report"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// run is one tick of a sequence: the outcome of every series ("us/cdn=403",
// "eu/direct=rao" for rejected_after_open, "ap/cdn=0" for no answer,
// "us/cdn=101"), the run's cause, and whether a silence holds.
type run struct {
	cells string
	cause report.Cause
	quiet bool
	// want is the events of this tick, space separated ("" for none).
	want string
}

func parseCells(t *testing.T, spec string) map[string]report.Attempt {
	t.Helper()
	out := map[string]report.Attempt{}
	for _, f := range strings.Fields(spec) {
		key, val, _ := strings.Cut(f, "=")
		v, r, _ := strings.Cut(key, "/")
		a := report.Attempt{Vantage: v, Route: report.Route(r)}
		switch val {
		case "101":
			a.Status, a.OK = 101, true
		case "rao":
			a.Status, a.CloseCode, a.Error = 101, 4003, "expect: closed"
		case "0":
			a.Error = "connect: refused"
		default:
			fmt.Sscan(val, &a.Status)
		}
		out[key] = a
	}
	return out
}

// play feeds a sequence to Decide the way the daemon does, one tick a
// minute, and checks the events of every tick.
func play(t *testing.T, rule config.Alert, seq []run) *incident.Incident {
	t.Helper()
	series := map[string]*incident.Series{}
	var cur *incident.Incident
	n := 0
	for i, r := range seq {
		now := t0.Add(time.Duration(i) * time.Minute)
		for key, a := range parseCells(t, r.cells) {
			s := incident.Next(series[key], rule, a.Vantage, a, r.cause, now)
			series[key] = &s
		}
		var all []incident.Series
		for _, s := range series {
			all = append(all, *s)
		}
		d := incident.Decide(incident.Input{Check: "chat", Rule: rule, Series: all, Current: cur,
			Diagnosis: report.Diagnosis{Cause: r.cause}, Now: now, Quiet: r.quiet, ReopenWithin: 5 * time.Minute,
			NewID: func() string { n++; return fmt.Sprintf("inc-%d", n) }})
		var got []string
		for _, e := range d.Events {
			got = append(got, string(e.Kind))
		}
		if strings.Join(got, " ") != r.want {
			t.Fatalf("tick %d (%s): events %q, want %q", i, r.cells, strings.Join(got, " "), r.want)
		}
		if d.Incident != nil {
			cur = d.Incident
		}
	}
	return cur
}

func rule(after, minVantages int, on ...string) config.Alert {
	a := config.Alert{After: after, MinVantages: minVantages, On: config.DefaultAlertOn()}
	if len(on) > 0 {
		a.On = nil
		for _, s := range on {
			m, _ := config.ParseAlertOn(s)
			a.On = append(a.On, m)
		}
	}
	return a
}

// xOfY is the rule "after: X of Y" with recover_after.
func xOfY(x, y, recoverAfter int) config.Alert {
	r := rule(x, 1)
	r.Within, r.RecoverAfter = y, recoverAfter
	return r
}

// TestXOfY: a check failing every other run opens at its third failure in
// five, holds while it upgrades for fewer than recover_after runs (the
// message changes; the thread hears nothing), and closes after
// recover_after good runs with the flips counted in the recovery.
func TestXOfY(t *testing.T) {
	t.Parallel()
	inc := play(t, xOfY(3, 5, 2), []run{
		{cells: "us/cdn=403", cause: report.CauseCDNBlocked},
		{cells: "us/cdn=101", cause: report.CauseOK},
		{cells: "us/cdn=403", cause: report.CauseCDNBlocked},
		{cells: "us/cdn=101", cause: report.CauseOK},
		{cells: "us/cdn=403", cause: report.CauseCDNBlocked, want: "opened"},
		{cells: "us/cdn=101", cause: report.CauseOK, want: "changed"},
		{cells: "us/cdn=403", cause: report.CauseCDNBlocked, want: "changed"},
		{cells: "us/cdn=101", cause: report.CauseOK, want: "changed"},
		{cells: "us/cdn=101", cause: report.CauseOK, want: "resolved"},
	})
	if inc.State != incident.Closed || inc.Flips != 2 {
		t.Fatalf("state %s, flips %d; want closed after 2 flips", inc.State, inc.Flips)
	}
	// The same runs under the consecutive rule (after: 3) open nothing.
	play(t, rule(3, 1), []run{
		{cells: "us/cdn=403", cause: report.CauseCDNBlocked},
		{cells: "us/cdn=101", cause: report.CauseOK},
		{cells: "us/cdn=403", cause: report.CauseCDNBlocked},
		{cells: "us/cdn=101", cause: report.CauseOK},
		{cells: "us/cdn=403", cause: report.CauseCDNBlocked},
	})
}

func TestSequences(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rule config.Alert
		seq  []run
	}{
		{"one incident for every route and vantage, updated as it spreads", rule(1, 1), []run{
			{cells: "us/cdn=101 us/direct=101 eu/cdn=101 eu/direct=101"},
			{cells: "us/cdn=403 us/direct=101 eu/cdn=101 eu/direct=101", cause: report.CauseCDNBlocked, want: "opened"},
			{cells: "us/cdn=403 us/direct=101 eu/cdn=403 eu/direct=101", cause: report.CauseCDNBlocked, want: "changed widened"},
			{cells: "us/cdn=403 us/direct=101 eu/cdn=403 eu/direct=101", cause: report.CauseCDNBlocked},
			{cells: "us/cdn=101 us/direct=101 eu/cdn=101 eu/direct=101", cause: report.CauseOK, want: "resolved"},
		}},
		{"after: two runs before it opens", rule(2, 1), []run{
			{cells: "us/cdn=403", cause: report.CauseAuthRejected},
			{cells: "us/cdn=403", cause: report.CauseAuthRejected, want: "opened"},
		}},
		{"a blip shorter than after opens nothing", rule(2, 1), []run{
			{cells: "us/cdn=403", cause: report.CauseAuthRejected},
			{cells: "us/cdn=101", cause: report.CauseOK},
			{cells: "us/cdn=401", cause: report.CauseAuthRejected},
			{cells: "us/cdn=101", cause: report.CauseOK},
		}},
		{"401 then 403 counts as two failing runs", rule(2, 1), []run{
			{cells: "us/cdn=401", cause: report.CauseAuthMissing},
			{cells: "us/cdn=403", cause: report.CauseAuthRejected, want: "opened"},
		}},
		{"min_vantages counts vantages, not routes", rule(1, 2), []run{
			{cells: "us/cdn=403 us/direct=403 eu/cdn=101", cause: report.CauseAuthRejected},
			{cells: "us/cdn=403 us/direct=403 eu/cdn=403", cause: report.CauseAuthRejected, want: "opened"},
		}},
		{"a rejection after the upgrade opens and is never a recovery", rule(1, 1), []run{
			{cells: "us/cdn=101"},
			{cells: "us/cdn=rao", cause: report.CausePostHandshakeRejected, want: "opened"},
			{cells: "us/cdn=rao", cause: report.CausePostHandshakeRejected},
			{cells: "us/cdn=101", cause: report.CauseOK, want: "resolved"},
		}},
		{"no answer opens nothing by default", rule(1, 1), []run{
			{cells: "us/cdn=0", cause: report.CauseConnectError},
			{cells: "us/cdn=0", cause: report.CauseConnectError},
		}},
		{"no answer opens when asked for", rule(1, 1, "no_answer"), []run{
			{cells: "us/cdn=0", cause: report.CauseConnectError, want: "opened"},
		}},
		{"a status that is neither failing nor upgraded keeps it open", rule(1, 1), []run{
			{cells: "us/cdn=403", cause: report.CauseAuthRejected, want: "opened"},
			{cells: "us/cdn=502", cause: report.CauseServerError, want: "changed cause_changed"},
			{cells: "us/cdn=101", cause: report.CauseOK, want: "resolved"},
		}},
		{"the cause changes: 403 to 426", rule(1, 1, "403", "426"), []run{
			{cells: "us/cdn=403 us/direct=101", cause: report.CauseCDNBlocked, want: "opened"},
			{cells: "us/cdn=426 us/direct=101", cause: report.CauseProxyStrippedUpgrade, want: "changed cause_changed"},
		}},
		{"a silence opens nothing; when it ends while failing, the incident opens", rule(1, 1), []run{
			{cells: "us/cdn=403", cause: report.CauseAuthRejected, quiet: true},
			{cells: "us/cdn=403", cause: report.CauseAuthRejected, quiet: true},
			{cells: "us/cdn=403", cause: report.CauseAuthRejected, want: "opened"},
		}},
		{"another cause soon after is another incident", rule(1, 1), []run{
			{cells: "us/cdn=403", cause: report.CauseCDNBlocked, want: "opened"},
			{cells: "us/cdn=101", cause: report.CauseOK, want: "resolved"},
			{cells: "us/cdn=403", cause: report.CauseOriginRejected, want: "opened"},
		}},
		{"recovering place by place changes the message, not the thread", rule(1, 1), []run{
			{cells: "eu/cdn=403 us/cdn=403 ap/cdn=403", cause: report.CauseCDNBlocked, want: "opened"},
			{cells: "eu/cdn=101 us/cdn=403 ap/cdn=403", cause: report.CauseVantageBlocked, want: "changed"},
			{cells: "eu/cdn=101 us/cdn=101 ap/cdn=403", cause: report.CauseVantageBlocked, want: "changed"},
			{cells: "eu/cdn=101 us/cdn=101 ap/cdn=101", cause: report.CauseOK, want: "resolved"},
		}},
		{"a new cause while it spreads is told", rule(1, 1), []run{
			{cells: "eu/cdn=101 us/cdn=101 ap/cdn=403", cause: report.CauseVantageBlocked, want: "opened"},
			{cells: "eu/cdn=403 us/cdn=403 ap/cdn=403", cause: report.CauseCDNBlocked, want: "changed cause_changed widened"},
		}},
		{"3 of 5: runs failing apart open nothing while fewer than 3 of the last 5 fail", xOfY(3, 5, 1), []run{
			{cells: "us/cdn=403", cause: report.CauseCDNBlocked},
			{cells: "us/cdn=101", cause: report.CauseOK},
			{cells: "us/cdn=101", cause: report.CauseOK},
			{cells: "us/cdn=101", cause: report.CauseOK},
			{cells: "us/cdn=403", cause: report.CauseCDNBlocked},
			{cells: "us/cdn=101", cause: report.CauseOK},
			{cells: "us/cdn=403", cause: report.CauseCDNBlocked}, // 2 of the last 5
		}},
		{"flapping reopens the same incident", rule(1, 1), []run{
			{cells: "us/cdn=403", cause: report.CauseAuthRejected, want: "opened"},
			{cells: "us/cdn=101", cause: report.CauseOK, want: "resolved"},
			{cells: "us/cdn=403", cause: report.CauseAuthRejected, want: "reopened"},
			{cells: "us/cdn=101", cause: report.CauseOK, want: "resolved"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			play(t, tt.rule, tt.seq)
		})
	}
}

func TestReminders(t *testing.T) {
	t.Parallel()
	r := rule(1, 1)
	r.Remind = 2 * time.Minute
	seq := []run{{cells: "us/cdn=403", cause: report.CauseAuthRejected, want: "opened"}}
	for i := 1; i <= 6; i++ {
		want := ""
		if i%2 == 0 {
			want = "reminder"
		}
		seq = append(seq, run{cells: "us/cdn=403", cause: report.CauseAuthRejected, want: want})
	}
	// A silence pauses reminders, but not the incident.
	seq = append(seq, run{cells: "us/cdn=403", cause: report.CauseAuthRejected, quiet: true},
		run{cells: "us/cdn=403", cause: report.CauseAuthRejected, quiet: true},
		run{cells: "us/cdn=101", cause: report.CauseOK, quiet: true, want: "resolved"})
	play(t, r, seq)
}

func TestFirstRunAndStale(t *testing.T) {
	t.Parallel()
	inc := play(t, rule(1, 1), []run{{cells: "us/cdn=403", cause: report.CauseAuthRejected, want: "opened"}})
	if !inc.FirstRun {
		t.Fatal("an incident open since the first run does not say so")
	}
	inc = play(t, rule(1, 1), []run{{cells: "us/cdn=101"}, {cells: "us/cdn=403", cause: report.CauseAuthRejected, want: "opened"}})
	if inc.FirstRun {
		t.Fatal("FirstRun after a healthy run")
	}
	// A stale series (its member went silent) neither opens nor closes.
	rl := rule(1, 1)
	failingStale := incident.Series{Vantage: "ap", Route: report.RouteCDN, Outcome: report.OutcomeRefused, Status: 403, FailStreak: 5, Stale: true}
	upgradedStale := incident.Series{Vantage: "ap", Route: report.RouteCDN, Outcome: report.OutcomeUpgraded, Status: 101, Stale: true}
	freshUp := incident.Series{Vantage: "us", Route: report.RouteCDN, Outcome: report.OutcomeUpgraded, Status: 101}
	if d := incident.Decide(incident.Input{Rule: rl, Series: []incident.Series{failingStale}, Now: t0, NewID: func() string { return "x" }}); d.Incident != nil {
		t.Fatal("a stale series opened an incident")
	}
	for _, tt := range []struct {
		name   string
		series []incident.Series
		closes bool
	}{
		{"the only failing vantage went silent: nobody knows it recovered", []incident.Series{failingStale, freshUp}, false},
		{"no fresh series at all", []incident.Series{failingStale}, false},
		{"a silent vantage that was upgraded does not hold it", []incident.Series{upgradedStale, freshUp}, true},
		{"the silent vantage returned upgraded", []incident.Series{{Vantage: "ap", Route: report.RouteCDN, Outcome: report.OutcomeUpgraded, Status: 101}, freshUp}, true},
	} {
		open := &incident.Incident{ID: "x", State: incident.Open, Opened: t0}
		d := incident.Decide(incident.Input{Rule: rl, Series: tt.series, Current: open, Now: t0.Add(time.Minute)})
		if closed := d.Incident != nil && d.Incident.State == incident.Closed; closed != tt.closes {
			t.Errorf("%s: closed %v, want %v", tt.name, closed, tt.closes)
		}
	}
}

// TestAcknowledged: an acknowledged incident sends no more reminders, and
// still changes and closes.
func TestAcknowledged(t *testing.T) {
	t.Parallel()
	r := rule(1, 1)
	r.Remind = time.Minute
	failing := []incident.Series{{Vantage: "us", Route: report.RouteCDN, Outcome: report.OutcomeRefused, Status: 403, FailStreak: 9}}
	open := &incident.Incident{ID: "x", State: incident.Open, Opened: t0, Cause: report.CauseAuthRejected,
		Cells: []incident.Cell{{Vantage: "us", Route: report.RouteCDN, Outcome: report.OutcomeRefused, Status: 403, Failing: true}},
		Seen:  []string{"us/cdn"}}
	in := incident.Input{Rule: r, Series: failing, Current: open, Now: t0.Add(5 * time.Minute), Diagnosis: report.Diagnosis{Cause: report.CauseAuthRejected}}
	if d := incident.Decide(in); d.Incident == nil || d.Events[0].Kind != incident.Reminder {
		t.Fatalf("not acknowledged: %+v, want a reminder", d)
	}
	acked := *open
	acked.Acked = &incident.Ack{By: "U0ALICE", At: t0.Add(time.Minute)}
	in.Current = &acked
	if d := incident.Decide(in); d.Incident != nil {
		t.Fatalf("acknowledged: %+v, want nothing", d.Events)
	}
	in.Series = []incident.Series{{Vantage: "us", Route: report.RouteCDN, Outcome: report.OutcomeUpgraded, Status: 101}}
	if d := incident.Decide(in); d.Incident == nil || d.Incident.State != incident.Closed || d.Incident.Acked == nil {
		t.Fatalf("acknowledged and upgraded: %+v, want it closed (acknowledgement kept)", d)
	}
}
