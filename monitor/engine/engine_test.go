package engine_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/diagnose"
	"github.com/wscanary/wscanary/monitor/engine"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/monitor/testbed"
	"github.com/wscanary/wscanary/notifier"
)

// primaryOnly routes every message to the primary notifier alone.
type primaryOnly struct{}

func (primaryOnly) For([]string) func(notifier.Message) []notifier.Message {
	return func(m notifier.Message) []notifier.Message { return []notifier.Message{m} }
}
func (primaryOnly) All() []string { return []string{""} }

// rig is an engine without a daemon: runs are recorded by hand on a
// simulated clock, and the outbox (or, without the store, the engine's
// local messages) is read and marked delivered by the test.
type rig struct {
	t     *testing.T
	e     *engine.Engine
	st    *store.Store
	cfg   *config.Config
	clock *testbed.Clock
	posts int
}

func newRig(t *testing.T, open func(t *testing.T) *store.Store) *rig {
	t.Helper()
	return newRigAs(t, open, "us", testbed.NewClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)))
}

// run records one run of the check from this member's vantage whose only
// attempt ended with status (and body, when given).
func (r *rig) run(status int, cause report.Cause, body ...string) {
	r.runOf("chat", status, cause, body...)
}

// runOf is run for the check of that name.
func (r *rig) runOf(name string, status int, cause report.Cause, body ...string) {
	a := report.Attempt{Vantage: r.cfg.Vantage, Route: report.RouteCDN, Variant: report.VariantConfigured, Status: status, OK: status == 101}
	if len(body) > 0 {
		// The server's own words, about the credential the check sends.
		a.Body, a.Credential = body[0], "header"
	}
	a.Outcome = report.OutcomeOf(a)
	// The runner's diagnosis of the run, which the engine carries.
	diag := diagnose.Diagnose(diagnose.Input{Attempts: []report.Attempt{a}, Now: r.clock.Now()})
	if diag.Cause != cause && !(cause == report.CauseAuthMissing && len(body) > 0) {
		r.t.Fatalf("the run of status %d is diagnosed %s, not %s", status, diag.Cause, cause)
	}
	rep := report.Report{Check: "chat", OK: a.OK, Diagnosis: diag, Attempts: []report.Attempt{a}}
	rep.Check = name
	r.e.Record([]engine.Observation{engine.NewObservation(r.cfg.Check(name), "", rep, r.clock.Now(), false)})
}

// TestEngineCarriesRunDiagnosis: the diagnosis of a run is made once, by
// the runner, and the incident's message says it; the engine makes one of
// its own only from attempts of more than that run (two runs in a batch
// here; several members in a fleet).
func TestEngineCarriesRunDiagnosis(t *testing.T) {
	for _, tc := range []struct {
		name  string
		runs  int
		words bool // the runner's words reach the message
	}{
		{"one run: carried", 1, true},
		{"two runs in one batch: made again", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, sqlite)
			var batch []engine.Observation
			for i := range tc.runs {
				a := report.Attempt{Vantage: "us", Route: report.RouteCDN, Variant: report.VariantConfigured, Status: 403}
				a.Outcome = report.OutcomeOf(a)
				rep := report.Report{Check: "chat", Attempts: []report.Attempt{a},
					Diagnosis: report.Diagnosis{Cause: report.CauseCDNBlocked, Summary: "the runner's words"}}
				batch = append(batch, engine.NewObservation(&r.cfg.Checks[0], "", rep, r.clock.Now().Add(time.Duration(i)*time.Second), false))
			}
			r.e.Record(batch)
			e, err := r.st.ClaimFor(context.Background(), "us", "", r.clock.Now(), time.Minute)
			if err != nil || e == nil || e.Message.Incident == nil {
				t.Fatalf("no incident message: %v %v", e, err)
			}
			if got := e.Message.Incident.Summary == "the runner's words"; got != tc.words {
				t.Errorf("summary %q; the runner's carried: %v, want %v", e.Message.Incident.Summary, got, tc.words)
			}
		})
	}
}

// told delivers what is due now and says what it was: the kind of each
// message and, for a reply, its events.
func (r *rig) told() []string {
	ctx := context.Background()
	var out []string
	for {
		e, err := r.st.ClaimFor(ctx, "us", "", r.clock.Now(), time.Minute)
		if err != nil {
			r.t.Fatal(err)
		}
		if e == nil {
			return out
		}
		out = append(out, said(e.Message))
		r.posts++
		if err := r.st.Done(ctx, e, notifier.Delivery{Channel: "C1", TS: fmt.Sprint(r.posts)}, r.clock.Now()); err != nil {
			r.t.Fatal(err)
		}
	}
}

