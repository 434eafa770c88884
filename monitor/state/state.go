// Package state owns what the daemon must not forget: the last status of
// every series, the alerts that are open (and where Slack put them), and the
// outbox of notifications not yet delivered. It decides transitions (pure
// with respect to the clock: callers pass now) and persists everything in
// one JSON file written atomically, so a crash or restart neither repeats
// nor loses an alert.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/wscanary/wscanary/monitor/report"
)

// FileName is the state file inside the state directory.
const FileName = "state.json"

const fileVersion = 1

// DefaultMaxPending bounds the outbox.
const DefaultMaxPending = 1000

// ErrOutboxFull is returned by Enqueue when the outbox is at its bound and
// holds no reminder to drop.
var ErrOutboxFull = errors.New("state: outbox full")

// Key names a series: the configured variant of one check, from one
// vantage, on one route.
type Key struct {
	Check   string       `json:"check"`
	Vantage string       `json:"vantage"`
	Route   report.Route `json:"route"`
}

func (k Key) String() string { return k.Check + "/" + k.Vantage + "/" + string(k.Route) }

// Rule is a check's alert rule.
type Rule struct {
	// On are the alerting statuses.
	On []int
	// After is how many consecutive runs at an alerting status open an
	// alert (values below 1 count as 1).
	After int
	// Remind repeats an open alert this often; 0 never.
	Remind time.Duration
}

func (r Rule) alerting(status int) bool {
	for _, s := range r.On {
		if s == status {
			return true
		}
	}
	return false
}

// Series is one series' memory.
type Series struct {
	Key Key `json:"key"`
	// Status is the last observed status (0: no HTTP answer).
	Status int `json:"status"`
	// Since is when the series entered Status.
	Since time.Time `json:"since"`
	// Count is the number of consecutive runs at Status.
	Count int `json:"count"`
	// Before is the status before the current streak: the "old" of an
	// alert that the streak opens.
	Before  int          `json:"before"`
	Cause   report.Cause `json:"cause"`
	TraceID string       `json:"trace_id"`
	// Alert is set while an alert is open.
	Alert   *OpenAlert `json:"alert,omitempty"`
	Updated time.Time  `json:"updated"`
}

// OpenAlert is an alert that has not recovered.
type OpenAlert struct {
	// Status is the alerting status the alert is about (updated by a change).
	Status int       `json:"status"`
	Opened time.Time `json:"opened"`
	// Channel and TS locate the posted alert once delivered.
	Channel string `json:"channel,omitempty"`
	TS      string `json:"ts,omitempty"`
	// LastSent is when the alert, a change or a reminder was last queued.
	LastSent time.Time `json:"last_sent"`
	EventID  string    `json:"event_id,omitempty"`
}

// TransitionKind is what a transition means for people.
type TransitionKind string

const (
	KindAlert    TransitionKind = "alert"
	KindChange   TransitionKind = "change"
	KindRecovery TransitionKind = "recovery"
	KindReminder TransitionKind = "reminder"
)

// Transition is what Observe reports when a run completes one.
type Transition struct {
	Kind TransitionKind
	Key  Key
	// Old -> New is the status change (equal for a reminder).
	Old, New int
	// Since is when the series entered New (alert, change, reminder) or
	// when the alert opened (recovery).
	Since time.Time
	// Alert is the open alert as it was before this transition (for a
	// recovery: the alert being closed, with its Slack thread).
	Alert OpenAlert
}

// Pending is a queued notification. The payload is opaque here: the
// monitor stores its notifier events as JSON, so state does not depend on
// the notifier.
type Pending struct {
	ID       string          `json:"id"`
	Key      Key             `json:"key"`
	Kind     TransitionKind  `json:"kind,omitempty"`
	Enqueued time.Time       `json:"enqueued"`
	Attempts int             `json:"attempts"`
	NextTry  time.Time       `json:"next_try"`
	Payload  json.RawMessage `json:"payload"`
}

