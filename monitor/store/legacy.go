package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/wscanary/wscanary/monitor/incident"
	"github.com/wscanary/wscanary/monitor/internal/files"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/notifier"
)

// LegacyFile is the state file of the releases before the store.
const LegacyFile = "state.json"

// legacyState is state.json as those releases wrote it (version 1).
type legacyState struct {
	Version int `json:"version"`
	Series  []struct {
		Key struct {
			Check   string       `json:"check"`
			Vantage string       `json:"vantage"`
			Route   report.Route `json:"route"`
		} `json:"key"`
		Status  int          `json:"status"`
		Since   time.Time    `json:"since"`
		Count   int          `json:"count"`
		Cause   report.Cause `json:"cause"`
		TraceID string       `json:"trace_id"`
		Updated time.Time    `json:"updated"`
		Alert   *struct {
			Opened  time.Time `json:"opened"`
			Channel string    `json:"channel"`
			TS      string    `json:"ts"`
		} `json:"alert"`
	} `json:"series"`
	Outbox []struct {
		Kind    string `json:"kind"`
		Payload struct {
			Check  string    `json:"check"`
			At     time.Time `json:"at"`
			Thread *struct {
				Channel string `json:"channel"`
				TS      string `json:"ts"`
			} `json:"thread"`
		} `json:"payload"`
	} `json:"outbox"`
}

// importLegacy takes over a state.json once: every series, an incident per
// check with open alerts that keeps the alert's Slack message (so nothing
// is posted again), an open message for an alert that was never delivered,
// and the resolution of an alert whose recovery was still waiting. The
// file is then renamed, so a downgrade does not act on it twice.
func (s *Store) importLegacy(ctx context.Context, dir string) error {
	path := filepath.Join(dir, LegacyFile)
	b, err := files.ReadRegular(path, 64<<20)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	var st legacyState
	if err := json.Unmarshal(b, &st); err != nil || st.Version != 1 {
		s.log.Warn("state.json from an older release is unreadable; not imported", "file", path, "err", err)
		return s.retireLegacy(path)
	}
	now := time.Now()
	err = s.Update(ctx, func(t *Tx) error {
		var rows []SeriesRow
		byCheck := map[string][]SeriesRow{}
		roots := map[string]notifier.Delivery{}
		opened := map[string]time.Time{}
		for _, sr := range st.Series {
			a := report.Attempt{Status: sr.Status, OK: sr.Status == 101}
			r := SeriesRow{Check: sr.Key.Check, Series: incident.Series{Vantage: sr.Key.Vantage, Route: sr.Key.Route, Member: sr.Key.Vantage,
				Outcome: report.OutcomeOf(a), Status: sr.Status, Cause: sr.Cause, Since: sr.Since, FirstSeen: sr.Since,
				Updated: sr.Updated, TraceID: sr.TraceID}}
			if sr.Alert != nil {
				r.FailStreak = max(sr.Count, 1)
				if o, ok := opened[sr.Key.Check]; !ok || sr.Alert.Opened.Before(o) {
					opened[sr.Key.Check] = sr.Alert.Opened
				}
				if _, ok := roots[sr.Key.Check]; !ok && sr.Alert.TS != "" {
					roots[sr.Key.Check] = notifier.Delivery{Channel: sr.Alert.Channel, TS: sr.Alert.TS}
				}
			}
			rows = append(rows, r)
			byCheck[r.Check] = append(byCheck[r.Check], r)
		}
		if err := t.PutSeries(ctx, rows, nil); err != nil {
			return err
		}
		for check, at := range opened {
			inc, view := legacyIncident(check, at, byCheck[check], incident.Open, now)
			if err := t.PutIncident(ctx, inc, view, now); err != nil {
				return err
			}
			if root, ok := roots[check]; ok {
				if err := t.SetRoot(ctx, inc.ID, root); err != nil {
					return err
				}
				continue
			}
			if err := t.Enqueue(ctx, notifier.Message{ID: inc.ID + "/open", Kind: notifier.KindOpen}, inc.ID, now); err != nil {
				return err
			}
		}
		// A recovery that waited in the outbox: its alert's message still
		// says failing. Resolve it there.
		for _, p := range st.Outbox {
			if p.Kind != "recovery" || p.Payload.Thread == nil || p.Payload.Thread.TS == "" {
				continue
			}
			check := p.Payload.Check
			if _, open := opened[check]; open {
				continue
			}
			at := p.Payload.At
			inc, view := legacyIncident(check, at, byCheck[check], incident.Closed, now)
			if err := t.PutIncident(ctx, inc, view, now); err != nil {
				return err
			}
			if err := t.SetRoot(ctx, inc.ID, notifier.Delivery{Channel: p.Payload.Thread.Channel, TS: p.Payload.Thread.TS}); err != nil {
				return err
			}
			if err := t.Enqueue(ctx, notifier.Message{ID: inc.ID + "/update/resolved", Kind: notifier.KindUpdate}, inc.ID, now); err != nil {
				return err
			}
			ev := notifier.Event{Kind: notifier.EventResolved, At: at}
			if err := t.Enqueue(ctx, notifier.Message{ID: inc.ID + "/reply/resolved", Kind: notifier.KindReply, Incident: &view,
				Events: []notifier.Event{ev}}, inc.ID, now); err != nil {
				return err
			}
		}
		return s.setMeta(ctx, t.tx, "imported_state_json", now.UTC().Format(time.RFC3339))
	})
	if err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	s.log.Info("state.json of an older release imported into the store", "file", path, "series", len(st.Series), "open_incidents", countOpen(st))
	return s.retireLegacy(path)
}

func countOpen(st legacyState) int {
	var checks []string
	for _, sr := range st.Series {
		if sr.Alert != nil && !slices.Contains(checks, sr.Key.Check) {
			checks = append(checks, sr.Key.Check)
		}
	}
	return len(checks)
}

func (s *Store) retireLegacy(path string) error {
	to := fmt.Sprintf("%s.imported-%d", path, time.Now().Unix())
	if err := os.Rename(path, to); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	return nil
}

// legacyIncident builds the incident of a check from its imported series.
func legacyIncident(check string, opened time.Time, series []SeriesRow, state incident.State, now time.Time) (incident.Incident, notifier.Incident) {
	inc := incident.Incident{ID: incident.NewID(check, opened), Check: check, State: state, Opened: opened}
	view := notifier.Incident{ID: inc.ID, Check: check, State: notifier.StateOpen, Opened: opened, At: now}
	if state == incident.Closed {
		inc.Closed, view.Closed, view.State = now, now, notifier.StateResolved
	}
	for _, r := range series {
		failing := r.FailStreak > 0
		cell := incident.Cell{Vantage: r.Vantage, Route: r.Route, Outcome: r.Outcome, Status: r.Status, Failing: failing}
		inc.Cells, view.Cells = append(inc.Cells, cell), append(view.Cells, cell)
		if failing {
			inc.Seen = append(inc.Seen, r.Key())
			if inc.Cause == "" {
				inc.Cause, view.Cause = r.Cause, r.Cause
				view.Attempt = report.Attempt{Vantage: r.Vantage, Route: r.Route, Status: r.Status, Outcome: r.Outcome, TraceID: r.TraceID}
			}
		}
	}
	return inc, view
}
