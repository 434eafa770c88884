package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/incident"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/notifier"
)

// Groups (README, "Groups"; docs/architecture.md, section 3): incidents of
// several checks that open within group.wait of each other and share a
// key (the channel and group.by) become one message once group.min of them
// are open. A group is kept like an incident, under a name no check can
// have (groupCheck), so its message, thread, spacing and delivery are an
// incident's. Only the primary notifier tells a group; the others keep one
// alert, page or event per incident (notifier.ScopeMember).

// groupLock is locked, with the checks, by every transaction that may
// decide a group: on a shared store two members never form the same
// group twice (store.Tx.LockChecks, in one statement, so no deadlock).
const groupLock = "group:"

// groupCheck is the name a group is kept under: a check's name has no
// colon.
func groupCheck(key string) string { return "group:" + key }

// groupKey is what an incident of c shares with the others of its group:
// the channel its messages go to and group.by. "" when its incidents are
// never grouped (group: off, or the check's messages skip the primary
// notifier, which is the one that tells groups).
func groupKey(cfg *config.Config, c *config.Check, inc *incident.Incident, view notifier.Incident) string {
	if !grouped(cfg, c) {
		return ""
	}
	parts := []string{"channel=" + c.Alert.Channel}
	for _, by := range cfg.Group.By {
		var v string
		switch by {
		case "cause":
			v = string(inc.Cause)
		case "vendor":
			v = inc.Vendor
		case "pop":
			v = view.Attempt.Pop
		case "vantages", "route":
			var vs []string
			for _, cell := range inc.Cells {
				x := cell.Vantage
				if by == "route" {
					x = string(cell.Route)
				}
				if cell.Failing && !slices.Contains(vs, x) {
					vs = append(vs, x)
				}
			}
			slices.Sort(vs)
			v = strings.Join(vs, ",")
		default:
			name, _ := strings.CutPrefix(by, "label:")
			v = c.Labels[name]
		}
		parts = append(parts, by+"="+v)
	}
	return strings.Join(parts, " ")
}

// grouped: c's incidents may be part of a group.
func grouped(cfg *config.Config, c *config.Check) bool {
	return cfg != nil && !cfg.Group.Off && !c.NoGroup && (len(c.Alert.Notify) == 0 || slices.Contains(c.Alert.Notify, config.PrimaryNotifier))
}

// groupID names a new group: short, and safe in a button's value.
func groupID(key string, now time.Time) string {
	sum := sha256.Sum256([]byte(key))
	return incident.NewID("group-"+hex.EncodeToString(sum[:4]), now)
}

// grouping is what the group step decided for a member's own messages.
type grouping struct {
	// scope is the member's messages' (ScopeMember while it is in a group:
	// the primary notifier says nothing of it alone).
	scope notifier.Scope
	// ownMessage: the member left its group and needs a message of its
	// own (its old one is the group's, or was never posted).
	ownMessage bool
	// changed: the member joined or left a group, or its record changed.
	changed bool
}

