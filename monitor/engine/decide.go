package engine

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/diagnose"
	"github.com/wscanary/wscanary/monitor/incident"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/notifier"
)

// minReopen is the shortest time after a recovery in which a check that
// fails again reopens its incident instead of opening another.
const minReopen = 5 * time.Minute

// decision is what deciding one check needs beside the ledger.
type decision struct {
	// cfg is the configuration in force (dependencies, groups); nil in
	// tests that decide one check alone.
	cfg      *config.Config
	check    *config.Check
	traceURL string
	token    *report.Token
	now      time.Time
	// windows are the maintenance windows of every check (the main
	// file's); the check's own are in check.
	windows []config.Window
	// notes are shown on the incident's message (a member alone).
	notes []string
	// force: update the open incident's message even when nothing changed
	// (a person asked: run again, acknowledge).
	force bool
	// route fans a message out to the check's notifiers; nil keeps it for
	// the primary one only. routeOf is another check's (a group's other
	// members); nil: the primary one only.
	route   func(notifier.Message) []notifier.Message
	routeOf func(*config.Check) func(notifier.Message) []notifier.Message
	// run is the diagnosis of the run just recorded (of this member, at
	// runAt), when the batch held one run of the check: carried from the
	// runner, not made again, when its series are all that is in play.
	run   *report.Diagnosis
	runAt time.Time
	// member is this daemon's own name in the fleet.
	member string
}

// enqueue queues m for every target route gives it.
func enqueue(ctx context.Context, l ledger, route func(notifier.Message) []notifier.Message, m notifier.Message, incidentID string, now time.Time) error {
	if route == nil {
		if m.Scope == notifier.ScopeMember {
			return nil // for the other notifiers, and there are none
		}
		return l.Enqueue(ctx, m, incidentID, now)
	}
	for _, c := range route(m) {
		if c.Target == "" && c.Scope == notifier.ScopeMember {
			continue // the primary notifier tells the member in its group's message
		}
		if err := l.Enqueue(ctx, c, incidentID, now); err != nil {
			return err
		}
	}
	return nil
}

