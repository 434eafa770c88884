package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wscanary/wscanary/monitor/incident"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/notifier"
)

// Spacing of the messages of one incident: a flapping check updates its
// message at most every UpdateSpacing and replies at most every
// ReplySpacing (replies that come sooner are merged into one), which keeps
// a channel far below Slack's limit of about one message a second.
const (
	UpdateSpacing = 2 * time.Second
	ReplySpacing  = 10 * time.Second
	// maxMergedEvents bounds one merged reply; the newest are kept.
	maxMergedEvents = 20
)

// Tx is one unit of work: a batch of runs recorded and the checks they
// touch decided, all or nothing.
type Tx struct {
	s  *Store
	tx *sql.Tx
	// locked are the checks this transaction holds the lock of.
	locked map[string]bool
	// committed runs once the transaction committed (what the store
	// remembers of it, such as the series ids it wrote).
	committed []func()
}

// updateTries bounds the runs of one transaction that loses a deadlock or a
// serialization conflict to another member: the database rolled it back
// whole, so running it again is safe, and a conflict is not a failure of
// the store.
const updateTries = 5

// Update runs fn in a transaction and commits it when fn returns nil. A
// transaction the database aborted for a deadlock or a serialization
// conflict is run again (fn too, so fn must start from scratch), after a
// short random pause that lets the winner finish.
func (s *Store) Update(ctx context.Context, fn func(*Tx) error) error {
	for try := 1; ; try++ {
		err := s.update(ctx, fn)
		if err == nil || try == updateTries || !Conflict(err) || ctx.Err() != nil {
			return err
		}
		s.log.Debug("store transaction lost a conflict; running it again", "try", try, "err", err)
		t := time.NewTimer(time.Duration(rand.Int64N(int64(20*time.Millisecond) << try)))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

func (s *Store) update(ctx context.Context, fn func(*Tx) error) error {
	done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store %s: begin: %w", s.where, err)
	}
	t := &Tx{s: s, tx: tx}
	if err := fn(t); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store %s: commit: %w", s.where, err)
	}
	for _, f := range t.committed {
		f()
	}
	return nil
}

// Conflict reports whether err is a transaction the database aborted to
// resolve a conflict with another one (PostgreSQL's deadlock_detected and
// serialization_failure): running it again is the remedy.
func Conflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

func (t *Tx) exec(ctx context.Context, query string, args ...any) error {
	_, err := t.tx.ExecContext(ctx, t.s.q(query), args...)
	return err
}

// LockCheck serialises the decisions on one check across a fleet until the
// transaction ends: two members never decide the same check at once, so
// they never both open its incident. SQLite transactions are exclusive
// already.
//
// A transaction that needs several checks locks them all first, with
// LockChecks: one order for every member, or two members deadlock.
func (t *Tx) LockCheck(ctx context.Context, check string) error {
	return t.LockChecks(ctx, []string{check})
}