// groupStep joins, forms or leaves a group for the decision d of a check
// whose record was rec, sets the member's pointer on view, and queues the
// group's messages. Members' own messages are the caller's.
func groupStep(ctx context.Context, l ledger, dc decision, d incident.Decision, rec *store.Record, view *notifier.Incident) (grouping, error) {
	inc := d.Incident
	if inc == nil {
		return grouping{}, nil
	}
	key := groupKey(dc.cfg, dc.check, inc, *view)
	if inc.Group == "" && (key == "" || inc.State != incident.Open) {
		return grouping{}, nil
	}
	if err := l.LockCheck(ctx, groupLock); err != nil {
		return grouping{}, err
	}
	if inc.Group != "" {
		g, err := l.IncidentByID(ctx, inc.Group)
		if err != nil {
			return grouping{}, err
		}
		if g != nil && g.Decision.State == incident.Open {
			// A member's key follows only a cause it says changed: while it
			// recovers place by place, what is left reads differently for
			// a run or two (the incident's thread does not hear of it
			// either), and that is no reason to leave or to move the group.
			if !slices.ContainsFunc(d.Events, func(e incident.Event) bool { return e.Kind == incident.CauseChanged }) && inc.GroupKey != "" {
				key = inc.GroupKey
			}
			return inGroup(ctx, l, dc, inc, view, rec, g, key)
		}
		inc.Group = "" // the group is gone (closed, or dropped by a reload)
		view.InGroup = nil
		if key == "" || inc.State != incident.Open {
			return grouping{changed: true}, nil
		}
	}
	inc.GroupKey = key
	// A message of its own went out (this incident's, not an earlier one's).
	posted := rec != nil && rec.Decision.ID == inc.ID && rec.Posted
	g, err := l.Incident(ctx, groupCheck(key))
	if err != nil {
		return grouping{}, err
	}
	if g != nil && g.Decision.State == incident.Open {
		// It joins the open group of its key: a late member, or one whose
		// cause settled on the group's. Nothing of its own is posted; a
		// message it has points at the group's from now on.
		if err := join(ctx, l, dc, inc, view, g, key, posted); err != nil {
			return grouping{}, err
		}
		return grouping{scope: notifier.ScopeMember, changed: true}, nil
	}
	// A group forms when an incident opens, or when its cause settles on
	// the key of others that opened with it (a change reaching the fleet's
	// regions one after the other reads differently at first).
	keyed := slices.ContainsFunc(d.Events, func(e incident.Event) bool {
		return e.Kind == incident.Opened || e.Kind == incident.Reopened || e.Kind == incident.CauseChanged
	})
	if !keyed {
		return grouping{}, nil
	}
	cands, err := l.OpenByKey(ctx, key, dc.now.Add(-dc.cfg.Group.Wait))
	if err != nil {
		return grouping{}, err
	}
	cands = slices.DeleteFunc(cands, func(r *store.Record) bool { return r.Decision.ID == inc.ID || r.Decision.Group != "" })
	if len(cands)+1 < dc.cfg.Group.Min {
		return grouping{}, nil // the first incidents post at once, as alone
	}
	return formGroup(ctx, l, dc, inc, view, key, cands, posted)
}

// join adds a member to the open group g and updates the group. What of
// the member's own waited to be posted is not; a message of its own that
// was posted (or is being posted) points at the group's from now on.
func join(ctx context.Context, l ledger, dc decision, inc *incident.Incident, view *notifier.Incident, g *store.Record, key string, posted bool) error {
	if err := l.PutMember(ctx, g.Decision.ID, lineOf(inc, *view, key, dc.now)); err != nil {
		return err
	}
	if err := foldInto(ctx, l, dc, inc, view, g.Decision, posted); err != nil {
		return err
	}
	return putGroup(ctx, l, dc, g.Decision, g, nil)
}

// foldInto makes the incident being decided a member of g as far as its
// own messages go, whether it joins an open group or its decision forms
// one: what waited of its own is not sent, and a message of its own that
// was posted (or is being posted) points at the group's.
func foldInto(ctx context.Context, l ledger, dc decision, inc *incident.Incident, view *notifier.Incident, g incident.Incident, posted bool) error {
	if _, err := l.DropQueued(ctx, inc.ID, ""); err != nil {
		return err
	}
	inFlight, err := l.Claimed(ctx, inc.ID, "")
	if err != nil {
		return err
	}
	joinView(inc, view, g, dc.now)
	if inc.Opened.Before(dc.now) {
		// It was told on its own before (a late member, or one whose cause
		// settled on the group's key): every notifier hears it joined (a
		// pointer on its Slack message, its page ended, its alert
		// labelled with the group).
		return folded(ctx, l, dc, dc.check, inc.ID)
	}
	if posted || inFlight {
		return pointAt(ctx, l, dc, inc.ID)
	}
	return nil
}

// foldedElsewhere is folded for every notifier but the primary.
func foldedElsewhere(ctx context.Context, l ledger, dc decision, m incident.Incident) error {
	cc := dc.cfg.Check(m.Check)
	if cc == nil || dc.routeOf == nil {
		return nil
	}
	u := notifier.Message{ID: m.ID + "/update/" + stamp(dc.now), Kind: notifier.KindUpdate, Channel: cc.Alert.Channel}
	for _, c := range dc.routeOf(cc)(u) {
		if c.Target == "" {
			continue
		}
		if err := l.Enqueue(ctx, c, m.ID, dc.now); err != nil {
			return err
		}
	}
	return nil
}

