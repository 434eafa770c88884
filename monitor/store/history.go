package store

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/wscanary/wscanary/monitor/report"
)

// SeriesKey names a series.
type SeriesKey struct {
	Check   string       `json:"check"`
	Vantage string       `json:"vantage"`
	Route   report.Route `json:"route"`
	// Transport is http1 or http2.
	Transport report.Transport `json:"transport"`
}

// AttemptKey is the series an attempt of check belongs to.
func AttemptKey(check string, a report.Attempt) SeriesKey {
	return SeriesKey{Check: check, Vantage: a.Vantage, Route: a.Route, Transport: a.Transport.OrHTTP1()}
}

// Stat sums up a series' history over a window.
type Stat struct {
	SeriesKey
	Runs     int `json:"runs"`
	Upgraded int `json:"upgraded"`
	// P50MS and P95MS are handshake times in milliseconds, within 5%.
	P50MS float64 `json:"p50_ms"`
	P95MS float64 `json:"p95_ms"`
	// ReplyP50MS is the median time from the upgrade to the first expected
	// message, 0 when the check expects none.
	ReplyP50MS float64 `json:"reply_p50_ms,omitempty"`
	// Failures counts the runs that did not upgrade, by cause.
	Failures map[report.Cause]int `json:"failures"`
	First    time.Time            `json:"first"`
	Last     time.Time            `json:"last"`
}

// Uptime is the share of runs that upgraded, in percent.
func (s Stat) Uptime() float64 {
	if s.Runs == 0 {
		return 0
	}
	return 100 * float64(s.Upgraded) / float64(s.Runs)
}

// Stats reads the history since a time, per series (of one check when
// check is not ""). It streams the rows and keeps a small histogram per
// series, so a day of 10,000 checks costs no more memory than their count.
func (s *Store) Stats(ctx context.Context, since time.Time, check string) ([]Stat, error) {
	where, args := "WHERE at >= ?", []any{ms(since)}
	if check != "" {
		where, args = where+" AND check_name = ?", append(args, check)
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT at, check_name, vantage, route, transport, outcome, cause, duration_ms, reply_ms FROM history `+where), args...)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer rows.Close()
	type acc struct {
		st          Stat
		hist, reply durations
	}
	by := map[SeriesKey]*acc{}
	for rows.Next() {
		var at int64
		var k SeriesKey
		var outcome, cause string
		var d, reply float64
		if err := rows.Scan(&at, &k.Check, &k.Vantage, &k.Route, &k.Transport, &outcome, &cause, &d, &reply); err != nil {
			return nil, fmt.Errorf("read history: %w", err)
		}
		a := by[k]
		if a == nil {
			a = &acc{st: Stat{SeriesKey: k, Failures: map[report.Cause]int{}}}
			by[k] = a
		}
		a.st.Runs++
		t := fromMS(at)
		if a.st.First.IsZero() || t.Before(a.st.First) {
			a.st.First = t
		}
		if t.After(a.st.Last) {
			a.st.Last = t
		}
		if report.Outcome(outcome) == report.OutcomeUpgraded {
			a.st.Upgraded++
			a.hist.add(d)
			if reply > 0 {
				a.reply.add(reply)
			}
		} else {
			a.st.Failures[report.Cause(cause)]++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	out := make([]Stat, 0, len(by))
	for _, a := range by {
		a.st.P50MS, a.st.P95MS = a.hist.quantile(0.5), a.hist.quantile(0.95)
		a.st.ReplyP50MS = a.reply.quantile(0.5)
		out = append(out, a.st)
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i].SeriesKey, out[j].SeriesKey) })
	return out, nil
}

func less(a, b SeriesKey) bool {
	if a.Check != b.Check {
		return a.Check < b.Check
	}
	if a.Vantage != b.Vantage {
		return a.Vantage < b.Vantage
	}
	if a.Route != b.Route {
		return a.Route < b.Route
	}
	return a.Transport < b.Transport
}

// durations is a histogram of handshake times on a log scale (buckets 10%
// apart from 0.1 ms), for quantiles within 5% in constant memory.
type durations struct {
	n       int
	buckets [160]int
}

const (
	histBase  = 0.1
	histRatio = 1.1
)

func (h *durations) add(ms float64) {
	i := 0
	if ms > histBase {
		i = int(math.Log(ms/histBase) / math.Log(histRatio))
	}
	h.buckets[min(max(i, 0), len(h.buckets)-1)]++
	h.n++
}

func (h *durations) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(h.n)))
	seen := 0
	for i, c := range h.buckets {
		seen += c
		if seen >= rank {
			// the geometric middle of the bucket
			return math.Round(histBase*math.Pow(histRatio, float64(i)+0.5)*100) / 100
		}
	}
	return 0
}

// Bucket is a slice of time in a series' timeline.
type Bucket struct {
	Start    time.Time `json:"start"`
	Runs     int       `json:"runs"`
	Upgraded int       `json:"upgraded"`
}

// Timeline cuts the history since a time into n buckets per series.
func (s *Store) Timeline(ctx context.Context, since time.Time, width time.Duration, n int) (map[SeriesKey][]Bucket, error) {
	w := width.Milliseconds()
	if w <= 0 || n <= 0 {
		return nil, fmt.Errorf("timeline: bad width %v or count %d", width, n)
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT check_name, vantage, route, transport, b, COUNT(*), SUM(up) FROM
		(SELECT check_name, vantage, route, transport, (at - ?) / ? AS b, CASE WHEN outcome = 'upgraded' THEN 1 ELSE 0 END AS up
		 FROM history WHERE at >= ?) h
		GROUP BY check_name, vantage, route, transport, b`), ms(since), w, ms(since))
	if err != nil {
		return nil, fmt.Errorf("read timeline: %w", err)
	}
	defer rows.Close()
	out := map[SeriesKey][]Bucket{}
	for rows.Next() {
		var k SeriesKey
		var i int64
		var runs, up int
		if err := rows.Scan(&k.Check, &k.Vantage, &k.Route, &k.Transport, &i, &runs, &up); err != nil {
			return nil, fmt.Errorf("read timeline: %w", err)
		}
		bs := out[k]
		if bs == nil {
			bs = make([]Bucket, n)
			for j := range bs {
				bs[j].Start = since.Add(time.Duration(j) * width)
			}
			out[k] = bs
		}
		if i >= 0 && int(i) < n {
			bs[i].Runs, bs[i].Upgraded = runs, up
		}
	}
	return out, rows.Err()
}