// LockChecks takes the locks of checks not held yet, in one statement and
// in the order of their lock keys, the same order on every member (sorting
// by name would not do: two names may share a key). A check locked already
// by this transaction is not locked again.
func (t *Tx) LockChecks(ctx context.Context, checks []string) error {
	if t.s.backend != Postgres {
		return nil
	}
	var todo []string
	for _, c := range checks {
		if !t.locked[c] {
			todo = append(todo, "wscanary check "+c)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	// PostgreSQL evaluates a volatile function of the select list after
	// the ORDER BY, so the locks are taken in the sorted order.
	if _, err := t.tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(k) FROM
		(SELECT DISTINCT hashtext(n) AS k FROM unnest($1::text[]) AS n) AS keys ORDER BY k`, todo); err != nil {
		return fmt.Errorf("lock checks %s: %w", strings.Join(checks[:min(len(checks), 3)], ", "), err)
	}
	if t.locked == nil {
		t.locked = map[string]bool{}
	}
	for _, c := range checks {
		t.locked[c] = true
	}
	return nil
}

// SeriesRow is a series with the latest attempts of its run (the configured
// one and its diagnostic variants), for the fleet-wide diagnosis.
type SeriesRow struct {
	Check string
	incident.Series
	Attempts []report.Attempt
}

// Series returns every series of a check, from every member; a series not
// updated within its own stale_after is marked Stale.
func (t *Tx) Series(ctx context.Context, check string, now time.Time) ([]SeriesRow, error) {
	return t.s.series(ctx, t.tx, "WHERE check_name = ?", now, check)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) series(ctx context.Context, qr querier, where string, now time.Time, args ...any) ([]SeriesRow, error) {
	// A series of a member that went silent is stale, however recent.
	rows, err := qr.QueryContext(ctx, s.q(`SELECT check_name, vantage, route, transport, member, outcome, status, cause, since,
		first_seen, fail_streak, recent, ok_streak, trace_id, updated, stale_after, attempts,
		COALESCE((SELECT silent FROM members m WHERE m.name = series.member), 0)
		FROM series `+where+` ORDER BY check_name, vantage, route, transport`), args...)
	if err != nil {
		return nil, fmt.Errorf("read series: %w", err)
	}
	defer rows.Close()
	var out []SeriesRow
	for rows.Next() {
		var r SeriesRow
		var since, first, updated, staleAfter int64
		var attempts string
		var silent int
		var recent int64
		if err := rows.Scan(&r.Check, &r.Vantage, &r.Route, &r.Transport, &r.Member, &r.Outcome, &r.Status, &r.Cause, &since, &first,
			&r.FailStreak, &recent, &r.OKStreak, &r.TraceID, &updated, &staleAfter, &attempts, &silent); err != nil {
			return nil, fmt.Errorf("read series: %w", err)
		}
		r.Since, r.FirstSeen, r.Updated = fromMS(since), fromMS(first), fromMS(updated)
		r.Recent = uint64(recent) // the column is signed; the bits are the same
		r.Stale = silent == 1 || (staleAfter > 0 && now.Sub(r.Updated) > time.Duration(staleAfter)*time.Millisecond)
		if attempts != "" {
			if err := json.Unmarshal([]byte(attempts), &r.Attempts); err != nil {
				return nil, fmt.Errorf("read series %s/%s/%s: %w", r.Check, r.Vantage, r.Route, err)
			}
		} else {
			r.Attempts = stateAttempt(r)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Kept is the row as the store keeps it: an upgraded series keeps no
// attempts, its state is the evidence (one attempt made of it). Memory
// keeps the same, so a healthy series costs no more there than here.
func Kept(r SeriesRow) SeriesRow {
	if r.Outcome == report.OutcomeUpgraded {
		r.Attempts = stateAttempt(r)
	}
	return r
}

func stateAttempt(r SeriesRow) []report.Attempt {
	return []report.Attempt{{Vantage: r.Vantage, Route: r.Route, Transport: r.Transport, Variant: report.VariantConfigured,
		Status: r.Status, OK: r.Outcome == report.OutcomeUpgraded, Outcome: r.Outcome, TraceID: r.TraceID}}
}

// PutSeries writes series (upserts): the state after a run, with the run's
// attempts for that vantage and route. staleAfter is how long the series
// still counts without an update (two intervals and the timeout). The
// attempts of a series that upgraded are not kept: its state says all a
// diagnosis needs of it, and a healthy run stays cheap.
func (t *Tx) PutSeries(ctx context.Context, rows []SeriesRow, staleAfter map[string]time.Duration) error {
	if len(rows) == 0 {
		return nil
	}
	stmt, err := t.tx.PrepareContext(ctx, t.s.q(`INSERT INTO series (check_name, vantage, route, transport, member, outcome, status,
		cause, since, first_seen, fail_streak, recent, ok_streak, trace_id, updated, stale_after, attempts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (check_name, vantage, route, transport) DO UPDATE SET member = excluded.member, outcome = excluded.outcome,
			status = excluded.status, cause = excluded.cause, since = excluded.since, first_seen = excluded.first_seen,
			fail_streak = excluded.fail_streak, recent = excluded.recent, ok_streak = excluded.ok_streak, trace_id = excluded.trace_id, updated = excluded.updated,
			stale_after = excluded.stale_after, attempts = excluded.attempts`))
	if err != nil {
		return fmt.Errorf("write series: %w", err)
	}
	defer stmt.Close()
	for _, r := range rows {
		att := ""
		if r.Outcome != report.OutcomeUpgraded && len(r.Attempts) > 0 {
			b, err := json.Marshal(r.Attempts)
			if err != nil {
				return err
			}
			att = string(b)
		}
		if _, err := stmt.ExecContext(ctx, r.Check, r.Vantage, string(r.Route), string(r.Transport.OrHTTP1()), r.Member,
			string(r.Outcome), r.Status, string(r.Cause), ms(r.Since), ms(r.FirstSeen), r.FailStreak, int64(r.Recent), r.OKStreak, r.TraceID, ms(r.Updated), staleAfter[r.Check].Milliseconds(), att); err != nil {
			return fmt.Errorf("write series: %w", err)
		}
	}
	return nil
}

// HistoryRow is one configured attempt, kept for the history.
type HistoryRow struct {
	At         time.Time
	Check      string
	Vantage    string
	Route      report.Route
	Transport  report.Transport
	Member     string
	Outcome    report.Outcome
	Status     int
	Cause      report.Cause
	DurationMS float64
	// ReplyMS is the time to the first expected message (0: none).
	ReplyMS float64
	TraceID string
}

// AddHistory appends attempts to the history in multi-row inserts (one
// statement a few hundred rows), each naming its series by id (seriesID);
// a series not seen before is named in series_keys in the same
// transaction. On PostgreSQL it makes the partitions of their days first
// if they are not there.
func (t *Tx) AddHistory(ctx context.Context, rows []HistoryRow) error {
	if len(rows) == 0 {
		return nil
	}
	if t.s.backend == Postgres {
		if err := t.ensureRows(ctx, rows); err != nil {
			return err
		}
	}
	vals := make([]any, 0, historyCols*len(rows))
	var fresh []any
	var freshIDs []int64
	for _, r := range rows {
		k := AttemptKeyOf(r)
		id := seriesID(k, r.Member)
		if !t.s.named(id) && !slices.Contains(freshIDs, id) {
			freshIDs = append(freshIDs, id)
			fresh = append(fresh, id, k.Check, k.Vantage, string(k.Route), string(k.Transport), r.Member)
		}
		vals = append(vals, ms(r.At), id, r.Status, string(r.Outcome), string(r.Cause), micros(r.DurationMS), micros(r.ReplyMS), traceBytes(r.TraceID))
	}
	if len(fresh) > 0 {
		if err := t.insertMany(ctx, "series_keys", seriesKeyCols, 6, fresh, " ON CONFLICT (id) DO NOTHING"); err != nil {
			return err
		}
		t.committed = append(t.committed, func() { t.s.name(freshIDs) })
	}
	return t.insertMany(ctx, "history", historyInsertCols, historyCols, vals, "")
}

const (
	historyInsertCols = "at, series, status, outcome, cause, duration_us, reply_us, trace_id"
	historyCols       = 8
)

// DeleteSeries removes a member's series that keep rejects: those of checks
// removed from its configuration, or of vantages a check no longer names.
func (t *Tx) DeleteSeries(ctx context.Context, member string, keep func(SeriesKey) bool) error {
	rows, err := t.tx.QueryContext(ctx, t.s.q("SELECT check_name, vantage, route, transport FROM series WHERE member = ?"), member)
	if err != nil {
		return fmt.Errorf("read series: %w", err)
	}
	var gone []SeriesKey
	for rows.Next() {
		var k SeriesKey
		if err := rows.Scan(&k.Check, &k.Vantage, &k.Route, &k.Transport); err != nil {
			rows.Close()
			return err
		}
		if !keep(k) {
			gone = append(gone, k)
		}
	}
	rows.Close()
	for _, k := range gone {
		if err := t.exec(ctx, "DELETE FROM series WHERE check_name = ? AND vantage = ? AND route = ? AND transport = ?",
			k.Check, k.Vantage, string(k.Route), string(k.Transport)); err != nil {
			return fmt.Errorf("delete series: %w", err)
		}
	}
	return nil
}

// Record is an incident as stored: the engine's state, the message view,
// and where its root message is.
type Record struct {
	Decision incident.Incident
	View     notifier.Incident
	Root     notifier.Delivery
	Posted   bool
}

// recordCols are the incidents' columns scanRecord reads, in its order.
const recordCols = "decision, view, channel, ts, posted"

// Incident returns the open incident of a check, else its latest closed
// one (which may reopen), else nil.
func (t *Tx) Incident(ctx context.Context, check string) (*Record, error) {
	return t.s.incident(ctx, t.tx, check)
}

func (s *Store) incident(ctx context.Context, qr querier, check string) (*Record, error) {
	r, err := s.record(ctx, qr, `WHERE check_name = ? ORDER BY CASE WHEN state = 'open' THEN 0 ELSE 1 END, opened DESC LIMIT 1`, check)
	if err != nil {
		return nil, fmt.Errorf("read incident of %s: %w", check, err)
	}
	return r, nil
}

// record reads the one incident where says, nil if there is none.
func (s *Store) record(ctx context.Context, qr querier, where string, args ...any) (*Record, error) {
	r, err := scanRecord(qr.QueryRowContext(ctx, s.q("SELECT "+recordCols+" FROM incidents "+where), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return r, err
}

func scanRecord(row scanner) (*Record, error) {
	var r Record
	var decision, view string
	var posted int
	if err := row.Scan(&decision, &view, &r.Root.Channel, &r.Root.TS, &posted); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(decision), &r.Decision); err != nil {
		return nil, fmt.Errorf("read incident: %w", err)
	}
	if err := json.Unmarshal([]byte(view), &r.View); err != nil {
		return nil, fmt.Errorf("read incident %s: %w", r.Decision.ID, err)
	}
	r.Posted = posted == 1
	return &r, nil
}

// PutIncident writes an incident's state and view (upsert by id). The
// unique index on open incidents refuses a second open one for a check.
func (t *Tx) PutIncident(ctx context.Context, inc incident.Incident, view notifier.Incident, now time.Time) error {
	decision, err := json.Marshal(inc)
	if err != nil {
		return err
	}
	v, err := json.Marshal(view)
	if err != nil {
		return err
	}
	err = t.exec(ctx, `INSERT INTO incidents (id, check_name, state, opened, closed, decision, view, channel, ts, posted, last_update, last_reply, updated, group_key)
		VALUES (?, ?, ?, ?, ?, ?, ?, '', '', 0, 0, 0, ?, ?)
		ON CONFLICT (id) DO UPDATE SET check_name = excluded.check_name, state = excluded.state, closed = excluded.closed,
			decision = excluded.decision, view = excluded.view, updated = excluded.updated, group_key = excluded.group_key`,
		inc.ID, inc.Check, string(inc.State), ms(inc.Opened), ms(inc.Closed), string(decision), string(v), ms(now), inc.GroupKey)
	if err != nil {
		return fmt.Errorf("write incident %s: %w", inc.ID, err)
	}
	return nil
}

// IncidentByID returns the incident of that id, nil if there is none.
func (t *Tx) IncidentByID(ctx context.Context, id string) (*Record, error) {
	return t.s.recordByID(ctx, t.tx, id)
}

// OpenByKey returns the open incidents that share a group key and opened
// at since or later, oldest first: those that may form a group.
func (t *Tx) OpenByKey(ctx context.Context, key string, since time.Time) ([]*Record, error) {
	rows, err := t.tx.QueryContext(ctx, t.s.q("SELECT "+recordCols+` FROM incidents
		WHERE group_key = ? AND state = 'open' AND opened >= ? ORDER BY opened, id`), key, ms(since))
	if err != nil {
		return nil, fmt.Errorf("read incidents of group key %q: %w", key, err)
	}
	defer rows.Close()
	var out []*Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("read incidents of group key %q: %w", key, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// DropQueued removes the messages of an incident that wait for target and
// are not claimed: a member that joins a group says nothing of its own
// there. It reports how many it removed.
func (t *Tx) DropQueued(ctx context.Context, incidentID, target string) (int, error) {
	res, err := t.tx.ExecContext(ctx, t.s.q("DELETE FROM outbox WHERE incident = ? AND target = ? AND claimed_by = ''"), incidentID, target)
	if err != nil {
		return 0, fmt.Errorf("drop the messages of %s: %w", incidentID, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// Claimed reports whether a message of the incident for target is being
// delivered right now (claimed, not done).
func (t *Tx) Claimed(ctx context.Context, incidentID, target string) (bool, error) {
	var n int
	err := t.tx.QueryRowContext(ctx, t.s.q("SELECT COUNT(*) FROM outbox WHERE incident = ? AND target = ? AND claimed_by <> ''"), incidentID, target).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("outbox of %s: %w", incidentID, err)
	}
	return n > 0, nil
}

// SetRoot records where an incident's message already is (an import, or a
// message a member posted alone while the store was unreachable).
func (t *Tx) SetRoot(ctx context.Context, incidentID string, root notifier.Delivery) error {
	return t.exec(ctx, "UPDATE incidents SET channel = ?, ts = ?, posted = 1 WHERE id = ?", root.Channel, root.TS, incidentID)
}

// Coalescing is what becomes of a new message of an incident while another
// one of the same incident and target waits, not yet claimed.
type Coalescing int

const (
	// Keep: the new message is queued behind the waiting one.
	Keep Coalescing = iota
	// Drop: the waiting one says it already (an update, or an open,
	// renders the incident as it is when delivered).
	Drop
	// Merge: the new events join the waiting reply (MergeEvents).
	Merge
)

// Coalesce is the one coalescing rule, for the outbox and for the messages
// a daemon decides alone.
func Coalesce(waiting, next notifier.Kind) Coalescing {
	switch {
	case next == notifier.KindUpdate && (waiting == notifier.KindOpen || waiting == notifier.KindUpdate):
		return Drop
	case next == notifier.KindReply && waiting == notifier.KindReply:
		return Merge
	}
	return Keep
}

// MergeEvents folds the events of a new reply into a waiting one, keeping
// the newest maxMergedEvents and saying how many earlier ones were left
// out.
func MergeEvents(waiting, next []notifier.Event) []notifier.Event {
	out := append(slices.Clone(waiting), next...)
	if n := len(out); n > maxMergedEvents {
		elided := n - maxMergedEvents + 1
		if out[0].Kind == notifier.EventElided {
			elided += out[0].Flaps - 1
		}
		out = append([]notifier.Event{{Kind: notifier.EventElided, Flaps: elided}}, out[n-maxMergedEvents+1:]...)
	}
	return out
}

// Enqueue puts a message in the outbox, coalescing per incident: an update
// is dropped while the open or another update waits (the one that waits
// renders the incident as it is when delivered), and a reply merges into
// a reply that waits. A new update or reply waits for its spacing.
func (t *Tx) Enqueue(ctx context.Context, m notifier.Message, incidentID string, now time.Time) error {
	if m.ID == "" || !slices.Contains(notifier.Kinds, m.Kind) {
		return fmt.Errorf("enqueue: a message needs an id and a known kind, not %q", m.Kind)
	}
	next := now
	if incidentID != "" && (m.Kind == notifier.KindUpdate || m.Kind == notifier.KindReply) {
		switch m.Kind {
		case notifier.KindUpdate:
			// The waiting message is locked until this transaction ends: a
			// member claiming it meanwhile would render the incident as it
			// was before this decision, and this update would be lost.
			q := `SELECT id FROM outbox WHERE incident = ? AND target = ? AND kind IN ('open', 'update') AND claimed_by = ''`
			if t.s.backend == Postgres {
				q += " FOR UPDATE"
			}
			rows, err := t.tx.QueryContext(ctx, t.s.q(q), incidentID, m.Target)
			if err != nil {
				return fmt.Errorf("enqueue: %w", err)
			}
			waiting := rows.Next()
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("enqueue: %w", err)
			}
			if waiting {
				return nil
			}
			m.Incident = nil // rendered from the incident when delivered
		case notifier.KindReply:
			merged, err := t.mergeReply(ctx, m, incidentID)
			if err != nil || merged {
				return err
			}
		}
		// Spacing is per target; only Slack's (the primary's) messages are
		// spaced: they edit one message in place.
		if m.Target == "" {
			col, spacing := "last_update", UpdateSpacing
			if m.Spacing > 0 {
				spacing = m.Spacing
			}
			if m.Kind == notifier.KindReply {
				col, spacing = "last_reply", ReplySpacing
			}
			var last int64
			err := t.tx.QueryRowContext(ctx, t.s.q("SELECT "+col+" FROM incidents WHERE id = ?"), incidentID).Scan(&last)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("enqueue: %w", err)
			}
			if at := fromMS(last).Add(spacing); at.After(next) {
				next = at
			}
		}
	}
	seq := now.UnixNano()
	if incidentID != "" {
		var last sql.NullInt64
		if err := t.tx.QueryRowContext(ctx, t.s.q("SELECT MAX(seq) FROM outbox WHERE incident = ?"), incidentID).Scan(&last); err != nil {
			return fmt.Errorf("enqueue: %w", err)
		}
		if last.Valid && last.Int64 >= seq {
			seq = last.Int64 + 1
		}
	}
	payload, err := json.Marshal(m)
	if err != nil {
		return err
	}
	err = t.exec(ctx, `INSERT INTO outbox (id, seq, incident, kind, payload, enqueued, next_try, attempts, claimed_by, lease_until, target)
		VALUES (?, ?, ?, ?, ?, ?, ?, 0, '', 0, ?)`, m.ID, seq, incidentID, string(m.Kind), string(payload), ms(now), ms(next), m.Target)
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", m.ID, err)
	}
	return nil
}

// Queued reports whether a message of that id waits in the outbox.
func (t *Tx) Queued(ctx context.Context, id string) (bool, error) {
	var n int
	if err := t.tx.QueryRowContext(ctx, t.s.q("SELECT COUNT(*) FROM outbox WHERE id = ?"), id).Scan(&n); err != nil {
		return false, fmt.Errorf("outbox: %w", err)
	}
	return n > 0, nil
}

// mergeReply folds m's events into a reply of the incident that has not
// been claimed yet; it reports whether there was one.
func (t *Tx) mergeReply(ctx context.Context, m notifier.Message, incidentID string) (bool, error) {
	var id, payload string
	err := t.tx.QueryRowContext(ctx, t.s.q(`SELECT id, payload FROM outbox WHERE incident = ? AND target = ? AND kind = 'reply' AND claimed_by = ''
		ORDER BY seq DESC LIMIT 1`), incidentID, m.Target).Scan(&id, &payload)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("enqueue: %w", err)
	}
	var waiting notifier.Message
	if err := json.Unmarshal([]byte(payload), &waiting); err != nil {
		return false, fmt.Errorf("enqueue: reply %s: %w", id, err)
	}
	waiting.Events = MergeEvents(waiting.Events, m.Events)
	waiting.Incident = m.Incident
	b, err := json.Marshal(waiting)
	if err != nil {
		return false, err
	}
	if err := t.exec(ctx, "UPDATE outbox SET payload = ? WHERE id = ?", string(b), id); err != nil {
		return false, fmt.Errorf("enqueue: %w", err)
	}
	return true, nil
}

// StartWarning records that a warning holds for a check and reports
// whether it just started (so its one message goes out once).
func (t *Tx) StartWarning(ctx context.Context, check, kind, detail string, now time.Time) (bool, error) {
	var n int
	if err := t.tx.QueryRowContext(ctx, t.s.q("SELECT COUNT(*) FROM warnings WHERE check_name = ? AND kind = ?"), check, kind).Scan(&n); err != nil {
		return false, fmt.Errorf("read warning: %w", err)
	}
	if n > 0 {
		return false, nil
	}
	if err := t.exec(ctx, "INSERT INTO warnings (check_name, kind, since, detail) VALUES (?, ?, ?, ?)", check, kind, ms(now), detail); err != nil {
		return false, fmt.Errorf("write warning: %w", err)
	}
	return true, nil
}

// EndWarning forgets a warning whose condition ended.
func (t *Tx) EndWarning(ctx context.Context, check, kind string) error {
	return t.exec(ctx, "DELETE FROM warnings WHERE check_name = ? AND kind = ?", check, kind)
}

// Warnings lists the warnings that hold, as (check, kind) pairs.
func (s *Store) Warnings(ctx context.Context) ([][2]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT check_name, kind FROM warnings")
	if err != nil {
		return nil, fmt.Errorf("read warnings: %w", err)
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}