// decideCheck applies the check's rule to every series the ledger has of
// it (every vantage, route and member), and queues what people should see:
// the incident's message, its updates and its thread replies. It reports
// whether the incident is open afterwards.
func decideCheck(ctx context.Context, l ledger, dc decision) (bool, error) {
	c := dc.check
	if err := l.LockCheck(ctx, c.Name); err != nil {
		return false, err
	}
	rows, err := l.Series(ctx, c.Name, dc.now)
	if err != nil {
		return false, err
	}
	rec, err := l.Incident(ctx, c.Name)
	if err != nil {
		return false, err
	}
	silences, err := l.Silences(ctx, c.Name, dc.now)
	if err != nil {
		return false, err
	}
	quiet, muted, notes := quietOf(dc, silences)
	// A check it depends on is down: this one opens nothing of its own.
	parent, err := heldBy(ctx, l, dc, rows)
	if err != nil {
		return false, err
	}
	quiet = quiet || parent != ""
	held, err := holds(ctx, l, dc)
	if err != nil {
		return false, err
	}
	if len(held) > 0 {
		notes = append(notes, fmt.Sprintf("Holding back %s: they depend on %s and fail too. Each opens its own incident if it still fails when %s recovers.",
			strings.Join(held, ", "), c.Name, c.Name))
	}
	series := make([]incident.Series, len(rows))
	var attempts []report.Attempt
	for i, r := range rows {
		series[i] = r.Series
		series[i].Muted = muted[r.Vantage]
		rows[i].Muted = series[i].Muted
		if !r.Stale && !series[i].Muted {
			attempts = append(attempts, r.Attempts...)
		}
	}
	diag := diagnosisOf(dc, rows, attempts)
	in := incident.Input{Check: c.Name, Rule: c.Alert, Series: series, Diagnosis: diag, Now: dc.now, Quiet: quiet,
		ReopenWithin: max(minReopen, 3*c.Interval(dc.now)), NewID: func() string { return incident.NewID(c.Name, dc.now) }}
	var prev *notifier.Incident
	if rec != nil {
		d := rec.Decision
		in.Current, prev = &d, &rec.View
	}
	d := incident.Decide(in)
	open := rec != nil && rec.Decision.State == incident.Open
	// The message is refreshed, whatever the rule says, when a person asked
	// or when a window or silence began or ended.
	refresh := open && (dc.force || !slices.Equal(notes, rec.View.Notes))
	// An open incident that nothing changed may still join, follow or
	// leave its group (groupStep); it says nothing unless it does.
	quietGroup := false
	if d.Incident == nil {
		if !refresh && !(open && grouped(dc.cfg, c)) {
			return open, nil
		}
		quietGroup = !refresh
		cur := rec.Decision
		d.Incident = &cur
	}
	dc.notes = notes
	view := buildView(dc, d.Incident, rows, diag, prev)
	grp, err := groupStep(ctx, l, dc, d, rec, &view)
	if err != nil {
		return false, err
	}
	if quietGroup && !grp.changed {
		return open, nil
	}
	// An incident that opened into a group, or joined or moved: a storm is
	// still coming in (Engine.LastOpen, the delivery's settling).
	if o, ok := l.(interface{ noteOpen() }); ok && grp.scope == notifier.ScopeMember && (grp.changed ||
		slices.ContainsFunc(d.Events, func(e incident.Event) bool { return e.Kind == incident.Opened || e.Kind == incident.Reopened })) {
		o.noteOpen()
	}
	if err := l.PutIncident(ctx, *d.Incident, view, dc.now); err != nil {
		return false, err
	}
	failing := notifier.Failing(view)
	for i := range d.Events {
		d.Events[i].Failing = failing
	}
	msgs := messagesFor(d.Events, d.Incident.ID, c.Alert.Channel, view, dc.now)
	if refresh && !slices.ContainsFunc(msgs, func(m notifier.Message) bool { return m.Kind == notifier.KindUpdate }) {
		msgs = append(msgs, notifier.Message{ID: d.Incident.ID + "/update/" + fmt.Sprint(dc.now.UnixNano()), Kind: notifier.KindUpdate, Channel: c.Alert.Channel})
	}
	if grp.ownMessage {
		// Out of its group: its own message again, as it is now (it says
		// what the update and the reply would); the other notifiers had
		// its news all along.
		grp.scope = notifier.ScopeMember
		msgs = append(msgs, notifier.Message{ID: d.Incident.ID + "/open/" + fmt.Sprint(dc.now.UnixNano()), Kind: notifier.KindOpen,
			Channel: c.Alert.Channel, Scope: notifier.ScopePrimary})
	}
	for _, m := range msgs {
		if m.Scope == "" {
			m.Scope = grp.scope
		}
		if err := enqueue(ctx, l, dc.route, m, d.Incident.ID, dc.now); err != nil {
			return false, err
		}
	}
	return d.Incident.State == incident.Open, nil
}

// diagnosisOf is the check's diagnosis from the attempts in play. When
// they are exactly those of the run just recorded (this member's series
// from that run, every one in play, and no other) it is the run's own
// diagnosis; across members, or with a vantage muted or stale, it is made
// from the attempts of every series in play (docs/architecture.md, "One
// run, from tick to Slack").
func diagnosisOf(dc decision, rows []store.SeriesRow, attempts []report.Attempt) report.Diagnosis {
	if dc.run != nil && len(attempts) > 0 {
		carried := true
		for _, r := range rows {
			fromRun := r.Member == dc.member && r.Updated.Sub(dc.runAt).Abs() < time.Millisecond
			inPlay := !r.Stale && !r.Muted
			if fromRun != inPlay {
				carried = false
				break
			}
		}
		if carried {
			return *dc.run
		}
	}
	c := dc.check
	return diagnose.Diagnose(diagnose.Input{Attempts: attempts, Token: dc.token, Timeout: c.Timeout, Now: dc.now,
		ExpectConfigured: c.Expect != nil || c.Send != ""})
}

// heldBy names a check this one depends on (alert.depends_on) that has an
// open incident or fails now, or that has not run since this one started
// failing (its next run says whether it is the cause); "" when none.
func heldBy(ctx context.Context, l ledger, dc decision, rows []store.SeriesRow) (string, error) {
	if dc.cfg == nil || len(dc.check.Alert.DependsOn) == 0 {
		return "", nil
	}
	var failingSince time.Time
	for _, r := range rows {
		if !r.Stale && dc.check.Alert.Fails(r.Outcome, r.Status, r.Cause) && (failingSince.IsZero() || r.Since.Before(failingSince)) {
			failingSince = r.Since
		}
	}
	for _, name := range dc.check.Alert.DependsOn {
		p := dc.cfg.Check(name)
		if p == nil {
			continue
		}
		down, err := isDown(ctx, l, p, dc.now, failingSince)
		if err != nil || down {
			return name, err
		}
	}
	return "", nil
}