// Options configure Open.
type Options struct {
	Logger *slog.Logger
	// MaxPending bounds the outbox; 0 means DefaultMaxPending.
	MaxPending int
}

// Store is the daemon's memory. It is safe for concurrent use. Mutations
// mark it dirty; the caller decides when to Save (the monitor saves after
// every run and every delivery, and enqueues before it sends, so a crash
// loses nothing).
type Store struct {
	path string
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	series map[Key]*Series
	outbox []Pending
	dirty  bool
}

type file struct {
	Version int       `json:"version"`
	Series  []Series  `json:"series"`
	Outbox  []Pending `json:"outbox"`
}

// Open loads dir/state.json. A missing file is an empty store. A file that
// cannot be parsed is moved aside (state.json.corrupt-UNIX) with a warning:
// losing history is better than a monitor that does not start. A directory
// that cannot be created or written is an error.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir %s: %w", dir, err)
	}
	s := &Store{path: filepath.Join(dir, FileName), opts: opts, log: opts.Logger, series: map[Key]*Series{}}
	// A temp file is what a crash during Save leaves; the real file is intact.
	os.Remove(s.path + ".tmp")
	b, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", s.path, err)
	default:
		var f file
		if err := json.Unmarshal(b, &f); err != nil || f.Version != fileVersion {
			aside := fmt.Sprintf("%s.corrupt-%d", s.path, time.Now().Unix())
			if rerr := os.Rename(s.path, aside); rerr != nil {
				return nil, fmt.Errorf("move aside corrupt %s: %w", s.path, rerr)
			}
			why := "unsupported version"
			if err != nil {
				why = err.Error()
			}
			s.log.Warn("state file unreadable: moved aside, starting with empty state", "file", s.path, "moved_to", aside, "err", why)
			break
		}
		for i := range f.Series {
			sr := f.Series[i]
			s.series[sr.Key] = &sr
		}
		s.outbox = f.Outbox
	}
	// Prove the directory is writable now, not at the first alert.
	probe := filepath.Join(dir, ".write-test")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		return nil, fmt.Errorf("state dir %s is not writable: %w", dir, err)
	}
	os.Remove(probe)
	return s, nil
}

