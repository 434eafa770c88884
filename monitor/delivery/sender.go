package delivery

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wscanary/wscanary/monitor/telemetry"
	"github.com/wscanary/wscanary/notifier"
)

// Each notifier has a sender of its own. It bounds that notifier's
// messages in flight (different incidents in parallel: the outbox hands
// out one message of an incident at a time, so each incident's messages
// stay in order), pauses it alone when it is rate limited or broken, and
// paces a channel after Slack said it was going too fast.
const (
	// sendSlots bounds one notifier's messages in flight. With Slack
	// taking 10 s per call, 16 slots tell 200 incidents in about two
	// minutes.
	sendSlots = 16
	// paceEvery spaces the messages of a channel after a 429 (Slack takes
	// about one message a second per channel), for pacedFor.
	paceEvery = time.Second
	pacedFor  = time.Minute
)

// sender is one notifier's delivery state. Its loop is sendLoop.
type sender struct {
	target  string // "" the primary notifier
	name    string // in logs and metrics
	wake    chan struct{}
	flights sync.WaitGroup
	// launched counts the deliveries started, dropped those given up on.
	launched atomic.Int64
	dropped  atomic.Int64

	mu    sync.Mutex
	busy  int
	pause time.Time // no new delivery before
	// broken is the refusal a person must fix (nil while it works), and
	// since when.
	broken      error
	brokenSince time.Time
	// streak counts the deliveries that failed since the last that went
	// through.
	streak   int
	paced    map[string]time.Time // channel -> paced until
	nextSlot map[string]time.Time // channel -> its next message not before
}

func newSender(target string) *sender {
	return &sender{target: target, name: targetName(target), wake: make(chan struct{}, 1),
		paced: map[string]time.Time{}, nextSlot: map[string]time.Time{}}
}

func (s *sender) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// held reports whether the sender is paused, and for how long.
func (s *sender) held(now time.Time) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.pause.Sub(now); d > 0 {
		return d, true
	}
	return 0, false
}

// take reserves a slot for a delivery; false when all are busy.
func (s *sender) take() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy >= sendSlots {
		return false
	}
	s.busy++
	return true
}

// release frees a slot taken for nothing (nothing was due).
func (s *sender) release() {
	s.mu.Lock()
	s.busy--
	s.mu.Unlock()
}

// landed frees the slot of a delivery that ended and wakes the loop: the
// next message of its incident may be due now.
func (s *sender) landed() {
	s.release()
	s.kick()
}

// fly runs one delivery in a slot taken with take.
func (s *sender) fly(deliver func()) {
	s.flights.Add(1)
	s.launched.Add(1)
	go func() {
		defer s.flights.Done()
		defer s.landed()
		deliver()
	}()
}

// slot is when a message to channel may go: now (the turn is taken),
// unless the channel is paced and its next turn is later.
func (s *sender) slot(channel string, now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paced[channel].Before(now) {
		return now
	}
	if next := s.nextSlot[channel]; next.After(now) {
		return next
	}
	s.nextSlot[channel] = now.Add(paceEvery)
	return now
}

// slowDown: the notifier asked for ra before the next message (a 429).
// Every delivery waits that long, and the channel is paced for a while.
func (s *sender) slowDown(channel string, now time.Time, ra time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pause = later(s.pause, now.Add(ra))
	s.paced[channel] = now.Add(ra + pacedFor)
	s.nextSlot[channel] = later(s.nextSlot[channel], now.Add(ra))
}

// breaks records a refusal a person must fix and holds the whole
// notifier: it is tried again with a backoff capped at brokenBackoff, and
// said once in the log, not once per message.
func (s *sender) breaks(log *slog.Logger, m *telemetry.Metrics, code string, err error, now time.Time) time.Duration {
	// The caller counted this failure (failed) before judging it.
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.broken == nil
	if first {
		s.brokenSince = now
	}
	s.broken = err
	wait := backoffUpTo(s.streak, brokenBackoff)
	s.pause = later(s.pause, now.Add(wait))
	if first {
		log.Error("notifier broken: holding its messages until it works again or the configuration is reloaded",
			"notifier", s.name, "code", code, "err", err)
		m.NotifierBroken(s.name, true)
	}
	return wait
}

// outageStreak is how many deliveries in a row must fail for the notifier
// to count as having been down: then, when one goes through, the backlog
// sitting out backoffs that grew meanwhile is due at once. One message
// refused now and then is no outage, and keeps its own backoff.
const outageStreak = 3

// holdFor pauses every delivery of the sender for d.
func (s *sender) holdFor(now time.Time, d time.Duration) {
	s.mu.Lock()
	s.pause = later(s.pause, now.Add(d))
	s.mu.Unlock()
}

// failed notes a delivery that failed.
func (s *sender) failed() {
	s.mu.Lock()
	s.streak++
	s.mu.Unlock()
}

// works clears a broken state after a delivery went through, and reports
// whether the notifier had been down (broken, or failing outageStreak
// times in a row): its backlog's backoffs may now be cut.
func (s *sender) works(log *slog.Logger, m *telemetry.Metrics) bool {
	s.mu.Lock()
	was, since, streak := s.broken, s.brokenSince, s.streak
	s.broken, s.streak = nil, 0
	s.mu.Unlock()
	if was != nil {
		log.Info("notifier works again; delivering what it held", "notifier", s.name, "broken_for", time.Since(since).Round(time.Second).String())
		m.NotifierBroken(s.name, false)
	}
	return was != nil || streak >= outageStreak
}

// reset ends the hold of a broken notifier: the configuration was
// reloaded, and the fix may be in it (a rate limit's pause stays).
func (s *sender) reset() {
	s.mu.Lock()
	if s.broken != nil {
		s.pause, s.streak = time.Time{}, 0
	}
	s.mu.Unlock()
	s.kick()
}

// NotifierStatus is a notifier's delivery state in /status.
type NotifierStatus struct {
	Name string `json:"name"`
	// Broken is the refusal a person must fix, with its Code, since when.
	Broken   string    `json:"broken,omitempty"`
	Code     string    `json:"code,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	InFlight int       `json:"in_flight"`
	// Dropped counts the messages given up on since the start.
	Dropped int64 `json:"dropped"`
}

func (s *sender) status() NotifierStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := NotifierStatus{Name: s.name, InFlight: s.busy, Dropped: s.dropped.Load()}
	if s.broken != nil {
		st.Code, _ = notifier.Broken(s.broken)
		st.Broken, st.Since = s.broken.Error(), s.brokenSince
	}
	return st
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
