package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wscanary/wscanary/notifier"
)

// Entry is a claimed outbox message, ready to deliver: for an update or a
// reply its Thread is where the incident's message is, and an update shows
// the incident as it is now (the latest state wins).
type Entry struct {
	Message  notifier.Message
	Incident string
	Attempts int
	Enqueued time.Time
	// Posted says whether the incident's own message is in the primary
	// notifier's channel; View is the incident as it is now. A reply or an
	// update of an incident never posted is delivered as its message
	// instead (never as an orphan).
	Posted bool
	View   *notifier.Incident
}

// ClaimFor takes the oldest due message of target ("" the primary
// notifier) for member, with a lease: another member (or this one after a
// crash) takes it again only once the lease has run out, so exactly one
// delivers it while all are alive. Messages of one incident go in order,
// one at a time. Each notifier has its own sender, so a slow one holds no
// other back. It returns nil when nothing is due.
func (s *Store) ClaimFor(ctx context.Context, member, target string, now time.Time, lease time.Duration) (*Entry, error) {
	var e *Entry
	err := s.Update(ctx, func(t *Tx) error {
		e = nil
		// Walked in outbox_claim's order: the first message that fell due
		// and has none of its incident before it. A claimed message's
		// next_try is its lease's end, so it is not due while claimed.
		query := `SELECT id, incident, payload, attempts, enqueued FROM outbox o
			WHERE o.target = ? AND o.next_try <= ?
			  AND NOT EXISTS (SELECT 1 FROM outbox p WHERE o.incident <> '' AND p.incident = o.incident AND p.target = o.target AND p.seq < o.seq)
			ORDER BY o.next_try, o.seq LIMIT 1`
		if s.backend == Postgres {
			query += " FOR UPDATE SKIP LOCKED"
		}
		var id, incidentID, payload string
		var attempts int
		var enqueued int64
		err := t.tx.QueryRowContext(ctx, s.q(query), target, ms(now)).Scan(&id, &incidentID, &payload, &attempts, &enqueued)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim: %w", err)
		}
		if err := t.exec(ctx, "UPDATE outbox SET claimed_by = ?, lease_until = ?, next_try = ? WHERE id = ?",
			member, ms(now.Add(lease)), ms(now.Add(lease)), id); err != nil {
			return fmt.Errorf("claim: %w", err)
		}
		var m notifier.Message
		if err := json.Unmarshal([]byte(payload), &m); err != nil {
			// Unreadable: deliver nothing, say so, and let the caller drop it.
			m = notifier.Message{ID: id}
		}
		m.Target = target
		var rec *Record
		if incidentID != "" {
			rec, err = s.recordByID(ctx, t.tx, incidentID)
			if err != nil {
				return err
			}
			if rec != nil {
				if m.Kind == notifier.KindOpen || m.Kind == notifier.KindUpdate {
					view := rec.View
					m.Incident = &view
				}
				if rec.Root.TS != "" && m.Kind != notifier.KindOpen {
					root := rec.Root
					m.Thread = &root
				}
			}
		}
		e = &Entry{Message: m, Incident: incidentID, Attempts: attempts, Enqueued: fromMS(enqueued)}
		if rec != nil {
			view := rec.View
			e.Posted, e.View = rec.Posted, &view
		}
		return nil
	})
	return e, err
}

// IncidentByID returns the incident of that id, nil if there is none.
func (s *Store) IncidentByID(ctx context.Context, id string) (*Record, error) {
	return s.recordByID(ctx, s.db, id)
}

func (s *Store) recordByID(ctx context.Context, qr querier, id string) (*Record, error) {
	r, err := s.record(ctx, qr, "WHERE id = ?", id)
	if err != nil {
		return nil, fmt.Errorf("read incident %s: %w", id, err)
	}
	return r, nil
}

// Done removes a delivered message. For an open it records where the
// incident's message landed, for an update or reply when it went, which
// the spacing of the next one counts from.
func (s *Store) Done(ctx context.Context, e *Entry, d notifier.Delivery, now time.Time) error {
	return s.Update(ctx, func(t *Tx) error {
		if err := t.exec(ctx, "DELETE FROM outbox WHERE id = ?", e.Message.ID); err != nil {
			return fmt.Errorf("done %s: %w", e.Message.ID, err)
		}
		if e.Incident == "" || e.Message.Target != "" {
			return nil // only the primary's message is the incident's root
		}
		var err error
		switch e.Message.Kind {
		case notifier.KindOpen:
			err = t.exec(ctx, "UPDATE incidents SET channel = ?, ts = ?, posted = 1, last_update = ? WHERE id = ?", d.Channel, d.TS, ms(now), e.Incident)
		case notifier.KindUpdate:
			err = t.exec(ctx, "UPDATE incidents SET last_update = ? WHERE id = ?", ms(now), e.Incident)
		case notifier.KindReply:
			err = t.exec(ctx, "UPDATE incidents SET last_reply = ? WHERE id = ?", ms(now), e.Incident)
		}
		if err != nil {
			return fmt.Errorf("done %s: %w", e.Message.ID, err)
		}
		return nil
	})
}

