package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/wscanary/wscanary/monitor/incident"
	"github.com/wscanary/wscanary/notifier"
)

// The engine's side of a fleet: the incidents other members opened, and
// the notice a member alone gives (heartbeats are the fleet package's).

// refreshIncidents brings the fleet's open incidents into memory, so that
// this member decides them with its runs, and knows them (and where their
// messages are) if the store goes away.
func (e *Engine) refreshIncidents(ctx context.Context) {
	open, err := e.store.OpenIncidents(ctx)
	if err != nil {
		return
	}
	cfg := e.config()
	configured := map[string]bool{}
	for i := range cfg.Checks {
		configured[cfg.Checks[i].Name] = true
	}
	e.mem.mu.Lock()
	defer e.mem.mu.Unlock()
	for check, r := range open {
		if !configured[check] || e.mem.dirty[check] {
			continue
		}
		if cur, ok := e.mem.incidents[check]; !ok || cur.Decision.ID != r.Decision.ID || cur.Decision.State != incident.Open {
			e.mem.incidents[check] = r
		}
	}
}

// aloneNotice is said once when a member of a fleet starts alerting on its
// own view because the store is unreachable.
func (e *Engine) aloneNotice(now time.Time) {
	h := &e.health
	h.mu.Lock()
	said, since := h.aloneSaid, h.since
	h.aloneSaid = true
	h.mu.Unlock()
	if said || !e.store.Shared() {
		return
	}
	n := notifier.Notice{Title: fmt.Sprintf("wscanary in %s cannot reach the fleet store", e.member), Lines: []string{
		fmt.Sprintf("Since %s its writes to %s fail. It keeps probing and now alerts on what it alone sees; incidents the fleet had open are left as they are.",
			Stamp(since), e.store.Where()),
		"When the store is back it hands over what it decided and posts nothing twice."}}
	enqueue(context.Background(), e.mem, e.opts.Router.For(e.opts.Router.All()), notifier.Message{ID: fmt.Sprintf("member/%s/alone/%d", e.member, since.UnixMilli()),
		Kind: notifier.KindNotice, Notice: &n}, "", now)
	e.log.Warn("the fleet store is unreachable: alerting on this member's own view", "since", since)
}

// Stamp is a time in a fleet notice.
func Stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
