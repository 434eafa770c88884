package delivery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/notifier"
)

// Delivery of the outbox: one sender per notifier (sender.go), each with
// its own claims, backoff and pause, so a notifier's latency depends on
// that notifier only.
const (
	// notifyTimeout bounds one call to the notifier.
	notifyTimeout = 30 * time.Second
	// lease is how long a claimed message is this member's to deliver:
	// another member takes it over only after that (this one crashed).
	lease = 2 * notifyTimeout
	// maxBackoff caps the wait between delivery retries (Retry-After wins).
	maxBackoff = 2 * time.Minute
	// brokenBackoff caps the wait between tries of a notifier a person
	// must fix (a revoked token, a channel the bot left).
	brokenBackoff = 5 * time.Minute
	// giveUpAfter drops a message that could not be delivered for this
	// long: a day-old message misleads more than it helps.
	giveUpAfter = 24 * time.Hour
)

// sendLoop runs one notifier's deliveries until the daemon stops.
func (d *Delivery) sendLoop(s *sender) {
	defer d.loops.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := d.sendDue(s)
		if d.store.Shared() {
			wait = min(wait, fleetPoll)
		}
		timer.Reset(max(wait, time.Millisecond))
		select {
		case <-d.ctx.Done():
			s.flights.Wait()
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// sendDue starts the deliveries that are due, up to the sender's slots, and
// returns how long to wait before looking again (a delivery that ends
// wakes the loop sooner).
func (d *Delivery) sendDue(s *sender) time.Duration {
	for d.ctx.Err() == nil {
		now := d.now()
		if wait, held := s.held(now); held {
			return wait
		}
		if !s.take() {
			return time.Hour
		}
		m, incID, wait, ok := d.opts.Engine.NextLocal(s.target, now)
		if ok {
			if at := s.slot(m.Channel, now); at.After(now) {
				d.opts.Engine.DeferLocal(m.ID, at)
				s.release()
				continue
			}
			s.fly(func() { d.deliverLocal(s, m, incID) })
			continue
		}
		if !d.opts.Engine.StoreOK() {
			s.release()
			if wait > 0 {
				return min(wait, retryStoreEvery)
			}
			return retryStoreEvery
		}
		ctx, cancel := context.WithTimeout(d.ctx, storeTimeout)
		e, err := d.store.ClaimFor(ctx, d.member, s.target, now, lease)
		cancel()
		if err != nil {
			s.release()
			if d.ctx.Err() == nil {
				d.opts.Engine.StoreFails("claim", err)
			}
			return retryStoreEvery
		}
		d.opts.Engine.StoreWorks()
		if e == nil {
			s.release()
			next := d.nextDue(s.target, now)
			if wait > 0 {
				next = min(next, wait)
			}
			return next
		}
		// An update or reply of an incident never posted goes as its
		// message (notifier.AsOpen): it is an open for the storm as well.
		_, first := notifier.AsOpen(e.Message, e.Posted, e.View)
		open := s.target == "" && (e.Message.Kind == notifier.KindOpen || first)
		// While others wait with it, an incident's message waits until no
		// incident was decided for stormSettle (at most stormSettleMax
		// after its own): the runs of a storm end over seconds on a busy
		// machine, and the summary must see them all to go first. A lone
		// incident goes at once. Otherwise it waits only for its
		// channel's turn, when the channel is paced.
		at := later(e.Enqueued, d.opts.Engine.LastOpen()).Add(stormSettle)
		if capped := e.Enqueued.Add(stormSettleMax); at.After(capped) {
			at = capped
		}
		if !open || !at.After(now) || !d.othersWaiting() {
			at = s.slot(e.Message.Channel, now)
		}
		if g := groupSettling(open, e.View, now); g.After(at) {
			at = g
		}
		if at.After(now) {
			s.release()
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			err := d.store.Defer(ctx, e, at)
			cancel()
			if err != nil {
				d.opts.Engine.StoreFails("defer", err)
				return retryStoreEvery
			}
			continue
		}
		if open {
			// Before the first of many incidents, the summary of them all.
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			if !d.summarizeStorm(ctx, now) {
				// The summary is owed and Slack refused it: the whole
				// sender waits out the summary's own backoff (its messages
				// would fail the same way), and the summary is tried first
				// after it. The sender's streak may be long from earlier
				// failures; a backoff grown from it could outlast stormHold.
				s.failed()
				s.holdFor(now, backoffUpTo(d.stormTries, stormRetryMax))
				err := d.store.Defer(ctx, e, now)
				cancel()
				s.release()
				if err != nil {
					d.opts.Engine.StoreFails("defer", err)
					return retryStoreEvery
				}
				continue
			}
			cancel()
		}
		s.fly(func() { d.deliver(s, e, now) })
	}
	return time.Hour
}

// othersWaiting: more than one incident's message waits to be posted.
func (d *Delivery) othersWaiting() bool {
	ctx, cancel := context.WithTimeout(d.ctx, storeTimeout)
	defer cancel()
	several, err := d.store.SeveralOpensWaiting(ctx)
	return err == nil && several
}

func (d *Delivery) nextDue(target string, now time.Time) time.Duration {
	ctx, cancel := context.WithTimeout(d.ctx, storeTimeout)
	defer cancel()
	next, ok, err := d.store.NextDueFor(ctx, target)
	switch {
	case err != nil:
		return retryStoreEvery
	case !ok:
		return time.Hour
	}
	return max(next.Sub(now), 10*time.Millisecond)
}

// deliver sends one claimed message and records the result.
func (d *Delivery) deliver(s *sender, e *store.Entry, now time.Time) {
	// The result is recorded even while stopping, within storeTimeout from
	// when there is one to record: a store that hangs must not hold a stop.
	record := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), storeTimeout)
	}
	if e.Message.Kind == "" {
		d.log.Error("dropping an unreadable message from the outbox", "id", e.Message.ID)
		d.drop(s, e.Message, "unreadable", nil)
		ctx, cancel := record()
		defer cancel()
		d.store.Drop(ctx, e)
		return
	}
	if e.Message.Target == "" && !e.Posted && e.View != nil && e.View.InGroup != nil {
		// The incident joined a group before its own message went out
		// (the message was in flight when the group formed): the group's
		// message tells it, and it never gets one of its own.
		d.log.Debug("not posted: the incident is told by its group's message", "incident", e.Incident, "group", e.View.InGroup.ID, "id", e.Message.ID)
		ctx, cancel := record()
		defer cancel()
		if err := d.store.Drop(ctx, e); err != nil {
			d.opts.Engine.StoreFails("done", err)
		}
		return
	}
	if m, ok := notifier.AsOpen(e.Message, e.Posted, e.View); ok {
		d.log.Warn("the incident's message was never posted: posting it as it is now instead of an update alone",
			"check", checkOf(m), "incident", e.Incident, "id", m.ID, "was", e.Message.Kind)
		e.Message = m
	}
	m := e.Message
	del, err := d.notify(m)
	ctx, cancel := record()
	defer cancel()
	check := checkOf(m)
	if err == nil {
		if err := d.store.Done(ctx, e, del, d.now()); err != nil {
			// Delivered but not recorded: it will be delivered again (at
			// least once).
			d.opts.Engine.StoreFails("done", err)
		}
		if m.Kind == notifier.KindOpen && m.Target == "" {
			d.opts.Engine.SetRoot(e.Incident, del)
		}
		if s.works(d.log, d.metrics()) {
			// It answers again: the backlog goes now, not after backoffs
			// that grew while it was down.
			if err := d.store.Hasten(ctx, s.target, d.now()); err != nil {
				d.opts.Engine.StoreFails("hasten", err)
			}
			s.kick()
		}
		d.metrics().NotificationSent(d.ctx, check, string(m.Kind), s.name)
		d.log.Info("notification delivered", "check", check, "kind", m.Kind, "notifier", s.name, "incident", e.Incident, "id", m.ID,
			"attempts", e.Attempts+1, "latency_ms", d.now().Sub(e.Enqueued).Milliseconds())
		return
	}
	d.metrics().NotificationFailed(d.ctx, string(m.Kind), s.name)
	s.failed()
	if d.ctx.Err() != nil {
		d.store.Retry(ctx, e, now) // stopping: it stays for the next start
		return
	}
	wait, drop := d.judge(s, m, err, e.Attempts, e.Enqueued)
	if drop {
		d.store.Drop(ctx, e)
		return
	}
	d.log.Warn("notification failed, will retry", "check", check, "kind", m.Kind, "notifier", s.name, "id", m.ID,
		"attempts", e.Attempts+1, "retry_in", wait.String(), "err", err)
	if err := d.store.Retry(ctx, e, d.now().Add(wait)); err != nil {
		d.opts.Engine.StoreFails("retry", err)
	}
}