// Retry gives a message back with one more attempt counted, due at next.
func (s *Store) Retry(ctx context.Context, e *Entry, next time.Time) error {
	_, err := s.exec(ctx, "UPDATE outbox SET claimed_by = '', lease_until = 0, next_try = ?, attempts = attempts + 1 WHERE id = ?",
		ms(next), e.Message.ID)
	if err != nil {
		return fmt.Errorf("retry %s: %w", e.Message.ID, err)
	}
	return nil
}

// Hasten makes the messages of target that wait out a backoff due now:
// the notifier answers again, and the backlog need not sit out backoffs
// that grew while it was down. Messages waiting for their spacing (never
// tried) keep it.
func (s *Store) Hasten(ctx context.Context, target string, now time.Time) error {
	_, err := s.exec(ctx, "UPDATE outbox SET next_try = ? WHERE target = ? AND attempts > 0 AND next_try > ? AND lease_until <= ?",
		ms(now), target, ms(now), ms(now))
	if err != nil {
		return fmt.Errorf("hasten %s: %w", target, err)
	}
	return nil
}

// Defer gives a message back untried, due at next (its channel is paced).
func (s *Store) Defer(ctx context.Context, e *Entry, next time.Time) error {
	_, err := s.exec(ctx, "UPDATE outbox SET claimed_by = '', lease_until = 0, next_try = ? WHERE id = ?", ms(next), e.Message.ID)
	if err != nil {
		return fmt.Errorf("defer %s: %w", e.Message.ID, err)
	}
	return nil
}

// Drop removes a message that will never be delivered (Slack refused it for
// good, or it waited too long).
func (s *Store) Drop(ctx context.Context, e *Entry) error {
	_, err := s.exec(ctx, "DELETE FROM outbox WHERE id = ?", e.Message.ID)
	if err != nil {
		return fmt.Errorf("drop %s: %w", e.Message.ID, err)
	}
	return nil
}

// NextDueFor is when the next message of target ("" the primary
// notifier) may be claimed; false when it has none waiting.
func (s *Store) NextDueFor(ctx context.Context, target string) (time.Time, bool, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, s.q("SELECT MIN(next_try) FROM outbox WHERE target = ?"), target).Scan(&v)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("outbox: %w", err)
	}
	if !v.Valid {
		return time.Time{}, false, nil
	}
	return fromMS(v.Int64), true, nil
}

// Pending counts the messages not yet delivered.
func (s *Store) Pending(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox").Scan(&n)
	return n, err
}

// ReleaseClaims frees the claims of member, at its start: the process that
// held them is gone, and its messages need not wait for their leases.
func (s *Store) ReleaseClaims(ctx context.Context, member string) error {
	// Due at once: a claimed message fell due before it was claimed.
	_, err := s.exec(ctx, "UPDATE outbox SET claimed_by = '', lease_until = 0, next_try = enqueued WHERE claimed_by = ?", member)
	if err != nil {
		return fmt.Errorf("release claims: %w", err)
	}
	return nil
}

// SeveralOpensWaiting reports whether more than one incident's message
// waits to be posted. It reads at most two rows: it is asked once per
// message, and a backlog of thousands must not be counted each time.
func (s *Store) SeveralOpensWaiting(ctx context.Context) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE kind = 'open' AND target = '' LIMIT 2) two").Scan(&n)
	if err != nil {
		return false, fmt.Errorf("outbox: %w", err)
	}
	return n > 1, nil
}

// PendingOpens counts the incident messages waiting to be posted and
// returns the incidents of up to limit of them, oldest first.
func (s *Store) PendingOpens(ctx context.Context, limit int) (int, []Record, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox WHERE kind = 'open' AND target = ''").Scan(&n); err != nil {
		return 0, nil, fmt.Errorf("outbox: %w", err)
	}
	if n == 0 {
		return 0, nil, nil
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT i.decision, i.view, i.channel, i.ts, i.posted
		FROM outbox o JOIN incidents i ON i.id = o.incident WHERE o.kind = 'open' AND o.target = '' ORDER BY o.seq LIMIT ?`), limit)
	if err != nil {
		return 0, nil, fmt.Errorf("outbox: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return 0, nil, err
		}
		out = append(out, *r)
	}
	return n, out, rows.Err()
}
