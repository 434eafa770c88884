package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/monitor/testbed"
)

// Storage (issue 29): bytes on disk per raw attempt and per rollup row,
// measured by writing a fleet's attempts through the real store on a
// simulated clock, rolling up and pruning as the daemon does; from them
// the month of 1,000 checks x 3 vantages @60s with the default history;
// and `wscanary history` of one check over a year of rollups, timed.

// StorageResult is one backend's storage figures.
type StorageResult struct {
	Backend       string  `json:"backend"`
	Attempts      int     `json:"attempts"`
	RawBytesRow   float64 `json:"raw_bytes_per_row"`
	RollupRows    int64   `json:"rollup_rows"`
	RollupBytes   float64 `json:"rollup_bytes_per_row"`
	RawSteadyGB   float64 `json:"raw_steady_gb"`
	RollupMonthGB float64 `json:"rollup_month_gb"`
	MonthGB       float64 `json:"month_gb"`
	YearRollupGB  float64 `json:"year_rollups_gb"`
	YearReadMS    float64 `json:"year_read_ms"`
}

// The fleet the figures are for: 1,000 checks from 3 vantages @60s.
const (
	storageChecks   = 1000
	storageVantages = 3
)

func storageCost(quick bool, r *Results) error {
	hours := 6 // 1,080,000 attempts
	if quick {
		hours = 2
	}
	dir, err := os.MkdirTemp("", "wscanary-bench-storage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	backends := []struct {
		name string
		opts func() (store.Options, error)
	}{
		{"sqlite", func() (store.Options, error) { return store.Options{Dir: dir}, nil }},
		{"postgres", func() (store.Options, error) {
			pg, err := testbed.StartPostgres()
			if err != nil {
				return store.Options{}, err
			}
			dsn, err := pg.NewDatabase()
			return store.Options{DSN: dsn}, err
		}},
	}
	for _, b := range backends {
		opts, err := b.opts()
		if errors.Is(err, testbed.ErrNoPostgres) {
			fmt.Fprintf(os.Stderr, "   %s: skipped (%v)\n", b.name, err)
			continue
		}
		if err != nil {
			return err
		}
		res, err := storageOf(b.name, opts, hours)
		if err != nil {
			return fmt.Errorf("storage on %s: %w", b.name, err)
		}
		r.Storage = append(r.Storage, res)
	}
	return nil
}

func storageOf(backend string, opts store.Options, hours int) (StorageResult, error) {
	res := StorageResult{Backend: backend}
	ctx := context.Background()
	s, err := store.Open(ctx, opts)
	if err != nil {
		return res, err
	}
	defer s.Close()
	h := config.DefaultHistory()
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	rows := make([]store.HistoryRow, 0, storageChecks*storageVantages)
	vantages := []string{"us-east-1", "eu-west-1", "ap-south-1"}
	maintain := func(now time.Time) error {
		if _, err := s.Rollup(ctx, now); err != nil {
			return err
		}
		_, err := s.Prune(ctx, store.Retention{Raw: now.Add(-h.Raw), Keep: now.Add(-h.Keep)})
		return err
	}
	for m := range hours * 60 {
		now := start.Add(time.Duration(m) * time.Minute)
		rows = rows[:0]
		for c := range storageChecks {
			for v, vantage := range vantages {
				rows = append(rows, store.HistoryRow{At: now.Add(time.Duration(c*storageVantages+v) * 20 * time.Millisecond),
					Check: fmt.Sprintf("check-%04d", c), Vantage: vantage, Route: report.RouteCDN, Transport: report.TransportHTTP1,
					Member: vantage, Outcome: report.OutcomeUpgraded, Status: 101, Cause: report.CauseOK, DurationMS: 20 + float64((c*7+m)%40),
					TraceID: fmt.Sprintf("%032x", uint64(m)<<32|uint64(c*storageVantages+v))})
			}
		}
		if err := s.Update(ctx, func(tx *store.Tx) error { return tx.AddHistory(ctx, rows) }); err != nil {
			return res, err
		}
		res.Attempts += len(rows)
		if m%60 == 59 {
			if err := maintain(now.Add(time.Minute)); err != nil {
				return res, err
			}
		}
	}
	end := start.Add(time.Duration(hours)*time.Hour + 10*time.Minute)
	if err := maintain(end); err != nil {
		return res, err
	}
	f, err := s.Footprint(ctx)
	if err != nil {
		return res, err
	}
	if f.RawRows == 0 || f.RollupRows == 0 {
		return res, fmt.Errorf("footprint %+v: nothing to measure", f)
	}
	res.RawBytesRow = float64(f.RawBytes) / float64(f.RawRows)
	res.RollupRows, res.RollupBytes = f.RollupRows, float64(f.RollupBytes)/float64(f.RollupRows)
	// Raw rows kept: history.raw on SQLite; on PostgreSQL a day partition
	// goes once all of it is older than history.raw, so a day more at most
	// (a day and a half on average).
	perMinute := float64(storageChecks * storageVantages)
	rawMinutes := h.Raw.Minutes()
	if backend == "postgres" {
		rawMinutes += 12 * 60
	}
	const gb = 1 << 30
	res.RawSteadyGB = perMinute * rawMinutes * res.RawBytesRow / gb
	series := float64(storageChecks * storageVantages)
	res.RollupMonthGB = series * 30 * 24 * res.RollupBytes / gb
	res.MonthGB = res.RawSteadyGB + res.RollupMonthGB
	res.YearRollupGB = series * 365 * 24 * res.RollupBytes / gb
	fmt.Fprintf(os.Stderr, "   %s: %d attempts, %.0f bytes a raw row, %.0f a rollup row (%d rows)\n", backend, res.Attempts, res.RawBytesRow,
		res.RollupBytes, res.RollupRows)
	took, err := yearOfOneCheck(ctx, s, start.AddDate(0, 0, 1))
	if err != nil {
		return res, err
	}
	res.YearReadMS = float64(took.Microseconds()) / 1000
	return res, nil
}