// Observe applies one run's status for a series and returns the
// transition it completes, or nil. Rules (DESIGN.md, Alerts): an alert
// opens when the status is alerting for Rule.After consecutive runs; while
// open, a different alerting status (after the same count) is a change; the
// first 101 recovers; a status that is neither (500, 0) leaves an open alert
// open and never opens one. A reminder comes every Rule.Remind while open.
func (s *Store) Observe(k Key, rule Rule, status int, cause report.Cause, traceID string, now time.Time) *Transition {
	after := max(rule.After, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirty = true
	sr, ok := s.series[k]
	if !ok {
		sr = &Series{Key: k, Status: status, Since: now, Count: 0}
		s.series[k] = sr
	}
	if sr.Status != status || sr.Count == 0 {
		if ok && sr.Status != status {
			sr.Before = sr.Status
		}
		if sr.Status != status {
			sr.Since = now
		}
		sr.Status, sr.Count = status, 0
	}
	sr.Count++
	sr.Cause, sr.TraceID, sr.Updated = cause, traceID, now

	a := sr.Alert
	switch {
	case status == 101 && a != nil:
		closed := *a
		sr.Alert = nil
		return &Transition{Kind: KindRecovery, Key: k, Old: closed.Status, New: status, Since: closed.Opened, Alert: closed}
	case rule.alerting(status) && a == nil && sr.Count == after:
		sr.Alert = &OpenAlert{Status: status, Opened: now, LastSent: now}
		return &Transition{Kind: KindAlert, Key: k, Old: sr.Before, New: status, Since: sr.Since}
	case rule.alerting(status) && a != nil && a.Status != status && sr.Count == after:
		prev := *a
		a.Status, a.LastSent = status, now
		return &Transition{Kind: KindChange, Key: k, Old: prev.Status, New: status, Since: sr.Since, Alert: prev}
	case a != nil && rule.Remind > 0 && now.Sub(a.LastSent) >= rule.Remind:
		a.LastSent = now
		return &Transition{Kind: KindReminder, Key: k, Old: a.Status, New: a.Status, Since: a.Opened, Alert: *a}
	}
	return nil
}

// MarkDelivered records where an open alert was posted, so a recovery can
// reply in its thread even after a restart. It does nothing when the alert
// has already closed.
func (s *Store) MarkDelivered(k Key, eventID, channel, ts string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sr, ok := s.series[k]
	if !ok || sr.Alert == nil || sr.Alert.TS != "" {
		return
	}
	sr.Alert.Channel, sr.Alert.TS, sr.Alert.EventID = channel, ts, eventID
	s.dirty = true
}

// Get returns a copy of one series.
func (s *Store) Get(k Key) (Series, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sr, ok := s.series[k]
	if !ok {
		return Series{}, false
	}
	return copySeries(sr), true
}

func copySeries(sr *Series) Series {
	c := *sr
	if sr.Alert != nil {
		a := *sr.Alert
		c.Alert = &a
	}
	return c
}

// Snapshot returns every series, sorted by key.
func (s *Store) Snapshot() []Series {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Series, 0, len(s.series))
	for _, sr := range s.series {
		out = append(out, copySeries(sr))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out
}

// Retain drops the series for which keep is false: after a reload, the
// series of removed checks. Unchanged checks keep their state.
func (s *Store) Retain(keep func(Key) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.series {
		if !keep(k) {
			delete(s.series, k)
			s.dirty = true
		}
	}
}

// Enqueue appends a notification to the outbox. At the bound it drops the
// oldest reminder (a newer one will come); with none, it refuses.
func (s *Store) Enqueue(p Pending) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.outbox) >= s.opts.MaxPending {
		i := -1
		for j, q := range s.outbox {
			if q.Kind == KindReminder {
				i = j
				break
			}
		}
		if i < 0 {
			return ErrOutboxFull
		}
		s.log.Warn("outbox full: dropping the oldest reminder", "series", s.outbox[i].Key.String())
		s.outbox = append(s.outbox[:i], s.outbox[i+1:]...)
	}
	s.outbox = append(s.outbox, p)
	s.dirty = true
	return nil
}

// Pending returns the outbox in order (oldest first).
func (s *Store) Pending() []Pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Pending(nil), s.outbox...)
}

// Ack removes a delivered (or abandoned) notification.
func (s *Store) Ack(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.outbox {
		if p.ID == id {
			s.outbox = append(s.outbox[:i], s.outbox[i+1:]...)
			s.dirty = true
			return
		}
	}
}

// Retry counts a failed delivery and sets when to try again.
func (s *Store) Retry(id string, next time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.outbox {
		if s.outbox[i].ID == id {
			s.outbox[i].Attempts++
			s.outbox[i].NextTry = next
			s.dirty = true
			return
		}
	}
}

// Save writes the store if it changed: to a temp file in the same
// directory, fsync, rename over the old file, fsync the directory. A crash
// at any point leaves either the old or the new file, never half of one.
func (s *Store) Save() error {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	f := file{Version: fileVersion, Series: make([]Series, 0, len(s.series)), Outbox: append([]Pending{}, s.outbox...)}
	for _, sr := range s.series {
		f.Series = append(f.Series, copySeries(sr))
	}
	s.dirty = false
	s.mu.Unlock()
	sort.Slice(f.Series, func(i, j int) bool { return f.Series[i].Key.String() < f.Series[j].Key.String() })
	b, err := json.MarshalIndent(f, "", " ")
	if err == nil {
		err = WriteFileAtomic(s.path, b, 0o600)
	}
	if err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// WriteFileAtomic replaces path with data so that readers and crashes see
// the old or the new content, never a mix.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