// folded queues the update that tells every notifier of check c that its
// incident is now part of a group.
func folded(ctx context.Context, l ledger, dc decision, c *config.Check, incidentID string) error {
	u := notifier.Message{ID: incidentID + "/update/" + stamp(dc.now), Kind: notifier.KindUpdate, Channel: c.Alert.Channel}
	var route func(notifier.Message) []notifier.Message
	if dc.routeOf != nil {
		route = dc.routeOf(c)
	}
	return enqueue(ctx, l, route, u, incidentID, dc.now)
}

// pointAt queues the update that turns a member's own message into its
// pointer at the group's.
func pointAt(ctx context.Context, l ledger, dc decision, incidentID string) error {
	u := notifier.Message{ID: incidentID + "/update/" + stamp(dc.now), Kind: notifier.KindUpdate, Channel: dc.check.Alert.Channel,
		Scope: notifier.ScopePrimary}
	return l.Enqueue(ctx, u, incidentID, dc.now)
}

// formGroup makes a group of cands (oldest first) and inc. The group's
// message is the first member's that was posted (updated in place), else
// a new one; the other members posted already point at it, and what
// waited of theirs is not sent.
func formGroup(ctx context.Context, l ledger, dc decision, inc *incident.Incident, view *notifier.Incident, key string, cands []*store.Record, posted bool) (grouping, error) {
	first := cands[0]
	g := incident.Incident{ID: groupID(key, dc.now), Check: groupCheck(key), State: incident.Open, Opened: dc.now,
		Cause: first.Decision.Cause, Vendor: first.Decision.Vendor}
	var anchor *store.Record
	for i, c := range cands {
		line := lineOf(&c.Decision, c.View, key, c.Decision.Opened)
		line.Joined = line.Joined.Add(time.Duration(i)) // the order they opened in
		if err := l.PutMember(ctx, g.ID, line); err != nil {
			return grouping{}, err
		}
		if anchor == nil && c.Posted && c.Root.TS != "" {
			anchor = c
		}
	}
	if err := l.PutMember(ctx, g.ID, lineOf(inc, *view, key, dc.now)); err != nil {
		return grouping{}, err
	}
	gv := notifier.Incident{Summary: first.View.Summary, Hints: first.View.Hints}
	if err := putGroup(ctx, l, dc, g, &store.Record{View: gv}, anchor); err != nil {
		return grouping{}, err
	}
	for _, c := range cands {
		if _, err := l.DropQueued(ctx, c.Decision.ID, ""); err != nil {
			return grouping{}, err
		}
		inFlight, err := l.Claimed(ctx, c.Decision.ID, "")
		if err != nil {
			return grouping{}, err
		}
		m := c.Decision
		v := c.View
		joinView(&m, &v, g, dc.now)
		if err := l.PutIncident(ctx, m, v, dc.now); err != nil {
			return grouping{}, err
		}
		if c == anchor || !(c.Posted || inFlight) {
			// Slack has nothing of it to point (or its message is the
			// group's); the other notifiers hear it joined.
			if err := foldedElsewhere(ctx, l, dc, m); err != nil {
				return grouping{}, err
			}
			continue
		}
		// Its message points at the group's from now on; every notifier
		// hears it joined.
		if cc := dc.cfg.Check(m.Check); cc != nil {
			if err := folded(ctx, l, dc, cc, m.ID); err != nil {
				return grouping{}, err
			}
		}
	}
	if err := foldInto(ctx, l, dc, inc, view, g, posted); err != nil {
		return grouping{}, err
	}
	return grouping{scope: notifier.ScopeMember, changed: true}, nil
}

