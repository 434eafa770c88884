package engine_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/diagnose"
	"github.com/wscanary/wscanary/monitor/engine"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/testbed"
	"github.com/wscanary/wscanary/notifier"
)

// The two faults of the group tests, as a real edge and a real server
// answer them: a WAF's challenge page and an expired token.
var (
	wafRefusal = report.Attempt{Status: 403, Reason: "Forbidden", Edge: "cloudflare", Pop: "FRA", Headers: map[string]string{"Server": "cloudflare", "Cf-Ray": "8a1b2c3d4e5f6a7b-FRA"},
		Body: "<title>Attention Required! | Cloudflare</title> Sorry, you have been blocked"}
	tokenRefusal = report.Attempt{Status: 401, Reason: "Unauthorized", Credential: "header", Body: `{"error":"token expired"}`}
)

// groupRig is a rig of many checks whose runs are recorded in one batch,
// the way a burst arrives, and whose primary outbox is delivered as Slack
// would take it.
type groupRig struct {
	*rig
	roots map[string]string // incident id -> ts of its message
	calls []string          // every primary delivery: kind, incident, first line
}

func newGroupRig(t *testing.T, main string, names ...string) *groupRig {
	var checks strings.Builder
	for i, n := range names {
		fmt.Fprintf(&checks, "  - {name: %s, url: \"ws://127.0.0.1:%d/ws\", schedule: \"@every 1m\"}\n", n, 1000+i)
	}
	r := newRigChecks(t, sqlite, "us", testbed.NewClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)), main, checks.String())
	return &groupRig{rig: r, roots: map[string]string{}}
}

// runs records one run of each check in one batch: a refusal (nil: an
// upgrade).
func (g *groupRig) runs(refusals map[string]*report.Attempt) {
	var batch []engine.Observation
	names := make([]string, 0, len(refusals))
	for n := range refusals {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		a := report.Attempt{Status: 101, OK: true}
		if ref := refusals[n]; ref != nil {
			a = *ref
		}
		a.Vantage, a.Route, a.Variant = "us", report.RouteCDN, report.VariantConfigured
		a.Outcome = report.OutcomeOf(a)
		rep := report.Report{Check: n, OK: a.OK, Attempts: []report.Attempt{a},
			Diagnosis: diagnose.Diagnose(diagnose.Input{Attempts: []report.Attempt{a}, Now: g.clock.Now()})}
		batch = append(batch, engine.NewObservation(g.cfg.Check(n), "", rep, g.clock.Now(), false))
	}
	g.e.Record(batch)
}

