package monitor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/notifier"
)

// Delivery of the outbox.
const (
	// notifyTimeout bounds one call to the notifier.
	notifyTimeout = 30 * time.Second
	// lease is how long a claimed message is this member's to deliver:
	// another member takes it over only after that (this one crashed).
	lease = 2 * notifyTimeout
	// maxBackoff caps the wait between delivery retries (Retry-After wins).
	maxBackoff = 2 * time.Minute
	// giveUpAfter drops a message that could not be delivered for this
	// long: a day-old message misleads more than it helps.
	giveUpAfter = 24 * time.Hour
)

// deliverLoop sends the outbox: messages this daemon decided alone first,
// then the store's. The store keeps each incident's messages in order, so a
// reply never overtakes its incident's message.
func (d *Daemon) deliverLoop() {
	defer d.loops.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := d.deliverDue()
		if d.store.Shared() {
			wait = min(wait, fleetPoll)
		}
		timer.Reset(wait)
		select {
		case <-d.ctx.Done():
			return
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// deliverDue delivers what is due and returns how long to wait before
// looking again.
func (d *Daemon) deliverDue() time.Duration {
	for d.ctx.Err() == nil {
		if m, incID, ok := d.mem.nextLocal(); ok {
			if wait, sent := d.deliverLocal(m, incID); !sent {
				return wait
			}
			continue
		}
		now := d.now()
		if !d.storeUsable(now) {
			return retryStoreEvery
		}
		ctx, cancel := context.WithTimeout(d.ctx, storeTimeout)
		e, err := d.store.Claim(ctx, d.member, now, lease)
		cancel()
		if err != nil {
			if d.ctx.Err() == nil {
				d.storeFails("claim", err)
			}
			return retryStoreEvery
		}
		d.storeWorks()
		if e == nil {
			return d.nextDue(now)
		}
		d.deliver(e, now)
	}
	return time.Hour
}

func (d *Daemon) nextDue(now time.Time) time.Duration {
	ctx, cancel := context.WithTimeout(d.ctx, storeTimeout)
	defer cancel()
	next, ok, err := d.store.NextDue(ctx)
	switch {
	case err != nil:
		return retryStoreEvery
	case !ok:
		return time.Hour
	}
	return max(next.Sub(now), 10*time.Millisecond)
}

// deliver sends one claimed message and records the result.
func (d *Daemon) deliver(e *store.Entry, now time.Time) {
	m := e.Message
	ctx := context.Background() // the result is recorded even while stopping
	if m.Kind == "" {
		d.log.Error("dropping an unreadable message from the outbox", "id", m.ID)
		d.store.Drop(ctx, e)
		return
	}
	if m.Kind == notifier.KindOpen && m.Target == "" {
		d.summarizeStorm(ctx, now)
	}
	del, err := d.notify(m)
	check := checkOf(m)
	if err == nil {
		if err := d.store.Done(ctx, e, del, d.now()); err != nil {
			// Delivered but not recorded: it will be delivered again (at
			// least once).
			d.storeFails("done", err)
		}
		if m.Kind == notifier.KindOpen && m.Target == "" {
			d.mem.setRoot(e.Incident, del)
		}
		d.metrics().NotificationSent(d.ctx, check, string(m.Kind), targetName(m.Target))
		d.log.Info("notification delivered", "check", check, "kind", m.Kind, "notifier", targetName(m.Target), "incident", e.Incident, "id", m.ID,
			"attempts", e.Attempts+1, "latency_ms", d.now().Sub(e.Enqueued).Milliseconds())
		return
	}
	d.metrics().NotificationFailed(d.ctx, string(m.Kind), targetName(m.Target))
	if d.ctx.Err() != nil {
		d.store.Retry(ctx, e, now) // stopping: it stays for the next start
		return
	}
	if notifier.Permanent(err) || errors.Is(err, errNoTarget) || now.Sub(e.Enqueued) > giveUpAfter {
		d.log.Error("notification dropped", "check", check, "kind", m.Kind, "id", m.ID, "attempts", e.Attempts+1, "err", err)
		d.store.Drop(ctx, e)
		return
	}
	wait := backoff(e.Attempts)
	if ra, ok := notifier.RetryAfter(err); ok {
		wait = ra
	}
	d.log.Warn("notification failed, will retry", "check", check, "kind", m.Kind, "id", m.ID,
		"attempts", e.Attempts+1, "retry_in", wait.String(), "err", err)
	if err := d.store.Retry(ctx, e, now.Add(wait)); err != nil {
		d.storeFails("retry", err)
	}
}

// deliverLocal sends a message decided while the store was away. It
// reports whether it is done with it, and otherwise how long to wait.
func (d *Daemon) deliverLocal(m notifier.Message, incidentID string) (time.Duration, bool) {
	del, err := d.notify(m)
	if err == nil {
		var root *notifier.Delivery
		if m.Kind == notifier.KindOpen && m.Target == "" {
			root = &del
		}
		d.mem.doneLocal(m.ID, true, root)
		d.metrics().NotificationSent(d.ctx, checkOf(m), string(m.Kind), targetName(m.Target))
		d.log.Info("notification delivered without the store", "check", checkOf(m), "kind", m.Kind, "incident", incidentID)
		return 0, true
	}
	d.metrics().NotificationFailed(d.ctx, string(m.Kind), targetName(m.Target))
	if notifier.Permanent(err) || errors.Is(err, errNoTarget) {
		d.log.Error("notification dropped", "check", checkOf(m), "kind", m.Kind, "err", err)
		d.mem.doneLocal(m.ID, true, nil)
		return 0, true
	}
	d.mem.doneLocal(m.ID, false, nil)
	wait := backoff(2)
	if ra, ok := notifier.RetryAfter(err); ok {
		wait = ra
	}
	return wait, false
}

// errNoTarget: the message's notifier is no longer configured.
var errNoTarget = errors.New("its notifier is no longer configured")

func (d *Daemon) notify(m notifier.Message) (notifier.Delivery, error) {
	n := d.notifierFor(m.Target)
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
func backoff(attempts int) time.Duration {
	if attempts > 10 {
		return maxBackoff
	}
	return min(time.Second<<attempts, maxBackoff)
}
