package delivery

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wscanary/wscanary/notifier"
)

// A storm is many incidents opening at once (an edge blocking every check,
// a token revoked everywhere). Slack takes about one message a second per
// channel, so their messages trickle in over minutes; one summary goes
// first, so people see the whole of it at once. Nothing is dropped: every
// incident still gets its message.
const (
	stormThreshold = 10
	stormEvery     = 10 * time.Minute
	stormListed    = 500 // incidents read to word the summary
	stormLook      = 5 * time.Second
	// stormSettle is how long an incident's message waits before it is
	// posted, for a storm to show whole.
	stormSettle = time.Second
	// stormSettleMax bounds that wait, for a storm that does not end.
	stormSettleMax = 10 * time.Second
	// stormRetryMax caps the backoff between tries of a summary that could
	// not be posted, so that it is tried several times within stormHold.
	stormRetryMax = 15 * time.Second
	// stormHold bounds how long the incidents' messages wait for a summary
	// that cannot be posted: after that they go without it.
	stormHold = 2 * time.Minute
	// stormPostLease is how long the turn to post a summary is held while
	// the post is under way (beyond one notifyTimeout).
	stormPostLease = notifyTimeout + 5*time.Second
)

// summarizeStorm posts the summary when a storm is waiting in the outbox
// and none was posted for it yet: at each open while fewer than
// stormThreshold wait (a storm may be forming), then at most every stormLook. It
// reports whether the incidents' messages may go: not while a summary is
// owed (its post failed, Slack is likely down) and younger than
// stormHold, so that the summary still goes first once Slack answers.
func (d *Delivery) summarizeStorm(ctx context.Context, now time.Time) bool {
	owed := !d.stormOwed.IsZero()
	if !owed && now.Sub(d.stormLooked) < stormLook {
		return true
	}
	n, recs, err := d.store.PendingOpens(ctx, stormListed)
	if err != nil || n < stormThreshold {
		// Not a storm yet, and maybe one forming: the next open looks
		// again (a cheap look, fewer than stormThreshold rows), so that on
		// a busy machine, where a storm's runs end over seconds, its
		// opens do not go one by one before the summary.
		d.stormOwed, d.stormTries = time.Time{}, 0
		return true
	}
	d.stormLooked = now
	// One member of a fleet posts it: the turn is leased before posting,
	// kept once posted and given back when the post fails, for the next
	// look to try again. A member killed while posting holds it for
	// stormPostLease only: the restarted daemon still posts the summary.
	turn, leased, err := d.store.LeaseTurn(ctx, "storm_summary", now, stormEvery, stormPostLease)
	if err != nil || !turn {
		d.stormOwed, d.stormTries = time.Time{}, 0
		return true
	}
	byCause := map[string][]string{}
	for _, r := range recs {
		c := string(r.Decision.Cause)
		if r.Decision.Vendor != "" {
			c += " (" + r.Decision.Vendor + ")"
		}
		byCause[c] = append(byCause[c], r.Decision.Check)
	}
	causes := make([]string, 0, len(byCause))
	for c := range byCause {
		causes = append(causes, c)
	}
	slices.SortFunc(causes, func(a, b string) int { return len(byCause[b]) - len(byCause[a]) })
	note := notifier.Notice{Title: fmt.Sprintf("%d checks started failing at once", n)}
	for i, c := range causes {
		if i == 5 {
			note.Lines = append(note.Lines, fmt.Sprintf("… and %d more causes", len(causes)-5))
			break
		}
		checks := byCause[c]
		list := strings.Join(checks[:min(len(checks), 8)], ", ")
		if len(checks) > 8 {
			list += fmt.Sprintf(", … %d more", len(checks)-8)
		}
		note.Lines = append(note.Lines, fmt.Sprintf("%d × %s: %s", len(checks), c, list))
	}
	note.Lines = append(note.Lines, "Each gets its own message as fast as Slack takes them; nothing is dropped.")
	m := notifier.Message{ID: fmt.Sprintf("storm/%d", now.UnixNano()), Kind: notifier.KindNotice, Notice: &note}
	if _, err := d.notify(m); err != nil {
		if err := d.store.GiveBackTurn(ctx, "storm_summary", leased); err != nil {
			d.opts.Engine.StoreFails("meta", err)
		}
		if !owed {
			d.stormOwed = now
		}
		d.stormTries++
		if now.Sub(d.stormOwed) < stormHold {
			d.log.Warn("storm summary not posted; the incidents' messages wait for it", "err", err)
			return false
		}
		// Given up for this storm: its incidents go on their own, and the
		// next look is a storm later.
		d.log.Warn("storm summary not posted; giving up on it", "err", err, "owed_for", now.Sub(d.stormOwed).Round(time.Second).String())
		d.stormOwed, d.stormTries, d.stormLooked = time.Time{}, 0, now.Add(stormEvery-stormLook)
		return true
	}
	d.stormOwed, d.stormTries = time.Time{}, 0
	if err := d.store.KeepTurn(ctx, "storm_summary", leased, now); err != nil {
		d.opts.Engine.StoreFails("meta", err)
	}
	d.log.Warn("storm: many incidents opened at once", "incidents", n)
	return true
}

// A group's first message waits while its members still come and go: the
// checks of an edge change fail over seconds, and a cause read differently
// for a run (a rollout half done) makes a small group that empties into
// the big one. It goes groupSettle after the last change of its members,
// at most groupSettleMax after the group formed; a group that empties
// meanwhile is never posted (engine/group.go).
const (
	groupSettle    = 5 * time.Second
	groupSettleMax = 30 * time.Second
)

// groupSettling is when a group's first message may go (zero for any
// other message).
func groupSettling(open bool, v *notifier.Incident, now time.Time) time.Time {
	if !open || v == nil || v.Group == nil || v.Group.Changed.IsZero() {
		return time.Time{}
	}
	at := v.Group.Changed.Add(groupSettle)
	if capped := v.Opened.Add(groupSettleMax); at.After(capped) {
		at = capped
	}
	if !at.After(now) {
		return time.Time{}
	}
	return at
}