// yearOfOneCheck writes a year of one check's history from 3 vantages (a
// run each 10 minutes of the simulated clock, rolled up and pruned each
// simulated day), then times the read `wscanary history --check` does over
// the year: rollups all but the last raw window.
func yearOfOneCheck(ctx context.Context, s *store.Store, start time.Time) (time.Duration, error) {
	h := config.DefaultHistory()
	vantages := []string{"us-east-1", "eu-west-1", "ap-south-1"}
	var rows []store.HistoryRow
	runs := 0
	for day := range 365 {
		rows = rows[:0]
		for m := 0; m < 24*60; m += 10 {
			at := start.Add(time.Duration(day)*24*time.Hour + time.Duration(m)*time.Minute)
			for _, v := range vantages {
				rows = append(rows, store.HistoryRow{At: at, Check: "year", Vantage: v, Route: report.RouteCDN, Transport: report.TransportHTTP1, Member: v,
					Outcome: report.OutcomeUpgraded, Status: 101, Cause: report.CauseOK, DurationMS: float64(10 + m%50)})
			}
		}
		if err := s.Update(ctx, func(tx *store.Tx) error { return tx.AddHistory(ctx, rows) }); err != nil {
			return 0, err
		}
		runs += len(rows)
		now := start.Add(time.Duration(day+1) * 24 * time.Hour)
		if _, err := s.Rollup(ctx, now.Add(time.Hour)); err != nil {
			return 0, err
		}
		if _, err := s.Prune(ctx, store.Retention{Raw: now.Add(-h.Raw), Keep: now.Add(-h.Keep)}); err != nil {
			return 0, err
		}
	}
	t0 := time.Now()
	stats, err := s.Stats(ctx, start, "year")
	took := time.Since(t0)
	if err != nil {
		return 0, err
	}
	got := 0
	for _, st := range stats {
		got += st.Runs
	}
	if len(stats) != 3 || got != runs {
		return 0, fmt.Errorf("a year of one check: %d series, %d runs; want 3, %d", len(stats), got, runs)
	}
	return took, nil
}

func printStorage(w io.Writer, r Results) {
	if len(r.Storage) == 0 {
		return
	}
	fmt.Fprintf(w, "\nstorage (history.raw 48h, keep 400d), from %d checks x %d vantages @60s written through the store\n", storageChecks, storageVantages)
	fmt.Fprintf(w, "%-9s %10s %11s %12s %12s %13s %10s %12s %10s\n", "backend", "attempts", "raw B/row", "rollup B/row", "raw steady", "rollups/month",
		"month", "rollups/year", "year read")
	for _, s := range r.Storage {
		verdict := "PASS"
		if s.MonthGB > 2 || s.YearReadMS >= 1000 {
			verdict = "MISS"
		}
		fmt.Fprintf(w, "%-9s %10d %11.0f %12.0f %9.2f GB %10.2f GB %7.2f GB %9.2f GB %7.0f ms  %s (month <= 2 GB, year read < 1 s)\n", s.Backend, s.Attempts,
			s.RawBytesRow, s.RollupBytes, s.RawSteadyGB, s.RollupMonthGB, s.MonthGB, s.YearRollupGB, s.YearReadMS, verdict)
	}
}