// judge decides what becomes of a message its notifier refused: dropped
// (only when it is older than giveUpAfter, when its notifier is gone from
// the configuration, or when a receiver said 410 Gone), else retried after
// the wait it returns. A refusal a person must fix holds the whole
// notifier: its next message would be refused the same way.
func (d *Delivery) judge(s *sender, m notifier.Message, err error, attempts int, enqueued time.Time) (time.Duration, bool) {
	now := d.now()
	var nerr *notifier.Error
	gone := errors.As(err, &nerr) && nerr.HTTPStatus == http.StatusGone && m.Target != ""
	switch {
	case errors.Is(err, errNoTarget):
		d.drop(s, m, "its notifier is no longer configured", err)
		return 0, true
	case now.Sub(enqueued) > giveUpAfter:
		d.drop(s, m, "undelivered for "+giveUpAfter.String(), err)
		return 0, true
	case gone:
		d.drop(s, m, "the receiver answered 410 Gone", err)
		return 0, true
	}
	if code, broken := notifier.Broken(err); broken {
		return s.breaks(d.log, d.metrics(), code, err, now), false
	}
	wait := backoff(attempts)
	if ra, ok := notifier.RetryAfter(err); ok {
		wait = ra
		if nerr != nil && nerr.HTTPStatus == http.StatusTooManyRequests {
			// Rate limited: every message of this notifier waits, and the
			// channel is paced for a while.
			s.slowDown(m.Channel, now, ra)
		}
	}
	return wait, false
}