// IncidentRow is an incident as the history lists it.
type IncidentRow struct {
	ID     string       `json:"id"`
	Check  string       `json:"check"`
	Opened time.Time    `json:"opened"`
	Closed time.Time    `json:"closed,omitzero"`
	Cause  report.Cause `json:"cause"`
	Vendor string       `json:"vendor,omitempty"`
	Open   bool         `json:"open"`
}

// Incidents lists the incidents open at some point since a time.
func (s *Store) Incidents(ctx context.Context, since time.Time, check string) ([]IncidentRow, error) {
	where, args := "WHERE (closed = 0 OR closed >= ?)", []any{ms(since)}
	if check != "" {
		where, args = where+" AND check_name = ?", append(args, check)
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, check_name, state, opened, closed, decision FROM incidents `+where+` ORDER BY opened`), args...)
	if err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	defer rows.Close()
	var out []IncidentRow
	for rows.Next() {
		var r IncidentRow
		var state, decision string
		var opened, closed int64
		if err := rows.Scan(&r.ID, &r.Check, &state, &opened, &closed, &decision); err != nil {
			return nil, fmt.Errorf("read incidents: %w", err)
		}
		r.Opened, r.Closed, r.Open = fromMS(opened), fromMS(closed), state == "open"
		var d struct {
			Cause  report.Cause `json:"cause"`
			Vendor string       `json:"vendor"`
		}
		if jsonUnmarshal(decision, &d) == nil {
			r.Cause, r.Vendor = d.Cause, d.Vendor
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Prune deletes history, closed incidents and silences ended before before,
// in chunks so that runs never wait long behind it. It returns the number
// of history rows deleted.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	chunk := "DELETE FROM history WHERE rowid IN (SELECT rowid FROM history WHERE at < ? LIMIT 20000)"
	if s.backend == Postgres {
		chunk = "DELETE FROM history WHERE ctid IN (SELECT ctid FROM history WHERE at < ? LIMIT 20000)"
	}
	for {
		res, err := s.exec(ctx, chunk, ms(before))
		if err != nil {
			return total, fmt.Errorf("prune history: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n < 20000 {
			break
		}
	}
	if _, err := s.exec(ctx, `DELETE FROM group_members WHERE group_id IN
		(SELECT id FROM incidents WHERE state = 'closed' AND closed < ?)`, ms(before)); err != nil {
		return total, fmt.Errorf("prune groups: %w", err)
	}
	if _, err := s.exec(ctx, "DELETE FROM incidents WHERE state = 'closed' AND closed < ?", ms(before)); err != nil {
		return total, fmt.Errorf("prune incidents: %w", err)
	}
	if _, err := s.exec(ctx, "DELETE FROM silences WHERE ends < ?", ms(before)); err != nil {
		return total, fmt.Errorf("prune silences: %w", err)
	}
	return total, nil
}

// AllSeries returns every series of every check.
func (s *Store) AllSeries(ctx context.Context, now time.Time) ([]SeriesRow, error) {
	return s.series(ctx, s.db, "", now)
}

// OpenIncidents returns the open incidents, by check.
func (s *Store) OpenIncidents(ctx context.Context) (map[string]*Record, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+recordCols+" FROM incidents WHERE state = 'open'")
	if err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	defer rows.Close()
	out := map[string]*Record{}
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out[r.Decision.Check] = r
	}
	return out, rows.Err()
}