// inGroup keeps a member's row in its group up to date. The group follows
// its members: when most of its open members share another key (the cause
// settled after a transition) and no other open group has that key, the
// group takes it. A member whose key differs from the group's for
// group.wait leaves it, told in the group's thread: into the open group of
// its key if there is one, else with its own message again. The group
// closes with its last open member.
func inGroup(ctx context.Context, l ledger, dc decision, inc *incident.Incident, view *notifier.Incident, rec, g *store.Record, key string) (grouping, error) {
	gi := g.Decision
	gkey := strings.TrimPrefix(gi.Check, "group:")
	prevLine, err := l.Member(ctx, gi.ID, inc.ID)
	if err != nil {
		return grouping{}, err
	}
	line := lineOf(inc, *view, key, dc.now)
	if prevLine != nil {
		line.Joined, line.Away = prevLine.Joined, prevLine.Away
	}
	var events []notifier.Event
	if line.Open && key != gkey && key != "" {
		counts, err := l.GroupCounts(ctx, gi.ID)
		if err != nil {
			return grouping{}, err
		}
		if prevLine == nil || !prevLine.Open || prevLine.Key != key {
			counts.OpenByKey[key]++ // as it will be
			if prevLine != nil && prevLine.Open {
				counts.OpenByKey[prevLine.Key]--
			}
		}
		other, err := l.Incident(ctx, groupCheck(key))
		if err != nil {
			return grouping{}, err
		}
		if 2*counts.OpenByKey[key] > max(counts.Open, 1) && (other == nil || other.Decision.State != incident.Open) {
			events = append(events, notifier.Event{Kind: notifier.EventCauseChanged, At: dc.now, FromCause: gi.Cause, FromVendor: gi.Vendor,
				ToCause: inc.Cause, ToVendor: inc.Vendor})
			gi.Check, gi.Cause, gi.Vendor, gkey = groupCheck(key), inc.Cause, inc.Vendor, key
			g.View.Summary, g.View.Hints = view.Summary, view.Hints
		}
	}
	if line.Open && key != gkey && key != "" && len(events) == 0 {
		// Another open group has its key: it moves there now, without a
		// word in either thread (the counts say it).
		other, err := l.Incident(ctx, groupCheck(key))
		if err != nil {
			return grouping{}, err
		}
		if other != nil && other.Decision.State == incident.Open && other.Decision.ID != gi.ID {
			if err := l.DropMember(ctx, gi.ID, inc.ID); err != nil {
				return grouping{}, err
			}
			if err := putGroup(ctx, l, dc, gi, g, nil); err != nil {
				return grouping{}, err
			}
			inc.GroupKey = key
			posted := rec != nil && rec.Posted && rec.Root != g.Root
			if err := join(ctx, l, dc, inc, view, other, key, posted); err != nil {
				return grouping{}, err
			}
			return grouping{scope: notifier.ScopeMember, changed: true}, nil
		}
	}
	switch {
	case !line.Open || line.Key == gkey:
		line.Away = time.Time{}
	case line.Away.IsZero():
		line.Away = dc.now
	}
	if line.Open && line.Key != gkey && dc.now.Sub(line.Away) >= dc.cfg.Group.Wait {
		return leave(ctx, l, dc, inc, view, rec, g, gi, key, events)
	}
	lineChanged := prevLine == nil || *prevLine != line
	if lineChanged {
		if err := l.PutMember(ctx, gi.ID, line); err != nil {
			return grouping{}, err
		}
	}
	// Every run of every member comes here: the group is read and written
	// again only when this member's row or the group's cause changed.
	if lineChanged || len(events) > 0 {
		if err := putGroup(ctx, l, dc, gi, g, nil, events...); err != nil {
			return grouping{}, err
		}
	}
	changed := lineChanged || inc.GroupKey != key
	inc.GroupKey = key // the member's own key, which its next decisions keep
	joinView(inc, view, gi, dc.now)
	return grouping{scope: notifier.ScopeMember, changed: changed}, nil
}