// drop counts and logs a message given up on.
func (d *Delivery) drop(s *sender, m notifier.Message, why string, err error) {
	s.dropped.Add(1)
	d.metrics().NotificationDropped(d.ctx, string(m.Kind), s.name)
	args := []any{"check", checkOf(m), "kind", m.Kind, "notifier", s.name, "id", m.ID, "why", why}
	if err != nil {
		args = append(args, "err", err)
	}
	d.log.Error("notification dropped", args...)
}

// deliverLocal sends a message decided while the store was away, with the
// outbox's backoff between tries.
func (d *Delivery) deliverLocal(s *sender, m notifier.Message, incidentID string) {
	del, err := d.notify(m)
	if err == nil {
		var root *notifier.Delivery
		if m.Kind == notifier.KindOpen && m.Target == "" {
			root = &del
		}
		d.opts.Engine.DoneLocal(m.ID, true, root, time.Time{})
		s.works(d.log, d.metrics())
		d.metrics().NotificationSent(d.ctx, checkOf(m), string(m.Kind), s.name)
		d.log.Info("notification delivered without the store", "check", checkOf(m), "kind", m.Kind, "notifier", s.name, "incident", incidentID)
		return
	}
	d.metrics().NotificationFailed(d.ctx, string(m.Kind), s.name)
	s.failed()
	if d.ctx.Err() != nil {
		d.opts.Engine.DoneLocal(m.ID, false, nil, d.now())
		return
	}
	attempts, enqueued := d.opts.Engine.LocalInfo(m.ID)
	wait, drop := d.judge(s, m, err, attempts, enqueued)
	if drop {
		d.opts.Engine.DoneLocal(m.ID, true, nil, time.Time{})
		return
	}
	d.log.Warn("notification failed without the store, will retry", "check", checkOf(m), "kind", m.Kind, "notifier", s.name,
		"attempts", attempts+1, "retry_in", wait.String(), "err", err)
	d.opts.Engine.DoneLocal(m.ID, false, nil, d.now().Add(wait))
}

// errNoTarget: the message's notifier is no longer configured.
var errNoTarget = errors.New("its notifier is no longer configured")

func (d *Delivery) notify(m notifier.Message) (notifier.Delivery, error) {
	n := d.NotifierFor(m.Target)
	if n == nil {
		return notifier.Delivery{}, fmt.Errorf("notify %q: %w", m.Target, errNoTarget)
	}
	ctx, cancel := context.WithTimeout(d.ctx, notifyTimeout)
	defer cancel()
	return n.Notify(ctx, m)
}

// targetName names a target in logs and metrics: "slack" for the primary.
func targetName(t string) string {
	if t == "" {
		return "slack"
	}
	return t
}

func checkOf(m notifier.Message) string {
	switch {
	case m.Incident != nil:
		return m.Incident.Check
	case m.Notice != nil:
		return m.Notice.Check
	}
	return ""
}

// backoff doubles from one second up to maxBackoff.
func backoff(attempts int) time.Duration { return backoffUpTo(attempts, maxBackoff) }

// backoffUpTo doubles from one second up to limit.
func backoffUpTo(attempts int, limit time.Duration) time.Duration {
	if attempts > 10 {
		return limit
	}
	return min(time.Second<<max(attempts, 0), limit)
}