// deliver takes every primary message due now, as Slack would, and says
// what it was.
func (g *groupRig) deliver(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for {
		e, err := g.st.ClaimFor(ctx, "us", "", g.clock.Now(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if e == nil {
			return out
		}
		m := e.Message
		if fixed, ok := notifier.AsOpen(m, e.Posted, e.View); ok {
			m = fixed
		}
		line := string(m.Kind) + " " + e.Incident + ": " + strings.SplitN(notifier.Text(m), "\n", 2)[0]
		out = append(out, line)
		g.calls = append(g.calls, line)
		g.posts++
		d := notifier.Delivery{Channel: "C1", TS: fmt.Sprint(g.posts)}
		if m.Kind != notifier.KindOpen && m.Thread != nil {
			d = *m.Thread
		}
		if err := g.st.Done(ctx, e, d, g.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

// settle advances the clock past the messages' spacing and delivers.
func (g *groupRig) settle(t *testing.T) []string {
	var out []string
	for range 3 {
		g.clock.Add(11 * time.Second)
		out = append(out, g.deliver(t)...)
	}
	return out
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i+1)
	}
	return out
}

func count(lines []string, sub string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// TestGroupsTwoCauses: 20 checks failing at once for two causes (a WAF rule
// for 12, an expired token for 8) are two group messages with the right
// members; their recovery is one reply in each group's thread. The whole
// event costs a handful of Slack calls, not 20 messages and their
// recoveries.
func TestGroupsTwoCauses(t *testing.T) {
	for _, size := range []struct{ waf, tok, maxCalls int }{{12, 8, 8}, {24, 16, 24}} {
		t.Run(fmt.Sprintf("%d+%d", size.waf, size.tok), func(t *testing.T) { twoCauses(t, size.waf, size.tok, size.maxCalls) })
	}
}

func twoCauses(t *testing.T, nWAF, nTok, maxCalls int) {
	waf, tok := names("waf", nWAF), names("tok", nTok)
	g := newGroupRig(t, "", append(slices.Clone(waf), tok...)...)
	fail := map[string]*report.Attempt{}
	for _, n := range waf {
		fail[n] = &wafRefusal
	}
	for _, n := range tok {
		fail[n] = &tokenRefusal
	}
	g.runs(fail)
	opened := g.settle(t)
	if count(opened, "open ") != 2 || count(opened, fmt.Sprintf("%d checks fail together: ", nWAF)) != 1 ||
		count(opened, fmt.Sprintf("%d checks fail together: token_expired", nTok)) != 1 {
		t.Fatalf("the burst told:\n%s\nwant two group messages, %d and %d checks", strings.Join(opened, "\n"), nWAF, nTok)
	}
	// Each group lists its own members and says the shared hint once.
	for _, id := range g.groupIDs(t) {
		rec, err := g.st.IncidentByID(context.Background(), id)
		if err != nil || rec == nil || rec.View.Group == nil {
			t.Fatalf("group %s: %v %v", id, rec, err)
		}
		want, pops := waf, []string{"FRA"}
		if rec.View.Cause == report.CauseTokenExpired {
			want, pops = tok, nil
		}
		if !slices.Equal(rec.View.Group.Pops, pops) {
			t.Errorf("group %s (%s) names the locations %v, want %v", id, rec.View.Cause, rec.View.Group.Pops, pops)
		}
		got, err := g.st.GroupChecks(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("group %s (%s) has %v, want %v", id, rec.View.Cause, got, want)
		}
		text := notifier.Text(notifier.Message{Kind: notifier.KindOpen, Incident: &rec.View})
		if len(rec.View.Hints) == 0 || strings.Count(text, rec.View.Hints[0]) != 1 {
			t.Errorf("group %s: the shared hint is not said once:\n%s", id, text)
		}
	}
	// More failing runs change nothing a person sees.
	g.runs(fail)
	if more := g.settle(t); len(more) > 0 {
		t.Fatalf("the same failures again told %q", more)
	}
	up := map[string]*report.Attempt{}
	for n := range fail {
		up[n] = nil
	}
	g.runs(up)
	recovered := g.settle(t)
	if count(recovered, fmt.Sprintf("RECOVERED  all %d checks", nWAF)) != 1 || count(recovered, fmt.Sprintf("RECOVERED  all %d checks", nTok)) != 1 ||
		count(recovered, "open ") != 0 {
		t.Fatalf("the recovery told:\n%s\nwant one recovery in each group's thread", strings.Join(recovered, "\n"))
	}
	t.Logf("%d Slack calls for %d checks:\n%s", len(g.calls), nWAF+nTok, strings.Join(g.calls, "\n"))
	if len(g.calls) > maxCalls {
		t.Errorf("%d Slack calls for the whole event, want at most %d", len(g.calls), maxCalls)
	}
	if tops := count(g.calls, "open "); tops > 6 {
		t.Errorf("%d top-level messages for two causes, want at most 3 per cause", tops)
	}
}

// groupIDs are the ids of the groups the store holds.
func (g *groupRig) groupIDs(t *testing.T) []string {
	t.Helper()
	var ids []string
	for _, c := range g.calls {
		if i := strings.Index(c, " group-"); i >= 0 {
			id := strings.SplitN(c[i+1:], ":", 2)[0]
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// TestGroupForms: the first incidents post at once; when the third opens,
// the first's message becomes the group's (updated in place) and the
// second's points at it; a late joiner minutes later posts nothing of its
// own; a member whose cause changes leaves the group, told in its thread,
// with a message of its own again.
func TestGroupForms(t *testing.T) {
	g := newGroupRig(t, "group: {wait: 5m}\n", "a", "b", "c", "d", "e")
	g.runs(map[string]*report.Attempt{"a": &wafRefusal, "b": nil, "c": nil, "d": nil, "e": nil})
	if got := g.settle(t); count(got, "open a-") != 1 {
		t.Fatalf("the first incident told %q, want its own message at once", got)
	}
	g.runs(map[string]*report.Attempt{"a": &wafRefusal, "b": &wafRefusal})
	if got := g.settle(t); count(got, "open b-") != 1 {
		t.Fatalf("the second incident told %q, want its own message at once", got)
	}
	g.runs(map[string]*report.Attempt{"a": &wafRefusal, "b": &wafRefusal, "c": &wafRefusal})
	formed := g.settle(t)
	if count(formed, "open ") != 0 || count(formed, "update group-") != 1 || count(formed, "3 checks fail together") != 1 ||
		count(formed, "update b-") != 1 || count(formed, "IN GROUP  b: 403 Forbidden on 1 of 1; it is now part of group") != 1 {
		t.Fatalf("the group forming told:\n%s\nwant a's message updated into the group's and b's pointing at it, nothing posted", strings.Join(formed, "\n"))
	}
	g.clock.Add(2 * time.Minute)
	g.runs(map[string]*report.Attempt{"a": &wafRefusal, "b": &wafRefusal, "c": &wafRefusal, "d": &wafRefusal})
	late := g.settle(t)
	if count(late, "open ") != 0 || count(late, "4 checks fail together") != 1 {
		t.Fatalf("a late joiner told:\n%s\nwant the group's message updated, nothing posted", strings.Join(late, "\n"))
	}
	// A member's cause changes: for group.wait it stays (a transition
	// says nothing), then it leaves, told in the group's thread, and has
	// its own message.
	g.runs(map[string]*report.Attempt{"a": &wafRefusal, "b": &wafRefusal, "c": &tokenRefusal, "d": &wafRefusal})
	if got := g.settle(t); count(got, "LEFT") != 0 || count(got, "open ") != 0 {
		t.Fatalf("a member whose cause just changed told %q, want nothing yet", got)
	}
	g.clock.Add(5 * time.Minute)
	g.runs(map[string]*report.Attempt{"a": &wafRefusal, "b": &wafRefusal, "c": &tokenRefusal, "d": &wafRefusal})
	left := g.settle(t)
	if count(left, "LEFT THE GROUP  c: now token_expired") != 1 || count(left, "open c-") != 1 {
		t.Fatalf("a member changing cause told:\n%s\nwant it to leave in the group's thread and post its own message", strings.Join(left, "\n"))
	}
	t.Logf("Slack calls:\n%s", strings.Join(g.calls, "\n"))
}

// TestGroupFollowsMajority: when most of a group's members settle on
// another cause (an edge rollout in transition), the group takes it, says
// so in its thread, and nobody leaves; a check that opened alone with the
// transitional cause joins the group once its cause is the group's.
func TestGroupFollowsMajority(t *testing.T) {
	g := newGroupRig(t, "", "a", "b", "c", "d", "e")
	g.runs(map[string]*report.Attempt{"a": &tokenRefusal, "b": &tokenRefusal, "c": &tokenRefusal, "d": nil, "e": &wafRefusal})
	first := g.settle(t)
	if count(first, "open group-") != 1 || count(first, "open e-") != 1 {
		t.Fatalf("the start told:\n%s\nwant the group of three and e alone", strings.Join(first, "\n"))
	}
	g.runs(map[string]*report.Attempt{"a": &wafRefusal, "b": &wafRefusal, "c": &tokenRefusal, "d": nil, "e": &wafRefusal})
	moved := g.settle(t)
	if count(moved, "CAUSE CHANGED  most of the group's checks") != 1 || count(moved, "update e-") != 1 || count(moved, "LEFT") != 0 {
		t.Fatalf("the majority moving told:\n%s\nwant the group's cause changed and e pointing at it", strings.Join(moved, "\n"))
	}
	g.runs(map[string]*report.Attempt{"a": &wafRefusal, "b": &wafRefusal, "c": &wafRefusal, "d": nil, "e": &wafRefusal})
	if got := g.settle(t); len(got) != 0 {
		t.Fatalf("c settling like the others told %q, want nothing: the group's message says it already", got)
	}
	t.Logf("Slack calls:\n%s", strings.Join(g.calls, "\n"))
}

// TestGroupFormedByCauseChange: a check told alone for one cause whose
// cause settles on the key of two others forms the group with them; its
// own message, posted long before, points at the group's like the
// others' do (the fleet test saw it stay a plain FAILING message).
func TestGroupFormedByCauseChange(t *testing.T) {
	g := newGroupRig(t, "group: {wait: 5m}\n", "a", "b", "c")
	g.runs(map[string]*report.Attempt{"a": &wafRefusal, "b": &wafRefusal, "c": &tokenRefusal})
	if got := g.settle(t); count(got, "open ") != 3 {
		t.Fatalf("the start told:\n%s\nwant three messages of their own", strings.Join(got, "\n"))
	}
	var formed []string
	for range 3 {
		g.runs(map[string]*report.Attempt{"a": &wafRefusal, "b": &wafRefusal, "c": &wafRefusal})
		formed = append(formed, g.settle(t)...)
	}
	if count(formed, "3 checks fail together") == 0 || count(formed, "open ") != 0 {
		t.Fatalf("c's cause settling told:\n%s\nwant the group formed in a posted message", strings.Join(formed, "\n"))
	}
	// a's message became the group's (the first posted); b and c point
	// at it.
	if count(formed, "IN GROUP  b:") != 1 || count(formed, "IN GROUP  c:") != 1 || count(formed, "IN GROUP  a:") != 0 {
		t.Errorf("the group forming told:\n%s\nwant b's and c's messages pointing at the group's", strings.Join(formed, "\n"))
	}
}