// leave takes a member out of its group, told in the group's thread: it
// has a message of its own again.
func leave(ctx context.Context, l ledger, dc decision, inc *incident.Incident, view *notifier.Incident, rec, g *store.Record,
	gi incident.Incident, key string, events []notifier.Event) (grouping, error) {
	if err := l.DropMember(ctx, gi.ID, inc.ID); err != nil {
		return grouping{}, err
	}
	events = append(events, notifier.Event{Kind: notifier.EventLeft, At: dc.now, Member: inc.Check, ToCause: inc.Cause, ToVendor: inc.Vendor})
	if err := putGroup(ctx, l, dc, gi, g, nil, events...); err != nil {
		return grouping{}, err
	}
	inc.Group, inc.GroupKey = "", key
	view.InGroup = nil
	// A new message when its old one is the group's (or was never
	// posted); else its own message is updated back.
	own := rec == nil || !rec.Posted || rec.Root.TS == "" || rec.Root == g.Root
	return grouping{ownMessage: own, changed: true}, nil
}

// putGroup writes the group as its members now are, closes it when none
// is open any more, and queues its messages: its first (an open, or an
// update of the anchor's message it takes), an update when what it shows
// changed, and replies for events (a member that left, the cause the
// group took, the recovery).
func putGroup(ctx context.Context, l ledger, dc decision, g incident.Incident, rec *store.Record, anchor *store.Record, events ...notifier.Event) error {
	return putGroupAs(ctx, l, dc, g, rec, anchor, false, events...)
}

// putGroupAs is putGroup; force updates the message even when its counts
// did not change (a person acknowledged or silenced the group).
func putGroupAs(ctx context.Context, l ledger, dc decision, g incident.Incident, rec *store.Record, anchor *store.Record, force bool, events ...notifier.Event) error {
	prev := rec.View
	isNew := prev.Group == nil
	counts, err := l.GroupCounts(ctx, g.ID)
	if err != nil {
		return err
	}
	emptied := counts.Members == 0
	if counts.Open == 0 && g.State == incident.Open {
		g.State, g.Closed = incident.Closed, dc.now
		if !emptied {
			events = append(events, notifier.Event{Kind: notifier.EventResolved, At: dc.now, Lasted: dc.now.Sub(g.Opened)})
		}
	}
	if emptied && !isNew {
		// Every member moved to another group (or left): a message that
		// was never posted is not; one that was says where they went.
		inFlight, err := l.Claimed(ctx, g.ID, "")
		if err != nil {
			return err
		}
		if !rec.Posted && !inFlight {
			if _, err := l.DropQueued(ctx, g.ID, ""); err != nil {
				return err
			}
			v := prev
			v.State, v.Closed = notifier.StateResolved, dc.now
			return l.PutIncident(ctx, g, v, dc.now)
		}
	}
	gv := &notifier.GroupView{Key: keyText(g.Check), Checks: counts.Members, Failing: counts.Open, Emptied: emptied}
	if gv.FailingNames, err = l.GroupNames(ctx, g.ID, true, notifier.GroupNames); err != nil {
		return err
	}
	if gv.AgainNames, err = l.GroupNames(ctx, g.ID, false, notifier.GroupNames); err != nil {
		return err
	}
	if gv.Pops, err = l.GroupPops(ctx, g.ID, notifier.GroupNames); err != nil {
		return err
	}
	if u := dc.cfg.StatusURL; u != "" {
		gv.Link = u + "?group=" + g.ID
	}
	v := prev
	v.ID, v.Check, v.Opened, v.Closed, v.At, v.Cause, v.Vendor = g.ID, g.Check, g.Opened, g.Closed, dc.now, g.Cause, g.Vendor
	v.State = notifier.StateOpen
	if g.State == incident.Closed {
		v.State = notifier.StateResolved
	}
	if g.Acked != nil {
		v.AckedBy, v.AckedAt = g.Acked.By, g.Acked.At
	}
	if prev.Group != nil {
		gv.Changed = prev.Group.Changed
	}
	if isNew || prev.Group.Checks != gv.Checks || prev.Group.Failing != gv.Failing {
		gv.Changed = dc.now
	}
	v.Group = gv
	if !isNew && !force && reflect.DeepEqual(prev.Group, v.Group) && prev.State == v.State && prev.Check == v.Check && len(events) == 0 {
		return nil // nothing a person would see changed
	}
	if err := l.PutIncident(ctx, g, v, dc.now); err != nil {
		return err
	}
	ch := dc.check.Alert.Channel
	var msgs []notifier.Message
	switch {
	case isNew && anchor != nil:
		if err := l.SetRoot(ctx, g.ID, anchor.Root); err != nil {
			return err
		}
		msgs = append(msgs, notifier.Message{ID: g.ID + "/update/" + stamp(dc.now), Kind: notifier.KindUpdate, Channel: ch})
	case isNew:
		msgs = append(msgs, notifier.Message{ID: g.ID + "/open", Kind: notifier.KindOpen, Channel: ch})
	default:
		msgs = append(msgs, notifier.Message{ID: g.ID + "/update/" + stamp(dc.now), Kind: notifier.KindUpdate, Channel: ch})
	}
	if len(events) > 0 {
		vv := v
		msgs = append(msgs, notifier.Message{ID: g.ID + "/reply/" + stamp(dc.now), Kind: notifier.KindReply, Channel: ch, Incident: &vv, Events: events})
	}
	for _, m := range msgs {
		m.Scope = notifier.ScopeGroup
		if m.Kind == notifier.KindUpdate {
			m.Spacing = dc.cfg.Group.Interval
		}
		if err := enqueue(ctx, l, dc.route, m, g.ID, dc.now); err != nil {
			return err
		}
	}
	return nil
}