// toldAlone is told for the engine's local messages (the store away).
func (r *rig) toldAlone() []string {
	var out []string
	for {
		m, _, _, ok := r.e.NextLocal("", r.clock.Now())
		if !ok {
			return out
		}
		out = append(out, said(m))
		r.posts++
		del := notifier.Delivery{Channel: "C1", TS: fmt.Sprint(r.posts)}
		r.e.DoneLocal(m.ID, true, &del, time.Time{})
	}
}

func said(m notifier.Message) string {
	s := string(m.Kind)
	for _, ev := range m.Events {
		s += " " + string(ev.Kind)
	}
	return s
}

// sequence is the life of one incident, the same on every ledger: each
// step advances the clock, records a run and says what the outbox then
// holds (delivered at once, as a working notifier would).
func sequence(t *testing.T, r *rig, tell func() []string) {
	t.Helper()
	steps := []struct {
		name    string
		advance time.Duration
		status  int
		body    []string
		want    []string
	}{
		{"a refusal opens the incident", 0, 403, nil, []string{"open"}},
		{"the same refusal says nothing new", time.Minute, 403, nil, nil},
		// The cause is the engine's own diagnosis of the attempts: the
		// server now says the token expired.
		{"another cause updates the message and says so in the thread", time.Minute, 401, []string{"token expired"}, []string{"update", "reply cause_changed"}},
		{"an hour on, a reminder", time.Hour, 401, []string{"token expired"}, []string{"reply reminder"}},
		{"the upgrade again resolves it", time.Minute, 101, nil, []string{"update", "reply resolved"}},
		{"healthy runs say nothing", time.Minute, 101, nil, nil},
	}
	for _, s := range steps {
		r.clock.Add(s.advance)
		cause := report.CauseAuthMissing
		if s.status == 101 {
			cause = report.CauseOK
		}
		r.run(s.status, cause, s.body...)
		if got := tell(); !slices.Equal(got, s.want) {
			t.Fatalf("%s: told %q, want %q", s.name, got, s.want)
		}
	}
}

func sqlite(t *testing.T) *store.Store {
	st, err := store.Open(context.Background(), store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func postgres(t *testing.T) *store.Store {
	dsn := testbed.StartPostgresT(t).NewDatabaseT(t)
	st, err := store.Open(context.Background(), store.Options{DSN: dsn, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestEngineSequence: the engine alone, fed runs on a simulated clock,
// writes the outbox rows of an incident's life (open, update, replies for a
// cause change, a reminder and the recovery) on SQLite and on PostgreSQL,
// and the same messages from memory while the store is away.
func TestEngineSequence(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		r := newRig(t, sqlite)
		sequence(t, r, r.told)
	})
	t.Run("postgres", func(t *testing.T) {
		r := newRig(t, postgres)
		sequence(t, r, r.told)
	})
	t.Run("memory", func(t *testing.T) {
		r := newRig(t, sqlite)
		// The store goes away for good: a SQLite store decides alone at
		// once, and its messages are the engine's local ones.
		r.st.Close()
		r.run(101, report.CauseOK) // the failed write that starts the outage
		sequence(t, r, r.toldAlone)
		if e := r.e.StoreError(); e == "" {
			t.Errorf("the store is closed, yet the engine says it takes writes")
		}
	})
}

// TestEngineSilence: a silence keeps a failing check from opening an
// incident; once it ends, the next failing run opens one.
func TestEngineSilence(t *testing.T) {
	for name, open := range map[string]func(*testing.T) *store.Store{"sqlite": sqlite, "postgres": postgres} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, open)
			now := r.clock.Now()
			if _, err := r.st.AddSilence(context.Background(), store.Silence{Check: "chat", Starts: now, Ends: now.Add(30 * time.Minute),
				Reason: "maintenance", By: "test", Created: now}); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				r.clock.Add(time.Minute)
				r.run(403, report.CauseAuthMissing)
			}
			if got := r.told(); len(got) != 0 {
				t.Fatalf("silenced, yet told %q", got)
			}
			r.clock.Add(30 * time.Minute)
			r.run(403, report.CauseAuthMissing)
			if got := r.told(); !slices.Equal(got, []string{"open"}) {
				t.Fatalf("after the silence: told %q, want an open", got)
			}
		})
	}
}