// holds names the checks that depend on this one and fail now: its
// message lists them, since they say nothing of their own meanwhile.
func holds(ctx context.Context, l ledger, dc decision) ([]string, error) {
	if dc.cfg == nil {
		return nil, nil
	}
	var out []string
	for _, name := range dc.cfg.Dependents(dc.check.Name) {
		c := dc.cfg.Check(name)
		if c == nil {
			continue
		}
		rows, err := l.Series(ctx, name, dc.now)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(rows, func(r store.SeriesRow) bool { return !r.Stale && c.Alert.Fails(r.Outcome, r.Status, r.Cause) }) {
			out = append(out, name)
		}
	}
	return out, nil
}

// isDown: the check has an open incident, or a fresh series failing by
// its rule, or fresh series all older than since (not run since then).
func isDown(ctx context.Context, l ledger, c *config.Check, now, since time.Time) (bool, error) {
	rec, err := l.Incident(ctx, c.Name)
	if err != nil {
		return false, err
	}
	if rec != nil && rec.Decision.State == incident.Open {
		return true, nil
	}
	rows, err := l.Series(ctx, c.Name, now)
	if err != nil {
		return false, err
	}
	fresh, seenSince := false, false
	for _, r := range rows {
		if r.Stale {
			continue
		}
		if c.Alert.Fails(r.Outcome, r.Status, r.Cause) {
			return true, nil
		}
		fresh = true
		seenSince = seenSince || !r.Updated.Before(since)
	}
	return fresh && !since.IsZero() && !seenSince, nil
}

// quietOf says whether a maintenance window or a silence of the whole check
// holds (no incident opens, no reminder goes out), which vantages a silence
// mutes, and the notes the incident's message shows for them.
func quietOf(dc decision, silences []store.Silence) (bool, map[string]bool, []string) {
	notes := slices.Clone(dc.notes)
	quiet := false
	windows := append(slices.Clone(dc.check.Maintenance), dc.windows...)
	if w, until, ok := config.InWindow(windows, dc.now); ok {
		quiet = true
		notes = append(notes, "In maintenance until "+clock(until)+": "+w.String()+". No incident opens and no reminder goes out until then.")
	}
	var muted map[string]bool
	for _, sl := range silences {
		if !sl.Holds(dc.now) {
			continue
		}
		who := ""
		if sl.By != "" {
			who = " by " + sl.By
		}
		reason := ""
		if sl.Reason != "" {
			reason = ": " + sl.Reason
		}
		if sl.Vantage == "" {
			quiet = true
			notes = append(notes, fmt.Sprintf("Silenced until %s%s%s (%s).", clock(sl.Ends), who, reason, sl.ID))
			continue
		}
		if muted == nil {
			muted = map[string]bool{}
		}
		muted[sl.Vantage] = true
		notes = append(notes, fmt.Sprintf("%s silenced until %s%s%s (%s): it neither opens nor holds the incident.", sl.Vantage, clock(sl.Ends), who, reason, sl.ID))
	}
	return quiet, muted, notes
}

