package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Member is a daemon that writes to the store, named by its vantage. A
// fleet is the members of one PostgreSQL store; SQLite has one.
type Member struct {
	Name    string    `json:"name"`
	Started time.Time `json:"started"`
	Seen    time.Time `json:"seen"`
	// Interval is the member's shortest check interval: it is silent when
	// it has not reported for three of them.
	Interval time.Duration `json:"interval_ns"`
	Version  string        `json:"version"`
	Silent   bool          `json:"silent"`
}

// Heartbeat records that m is alive now and returns the member's row as
// it was (nil the first time): whether it had been marked silent, and
// whether another process with the same name reported meanwhile.
func (t *Tx) Heartbeat(ctx context.Context, m Member, now time.Time) (*Member, error) {
	q := "SELECT name, started, seen, interval_ms, version, silent FROM members WHERE name = ?"
	if t.s.backend == Postgres {
		q += " FOR UPDATE"
	}
	prev, err := scanMember(t.tx.QueryRowContext(ctx, t.s.q(q), m.Name))
	if errors.Is(err, sql.ErrNoRows) {
		prev, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	err = t.exec(ctx, `INSERT INTO members (name, started, seen, interval_ms, version, silent) VALUES (?, ?, ?, ?, ?, 0)
		ON CONFLICT (name) DO UPDATE SET started = excluded.started, seen = excluded.seen, interval_ms = excluded.interval_ms,
			version = excluded.version, silent = 0`, m.Name, ms(m.Started), ms(now), m.Interval.Milliseconds(), m.Version)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	return prev, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanMember(row scanner) (*Member, error) {
	var m Member
	var started, seen, interval int64
	var silent int
	if err := row.Scan(&m.Name, &started, &seen, &interval, &m.Version, &silent); err != nil {
		return nil, err
	}
	m.Started, m.Seen, m.Interval, m.Silent = fromMS(started), fromMS(seen), time.Duration(interval)*time.Millisecond, silent == 1
	return &m, nil
}

// NewlySilent marks the members other than self not seen within
// threshold(member) as silent and returns those it marked: each is marked
// once, by one member, however many look at once.
func (t *Tx) NewlySilent(ctx context.Context, self string, now time.Time, threshold func(Member) time.Duration) ([]Member, error) {
	if t.s.backend == Postgres {
		if _, err := t.tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext('wscanary members'))"); err != nil {
			return nil, fmt.Errorf("lock members: %w", err)
		}
	}
	members, err := t.s.members(ctx, t.tx, "WHERE silent = 0")
	if err != nil {
		return nil, err
	}
	var out []Member
	for _, m := range members {
		if m.Name == self || now.Sub(m.Seen) <= threshold(m) {
			continue
		}
		if err := t.exec(ctx, "UPDATE members SET silent = 1 WHERE name = ?", m.Name); err != nil {
			return nil, fmt.Errorf("mark %s silent: %w", m.Name, err)
		}
		m.Silent = true
		out = append(out, m)
	}
	return out, nil
}

// Members lists the members the store has seen.
func (s *Store) Members(ctx context.Context) ([]Member, error) {
	return s.members(ctx, s.db, "")
}

func (s *Store) members(ctx context.Context, qr querier, where string) ([]Member, error) {
	rows, err := qr.QueryContext(ctx, "SELECT name, started, seen, interval_ms, version, silent FROM members "+where+" ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("read members: %w", err)
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, fmt.Errorf("read members: %w", err)
		}
		out = append(out, *m)
	}
	return out, rows.Err()
}

// TakeTurn reports whether the caller may do the fleet-wide chore name now
// (post the storm summary): true when no member did it within every, and
// then it is recorded as done now. Two members asking at once never both
// get the turn.
func (s *Store) TakeTurn(ctx context.Context, name string, now time.Time, every time.Duration) (bool, error) {
	return s.takeTurn(ctx, name, now, every, now)
}

// LeaseTurn is TakeTurn for a chore that may not finish (a post the
// process dies during): the turn lapses after lease unless KeepTurn makes
// it a whole one. It returns the time the turn is recorded at, for
// KeepTurn and GiveBackTurn.
func (s *Store) LeaseTurn(ctx context.Context, name string, now time.Time, every, lease time.Duration) (bool, time.Time, error) {
	at := now.Add(lease - every)
	ok, err := s.takeTurn(ctx, name, now, every, at)
	return ok, at, err
}

// KeepTurn makes a turn leased at at a whole one, from now: the chore is
// done.
func (s *Store) KeepTurn(ctx context.Context, name string, at, now time.Time) error {
	_, err := s.exec(ctx, "UPDATE meta SET value = ? WHERE name = ? AND value = ?",
		now.UTC().Format(time.RFC3339Nano), name, at.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("keep turn %s: %w", name, err)
	}
	return nil
}

func (s *Store) takeTurn(ctx context.Context, name string, now time.Time, every time.Duration, record time.Time) (bool, error) {
	turn := false
	err := s.Update(ctx, func(t *Tx) error {
		if s.backend == Postgres {
			if _, err := t.tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "wscanary turn "+name); err != nil {
				return fmt.Errorf("turn %s: %w", name, err)
			}
		}
		var last string
		err := t.tx.QueryRowContext(ctx, s.q("SELECT value FROM meta WHERE name = ?"), name).Scan(&last)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("turn %s: %w", name, err)
		}
		if at, err := time.Parse(time.RFC3339Nano, last); err == nil && now.Sub(at) < every {
			return nil
		}
		turn = true
		return s.setMeta(ctx, t.tx, name, record.UTC().Format(time.RFC3339Nano))
	})
	return turn && err == nil, err
}

// GiveBackTurn undoes TakeTurn(name, at) when the chore failed, so that
// the next to ask (this member or another) does it.
func (s *Store) GiveBackTurn(ctx context.Context, name string, at time.Time) error {
	_, err := s.exec(ctx, "DELETE FROM meta WHERE name = ? AND value = ?", name, at.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("give back turn %s: %w", name, err)
	}
	return nil
}