// lineOf is a member's row in its group, with its own key now.
func lineOf(inc *incident.Incident, view notifier.Incident, key string, joined time.Time) store.GroupMember {
	m := store.GroupMember{GroupMember: notifier.GroupMember{Check: inc.Check, Incident: inc.ID, Open: inc.State == incident.Open, Key: key,
		Pop: view.Attempt.Pop}, Joined: joined}
	if m.Open && len(view.Cells) > 0 {
		m.Failing = notifier.Failing(view)
	}
	return m
}

// joinView marks a member as part of g, on its record and its view.
func joinView(inc *incident.Incident, view *notifier.Incident, g incident.Incident, now time.Time) {
	joined := now
	if view.InGroup != nil && view.InGroup.ID == g.ID {
		joined = view.InGroup.Joined
	}
	inc.Group = g.ID
	view.InGroup = &notifier.GroupRef{ID: g.ID, Key: keyText(g.Check), Joined: joined}
}

// keyText is a group's key for people: what its members share, without
// the parts that say nothing ("cause=auth_missing vendor=nginx").
func keyText(check string) string {
	var out []string
	for _, p := range strings.Fields(strings.TrimPrefix(check, "group:")) {
		if _, v, _ := strings.Cut(p, "="); v != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

func stamp(t time.Time) string { return fmt.Sprint(t.UnixNano()) }

// RefreshGroup changes the open group groupID with change (a click on its
// message: acknowledge, silence), then updates its message. A group that
// closed meanwhile is left alone.
func (e *Engine) RefreshGroup(ctx context.Context, groupID string, change func(context.Context, *store.Tx, *store.Record) (bool, error)) error {
	cfg := e.config()
	t := &tee{mem: e.mem}
	err := e.store.Update(ctx, func(tx *store.Tx) error {
		t.Tx, t.staged, t.queued, t.opens = tx, nil, 0, 0
		if err := tx.LockChecks(ctx, []string{groupLock}); err != nil {
			return err
		}
		g, err := tx.IncidentByID(ctx, groupID)
		if err != nil || g == nil || g.Decision.State != incident.Open {
			return err
		}
		if changed, err := change(ctx, tx, g); err != nil || !changed {
			return err
		}
		if g, err = tx.IncidentByID(ctx, groupID); err != nil {
			return err
		}
		// The channel is its members': any one's check says it.
		names, err := tx.GroupNames(ctx, groupID, true, 1)
		if err != nil || len(names) == 0 {
			return err
		}
		c := cfg.Check(names[0])
		if c == nil {
			return nil
		}
		return putGroupAs(ctx, t, decision{cfg: cfg, check: c, now: e.now()}, g.Decision, g, nil, true)
	})
	if err != nil {
		return err
	}
	t.commit()
	if t.queued > 0 {
		e.kick()
	}
	return nil
}