// clock is a time for a message line.
func clock(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// messagesFor turns a decision's events into messages: a new incident is
// its message; what changes the matrix or the cause updates that message;
// what a person should notice is also said in its thread.
func messagesFor(events []incident.Event, id, channel string, view notifier.Incident, now time.Time) []notifier.Message {
	var out []notifier.Message
	at := stamp(now)
	update := false
	var replies []notifier.Event
	for _, e := range events {
		switch e.Kind {
		case incident.Opened:
			out = append(out, notifier.Message{ID: id + "/open", Kind: notifier.KindOpen, Channel: channel})
		case incident.Changed:
			update = true
		case incident.Reminder:
			replies = append(replies, e)
		default: // reopened, cause changed, widened, resolved
			update = true
			replies = append(replies, e)
		}
	}
	if update {
		out = append(out, notifier.Message{ID: id + "/update/" + at, Kind: notifier.KindUpdate, Channel: channel})
	}
	if len(replies) > 0 {
		v := view
		out = append(out, notifier.Message{ID: id + "/reply/" + at, Kind: notifier.KindReply, Channel: channel, Incident: &v, Events: replies})
	}
	return out
}

// buildView is the incident as its message shows it: the matrix with a
// reason per cell, the diagnosis, and the telling failing attempt with its
// diagnostic variants. Facts the latest run cannot give (a recovery has no
// failing attempt) are kept from the previous view.
func buildView(dc decision, inc *incident.Incident, rows []store.SeriesRow, diag report.Diagnosis, prev *notifier.Incident) notifier.Incident {
	v := notifier.Incident{ID: inc.ID, Check: inc.Check, State: notifier.StateOpen, Opened: inc.Opened, Closed: inc.Closed,
		At: dc.now, FirstRun: inc.FirstRun, Flaps: inc.Flaps, Flips: inc.Flips, Cause: inc.Cause, Vendor: inc.Vendor, Notes: dc.notes}
	if inc.Acked != nil {
		v.AckedBy, v.AckedAt = inc.Acked.By, inc.Acked.At
	}
	v.FirstCause, v.FirstVendor, v.FirstRoutes = inc.FirstCause, inc.FirstVendor, inc.FirstRoutes
	v.Labels = dc.check.Labels
	if inc.State == incident.Closed {
		v.State = notifier.StateResolved
	}
	if prev != nil && prev.ID == inc.ID {
		v.Summary, v.Hints, v.Attempt, v.Variants, v.TraceURL = prev.Summary, prev.Hints, prev.Attempt, prev.Variants, prev.TraceURL
		v.InGroup = prev.InGroup // groupStep keeps or changes it
	}
	if diag.Cause != "" && diag.Cause != report.CauseOK && diag.Cause != report.CauseRunError {
		v.Summary, v.Hints = diag.Summary, diag.Hints
	}
	byKey := map[string]store.SeriesRow{}
	for _, r := range rows {
		byKey[r.Key()] = r
	}
	for _, c := range inc.Cells {
		cell := c
		if r, ok := byKey[incident.CellKey(c.Vantage, c.Route, c.Transport)]; ok {
			a := configured(r)
			cell.Reason, cell.Pop = cellReason(a), a.Pop
		}
		v.Cells = append(v.Cells, cell)
	}
	// The telling attempt: where the diagnosis points, else the first that
	// fails.
	var tell *store.SeriesRow
	if r, ok := byKey[incident.CellKey(diag.Vantage, diag.Route, diag.Transport)]; ok && !r.Muted && dc.check.Alert.Fails(r.Outcome, r.Status, r.Cause) {
		tell = &r
	}
	for i := range rows {
		if tell == nil && !rows[i].Stale && !rows[i].Muted && dc.check.Alert.Fails(rows[i].Outcome, rows[i].Status, rows[i].Cause) {
			tell = &rows[i]
		}
	}
	if tell != nil {
		v.Attempt = configured(*tell)
		v.Variants = nil
		for _, a := range tell.Attempts {
			if a.Variant != report.VariantConfigured {
				v.Variants = append(v.Variants, a)
			}
		}
		v.TraceURL = ""
		if dc.traceURL != "" && v.Attempt.TraceID != "" {
			v.TraceURL = strings.ReplaceAll(dc.traceURL, "{trace_id}", v.Attempt.TraceID)
		}
	}
	return v
}

// configured is a series' configured attempt.
func configured(r store.SeriesRow) report.Attempt {
	for _, a := range r.Attempts {
		if a.Variant == report.VariantConfigured || a.Variant == "" {
			return a
		}
	}
	return report.Attempt{Vantage: r.Vantage, Route: r.Route, Transport: r.Transport, Status: r.Status, Outcome: r.Outcome, TraceID: r.TraceID}
}

// cellReason says in a word or two how an attempt ended.
func cellReason(a report.Attempt) string {
	switch report.OutcomeOf(a) {
	case report.OutcomeRefused:
		if a.Reason != "" {
			return a.Reason
		}
		return http.StatusText(a.Status)
	case report.OutcomeRejectedAfterOpen:
		if a.CloseCode != 0 {
			return fmt.Sprintf("closed %d", a.CloseCode)
		}
		return "reply did not match"
	case report.OutcomeNoAnswer:
		return a.ErrorClass()
	}
	return ""
}

// Warning kinds: one message when each starts, never an incident.
const (
	warnCert        = "cert_expiry"
	warnToken       = "token_expiry"
	warnTokenSource = "token_source"
	warnClient      = "client_blocked"
)

// warningsOf are the warnings a run shows, by kind: a certificate that
// expires soon, a JWT near its end, a token source that fails. Pure: the
// feed calls it for every run and acts only when one holds or held.
func warningsOf(c *config.Check, rep report.Report, now time.Time) map[string]notifier.Notice {
	var active map[string]notifier.Notice
	add := func(kind string, n notifier.Notice) {
		if active == nil {
			active = map[string]notifier.Notice{}
		}
		active[kind] = n
	}
	if w := c.Warn.CertExpiry; w > 0 {
		for _, a := range rep.Attempts {
			if a.Variant != report.VariantConfigured || a.CertNotAfter.IsZero() {
				continue
			}
			if left := a.CertNotAfter.Sub(now); left > 0 && left <= w {
				add(warnCert, notifier.Notice{Check: c.Name,
					Title: fmt.Sprintf("%s: the TLS certificate of %s expires in %s", c.Name, c.URL.Hostname(), days(left)),
					Lines: []string{fmt.Sprintf("Seen on %s/%s: not after %s.", a.Vantage, a.Route, a.CertNotAfter.UTC().Format(time.RFC3339)),
						"Renew it before then; wscanary opens no incident for this."}})
				break
			}
		}
	}
	if t := rep.Token; t != nil && t.JWT && !t.ExpiresAt.IsZero() && t.ExpiresAt.After(now) {
		left := t.ExpiresAt.Sub(now)
		near := c.Warn.TokenLeft > 0 && left <= c.Warn.TokenLeft
		if c.Warn.TokenShare > 0 && !t.IssuedAt.IsZero() && t.ExpiresAt.After(t.IssuedAt) {
			near = near || float64(left) < c.Warn.TokenShare*float64(t.ExpiresAt.Sub(t.IssuedAt))
		}
		if near {
			add(warnToken, notifier.Notice{Check: c.Name,
				Title: fmt.Sprintf("%s: the token expires in %s", c.Name, days(left)),
				Lines: []string{fmt.Sprintf("Its exp is %s; make sure it is refreshed before then.", t.ExpiresAt.UTC().Format(time.RFC3339))}})
		}
	}
	if d := rep.Diagnosis; d.Cause == report.CauseClientBlocked && c.Alert.Warns(d.Cause) {
		add(warnClient, notifier.Notice{Check: c.Name,
			Title: fmt.Sprintf("%s: refused as client %s, admitted as a browser", c.Name, c.Client),
			Lines: append([]string{d.Summary}, d.Hints...)})
	}
	if rep.Error != "" {
		add(warnTokenSource, notifier.Notice{Check: c.Name, Title: c.Name + ": the run cannot start: its token source fails",
			Lines: []string{rep.Error, "Runs of this check record nothing until it works again."}})
	}
	return active
}

// warn posts a notice when a warning of the check starts and forgets it
// when it ends.
func warn(ctx context.Context, l ledger, route func(notifier.Message) []notifier.Message, c *config.Check, active map[string]notifier.Notice, now time.Time) error {
	for _, kind := range []string{warnCert, warnToken, warnTokenSource, warnClient} {
		n, on := active[kind]
		if !on {
			if err := l.EndWarning(ctx, c.Name, kind); err != nil {
				return err
			}
			continue
		}
		started, err := l.StartWarning(ctx, c.Name, kind, n.Title, now)
		if err != nil {
			return err
		}
		if started {
			m := notifier.Message{ID: fmt.Sprintf("warn/%s/%s/%d", c.Name, kind, now.UnixNano()), Kind: notifier.KindNotice,
				Channel: c.Alert.Channel, Notice: &n}
			if err := enqueue(ctx, l, route, m, "", now); err != nil {
				return err
			}
		}
	}
	return nil
}

// days is a duration for people: "5 days", "7h", "42m".
func days(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dm", int(d/time.Minute))
}

// staleAfter is how long a series counts without news: two of the check's
// intervals and its timeout, so one late or skipped run does not make it
// stale, and never less than two touches of a series that does not change.
func staleAfter(c *config.Check, now time.Time) time.Duration {
	return max(2*c.Interval(now), 2*touchEvery) + c.Timeout + time.Second
}