// TestEngineFleetStale: on a shared store, a member that went silent
// neither opens nor closes an incident with its stale series: the other
// member's recovery alone does not resolve what the silent one saw failing.
func TestEngineFleetStale(t *testing.T) {
	dsn := testbed.StartPostgresT(t).NewDatabaseT(t)
	open := func(t *testing.T) *store.Store {
		st, err := store.Open(context.Background(), store.Options{DSN: dsn, Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	us := newRig(t, open)
	eu := newRigAs(t, open, "eu", us.clock)
	ctx := context.Background()
	beat := func(st *store.Store, name string) {
		err := st.Update(ctx, func(tx *store.Tx) error {
			_, err := tx.Heartbeat(ctx, store.Member{Name: name, Started: us.clock.Now(), Interval: time.Minute}, us.clock.Now())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	beat(us.st, "us")
	beat(eu.st, "eu")
	us.run(403, report.CauseAuthMissing)
	eu.run(403, report.CauseAuthMissing)
	// us opens it; eu's failing run widens it (a reply in its thread).
	if got := us.told(); !slices.Equal(got, []string{"open", "reply widened"}) {
		t.Fatalf("both failing: told %q, want the open and its widening", got)
	}
	// eu goes silent; us marks it so, then recovers alone.
	us.clock.Add(5 * time.Minute)
	beat(us.st, "us")
	err := us.st.Update(ctx, func(tx *store.Tx) error {
		_, err := tx.NewlySilent(ctx, "us", us.clock.Now(), func(m store.Member) time.Duration { return 3 * m.Interval })
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	us.run(101, report.CauseOK)
	if got := us.told(); slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "resolved") }) {
		t.Fatalf("a silent member's failing series was ignored: told %q", got)
	}
	// eu reports again, upgraded: now it resolves.
	us.clock.Add(time.Minute)
	beat(eu.st, "eu")
	eu.run(101, report.CauseOK)
	if got := us.told(); !slices.Contains(got, "reply resolved") {
		t.Fatalf("both upgraded again: told %q, want the recovery", got)
	}
}

// newRigAs is an engine of member on clock c (members of one fleet share
// a clock).
func newRigAs(t *testing.T, open func(t *testing.T) *store.Store, member string, c *testbed.Clock) *rig {
	return newRigAlert(t, open, member, c, "{remind: 1h}")
}

// newRigAlert is newRigAs with the check's alert: section.
func newRigAlert(t *testing.T, open func(t *testing.T) *store.Store, member string, c *testbed.Clock, alert string) *rig {
	t.Helper()
	return newRigChecks(t, open, member, c, "", "  - {name: chat, url: \"ws://127.0.0.1:1/ws\", schedule: \"@every 1m\", alert: "+alert+"}\n")
}

// newRigChecks is a rig of the main file's extra lines and these checks.
func newRigChecks(t *testing.T, open func(t *testing.T) *store.Store, member string, c *testbed.Clock, main, checks string) *rig {
	t.Helper()
	cfg, err := config.LoadBytes("m.yaml", []byte("vantage: "+member+"\n"+main), map[string][]byte{"c.yaml": []byte("checks:\n" + checks)},
		config.Options{Lookup: func(string) (string, bool) { return "", false }, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	cfg.StateDir = t.TempDir()
	st := open(t)
	e, err := engine.New(engine.Options{Store: st, Config: cfg, Router: primaryOnly{}, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return &rig{t: t, e: e, st: st, cfg: cfg, clock: c}
}

// TestEngineXOfY: on the simulated clock and through the store, a check
// failing every other run opens at its third failure in five, holds while
// it upgrades for fewer than recover_after runs (its message is updated,
// its thread says nothing), and its recovery counts the flips.
func TestEngineXOfY(t *testing.T) {
	for _, ledger := range []struct {
		name string
		open func(t *testing.T) *store.Store
	}{{"sqlite", sqlite}, {"postgres", postgres}} {
		t.Run(ledger.name, func(t *testing.T) {
			r := newRigAlert(t, ledger.open, "us", testbed.NewClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)),
				`{after: "3 of 5", recover_after: 2}`)
			var flips int
			for i, s := range []struct {
				status int
				want   []string
			}{
				{403, nil}, {101, nil}, {403, nil}, {101, nil},
				{403, []string{"open"}},
				{101, []string{"update"}},
				{403, []string{"update"}},
				{101, []string{"update"}},
				{101, []string{"update", "reply resolved"}},
			} {
				r.clock.Add(time.Minute)
				cause := report.CauseAuthMissing
				if s.status == 101 {
					cause = report.CauseOK
				}
				r.run(s.status, cause)
				var got []string
				for {
					e, err := r.st.ClaimFor(context.Background(), "us", "", r.clock.Now(), time.Minute)
					if err != nil {
						t.Fatal(err)
					}
					if e == nil {
						break
					}
					got = append(got, said(e.Message))
					for _, ev := range e.Message.Events {
						flips = max(flips, ev.Flips)
					}
					r.posts++
					if err := r.st.Done(context.Background(), e, notifier.Delivery{Channel: "C1", TS: fmt.Sprint(r.posts)}, r.clock.Now()); err != nil {
						t.Fatal(err)
					}
				}
				if !slices.Equal(got, s.want) {
					t.Fatalf("run %d (%d): told %q, want %q", i+1, s.status, got, s.want)
				}
			}
			if flips != 2 {
				t.Errorf("the recovery counts %d flips, want 2", flips)
			}
		})
	}
}

// TestEngineDependsOn: a check whose dependency is down opens nothing; the
// dependency's message lists what it holds back; a dependent that still
// fails when the dependency recovers opens its own incident then.
func TestEngineDependsOn(t *testing.T) {
	r := newRigChecks(t, sqlite, "us", testbed.NewClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)), "",
		"  - {name: edge, url: \"ws://127.0.0.1:1/ws\", schedule: \"@every 1m\"}\n"+
			"  - {name: chat, url: \"ws://127.0.0.1:2/ws\", schedule: \"@every 1m\", alert: {depends_on: [edge]}}\n"+
			"  - {name: feed, url: \"ws://127.0.0.1:3/ws\", schedule: \"@every 1m\", alert: {depends_on: [edge]}}\n")
	ctx := context.Background()
	tell := func() (out []string) {
		for {
			e, err := r.st.ClaimFor(ctx, "us", "", r.clock.Now(), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if e == nil {
				return out
			}
			s := said(e.Message)
			if e.Message.Incident != nil {
				s = e.Message.Incident.Check + " " + s + " " + strings.Join(e.Message.Incident.Notes, " ")
			}
			out = append(out, strings.TrimSpace(s))
			r.posts++
			if err := r.st.Done(ctx, e, notifier.Delivery{Channel: "C1", TS: fmt.Sprint(r.posts)}, r.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range []string{"edge", "chat", "feed"} {
		r.runOf(name, 101, report.CauseOK)
	}
	// The dependents' runs come first: they wait for the edge's next run,
	// which fails too.
	r.clock.Add(time.Minute)
	r.runOf("chat", 403, report.CauseAuthMissing)
	if got := tell(); len(got) > 0 {
		t.Fatalf("a dependent opened before its dependency ran again: %q", got)
	}
	r.runOf("feed", 403, report.CauseAuthMissing)
	r.runOf("edge", 403, report.CauseAuthMissing)
	got := tell()
	if len(got) != 1 || !strings.HasPrefix(got[0], "edge open") || !strings.Contains(got[0], "Holding back chat, feed") {
		t.Fatalf("failing together told %q, want the edge's message alone, listing chat and feed", got)
	}
	r.clock.Add(time.Minute)
	r.runOf("chat", 403, report.CauseAuthMissing)
	r.runOf("feed", 101, report.CauseOK) // feed recovers: the list shrinks
	r.runOf("edge", 403, report.CauseAuthMissing)
	got = tell()
	if len(got) != 1 || !strings.Contains(got[0], "edge update") || !strings.Contains(got[0], "Holding back chat:") {
		t.Fatalf("told %q, want the edge's message updated to hold back chat alone", got)
	}
	// The edge recovers, feed with it; chat still fails and opens alone.
	r.clock.Add(time.Minute)
	r.runOf("edge", 101, report.CauseOK)
	r.runOf("feed", 101, report.CauseOK)
	r.runOf("chat", 403, report.CauseAuthMissing)
	got = tell()
	if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "chat open") }) ||
		slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "feed") }) {
		t.Fatalf("after the edge recovered told %q, want chat's own incident and nothing of feed", got)
	}
}
