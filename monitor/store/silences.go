package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Silence keeps a check (or one vantage of it) from opening an incident
// until it ends. Runs and the history go on; an open incident stays open
// and says it is silenced. A silence that ends while the check still fails
// lets the incident open then.
type Silence struct {
	ID    string `json:"id"`
	Check string `json:"check"`
	// Vantage is "" for every vantage of the check.
	Vantage string    `json:"vantage,omitempty"`
	Starts  time.Time `json:"starts"`
	Ends    time.Time `json:"ends"`
	Reason  string    `json:"reason"`
	// By is who set it: a Slack user, or the command's user@host.
	By      string    `json:"by"`
	Created time.Time `json:"created"`
}

// Holds reports whether the silence holds at t.
func (s Silence) Holds(t time.Time) bool { return !t.Before(s.Starts) && t.Before(s.Ends) }

// ErrNoSilence: no silence has that id.
var ErrNoSilence = errors.New("no such silence")

// NewSilenceID names a silence: short enough to type.
func NewSilenceID() string {
	var b [4]byte
	rand.Read(b[:])
	return "s-" + hex.EncodeToString(b[:])
}

// AddSilence stores a silence; its ID is made when empty.
func (s *Store) AddSilence(ctx context.Context, sl Silence) (Silence, error) {
	if sl.ID == "" {
		sl.ID = NewSilenceID()
	}
	if sl.Check == "" || !sl.Ends.After(sl.Starts) {
		return sl, errors.New("a silence needs a check and an end after its start")
	}
	_, err := s.exec(ctx, `INSERT INTO silences (id, check_name, vantage, starts, ends, reason, created_by, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, sl.ID, sl.Check, sl.Vantage, ms(sl.Starts), ms(sl.Ends), sl.Reason, sl.By, ms(sl.Created))
	if err != nil {
		return sl, fmt.Errorf("add silence: %w", err)
	}
	return sl, nil
}

// Silences lists the silences that have not ended at now, soonest end
// first.
func (s *Store) Silences(ctx context.Context, now time.Time) ([]Silence, error) {
	return s.silences(ctx, s.db, "WHERE ends > ?", ms(now))
}

// SilencesBetween lists the silences that held at some time in
// [from, to), of one check when check is not "".
func (s *Store) SilencesBetween(ctx context.Context, from, to time.Time, check string) ([]Silence, error) {
	if check != "" {
		return s.silences(ctx, s.db, "WHERE ends > ? AND starts < ? AND check_name = ?", ms(from), ms(to), check)
	}
	return s.silences(ctx, s.db, "WHERE ends > ? AND starts < ?", ms(from), ms(to))
}

// Silences are the silences of a check that hold at now.
func (t *Tx) Silences(ctx context.Context, check string, now time.Time) ([]Silence, error) {
	return t.s.silences(ctx, t.tx, "WHERE check_name = ? AND ends > ? AND starts <= ?", check, ms(now), ms(now))
}

func (s *Store) silences(ctx context.Context, qr querier, where string, args ...any) ([]Silence, error) {
	rows, err := qr.QueryContext(ctx, s.q("SELECT id, check_name, vantage, starts, ends, reason, created_by, created FROM silences "+where+
		" ORDER BY ends, id"), args...)
	if err != nil {
		return nil, fmt.Errorf("read silences: %w", err)
	}
	defer rows.Close()
	var out []Silence
	for rows.Next() {
		var sl Silence
		var starts, ends, created int64
		if err := rows.Scan(&sl.ID, &sl.Check, &sl.Vantage, &starts, &ends, &sl.Reason, &sl.By, &created); err != nil {
			return nil, fmt.Errorf("read silences: %w", err)
		}
		sl.Starts, sl.Ends, sl.Created = fromMS(starts), fromMS(ends), fromMS(created)
		out = append(out, sl)
	}
	return out, rows.Err()
}

// EndSilence ends a silence now (it stays in the store as ended, for the
// record, until pruned).
func (s *Store) EndSilence(ctx context.Context, id string, now time.Time) error {
	res, err := s.exec(ctx, "UPDATE silences SET ends = ? WHERE id = ? AND ends > ?", ms(now), id, ms(now))
	if err != nil {
		return fmt.Errorf("end silence %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("end silence %s: %w (or it has ended)", id, ErrNoSilence)
	}
	return nil
}
