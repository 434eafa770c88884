// Package history is the report of `wscanary history`: what the store kept
// of a period (runs, latency, causes, incidents, silences) read and printed.
package history

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/store"
)

// Doc is what `wscanary history` prints: per check, vantage and
// route over a window, how often it ran and upgraded, how fast, why it
// failed; and the incidents of the window.
type Doc struct {
	Since     time.Time           `json:"since"`
	Until     time.Time           `json:"until"`
	Series    []store.Stat        `json:"series"`
	Incidents []store.IncidentRow `json:"incidents"`
	// Maintenance are the configured windows' spans in the period, and
	// Silences the silences that held in it: why an outage opened nothing.
	Maintenance []WindowSpan    `json:"maintenance"`
	Silences    []store.Silence `json:"silences"`
}

// WindowSpan is one occurrence of a maintenance window.
type WindowSpan struct {
	// Check is "" for a window of every check.
	Check  string    `json:"check,omitempty"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Window string    `json:"window"`
}

// maxSpans bounds the window occurrences a history lists.
const maxSpans = 200

// AddWindows lists the occurrences of cfg's maintenance windows in the
// document's period (of one check when check is not "").
func (h *Doc) AddWindows(cfg *config.Config, check string) {
	add := func(name string, ws []config.Window) {
		for _, w := range ws {
			for _, o := range w.Occurrences(h.Since, h.Until, maxSpans) {
				if len(h.Maintenance) < maxSpans {
					h.Maintenance = append(h.Maintenance, WindowSpan{Check: name, Start: o[0], End: o[1], Window: w.String()})
				}
			}
		}
	}
	add("", cfg.Maintenance)
	for i := range cfg.Checks {
		if check == "" || cfg.Checks[i].Name == check {
			add(cfg.Checks[i].Name, cfg.Checks[i].Maintenance)
		}
	}
	slices.SortFunc(h.Maintenance, func(a, b WindowSpan) int { return a.Start.Compare(b.Start) })
}

// Read reads the store's history since a time (of one check when check
// is not "").
func Read(ctx context.Context, s *store.Store, since, until time.Time, check string) (Doc, error) {
	doc := Doc{Since: since, Until: until}
	var err error
	if doc.Series, err = s.Stats(ctx, since, check); err != nil {
		return doc, err
	}
	if doc.Incidents, err = s.Incidents(ctx, since, check); err != nil {
		return doc, err
	}
	if doc.Silences, err = s.SilencesBetween(ctx, since, until, check); err != nil {
		return doc, err
	}
	if doc.Silences == nil {
		doc.Silences = []store.Silence{}
	}
	doc.Maintenance = []WindowSpan{}
	if doc.Series == nil {
		doc.Series = []store.Stat{}
	}
	if doc.Incidents == nil {
		doc.Incidents = []store.IncidentRow{}
	}
	return doc, nil
}

// WriteJSON writes the document as indented JSON.
func (h Doc) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(h)
}

// WriteTable writes the document for a person: a row per series, then the
// incidents.
func (h Doc) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "History from %s to %s\n\n", h.Since.UTC().Format(time.RFC3339), h.Until.UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tVANTAGE\tROUTE\tRUNS\tUPTIME\tP50\tP95\tP99\tREPLY P50\tFAILURES")
	for _, s := range h.Series {
		route := string(s.Route)
		if s.Transport == report.TransportHTTP2 {
			route += " h2"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.2f%%\t%s\t%s\t%s\t%s\t%s\n", s.Check, s.Vantage, route, s.Runs, s.Uptime(),
			msText(s.P50MS), msText(s.P95MS), msText(s.P99MS), msText(s.ReplyP50MS), failures(s.Failures))
	}
	if len(h.Series) == 0 {
		fmt.Fprintln(tw, "(no runs recorded in this window)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(h.Maintenance) > 0 || len(h.Silences) > 0 {
		fmt.Fprintf(w, "\nMaintenance and silences (%d)\n", len(h.Maintenance)+len(h.Silences))
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CHECK\tFROM\tUNTIL\tWHAT")
		for _, m := range h.Maintenance {
			fmt.Fprintf(tw, "%s\t%s\t%s\tmaintenance %s\n", orAll(m.Check), m.Start.UTC().Format(time.RFC3339), m.End.UTC().Format(time.RFC3339), m.Window)
		}
		for _, s := range h.Silences {
			what := "silence " + s.ID + " by " + s.By + ": " + s.Reason
			if s.Vantage != "" {
				what = "silence of " + s.Vantage + " " + s.ID + " by " + s.By + ": " + s.Reason
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Check, s.Starts.UTC().Format(time.RFC3339), s.Ends.UTC().Format(time.RFC3339), what)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nIncidents (%d)\n", len(h.Incidents))
	if len(h.Incidents) == 0 {
		return nil
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tOPENED\tCLOSED\tLASTED\tCAUSE\tID")
	for _, i := range h.Incidents {
		closed, lasted := "open", report.Ago(h.Until.Sub(i.Opened))+" so far"
		if !i.Open {
			closed, lasted = i.Closed.UTC().Format(time.RFC3339), report.Ago(i.Closed.Sub(i.Opened))
		}
		cause := string(i.Cause)
		if i.Vendor != "" {
			cause += " (" + i.Vendor + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", i.Check, i.Opened.UTC().Format(time.RFC3339), closed, lasted, cause, i.ID)
	}
	return tw.Flush()
}

func orAll(check string) string {
	if check == "" {
		return "(all)"
	}
	return check
}

func msText(ms float64) string {
	if ms == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fms", ms)
}

// failures lists the causes of the runs that did not upgrade, the most
// frequent first: "cdn_blocked x12, timeout x1".
func failures(by map[report.Cause]int) string {
	if len(by) == 0 {
		return "-"
	}
	causes := make([]report.Cause, 0, len(by))
	for c := range by {
		causes = append(causes, c)
	}
	slices.SortFunc(causes, func(a, b report.Cause) int {
		if by[a] != by[b] {
			return by[b] - by[a]
		}
		return strings.Compare(string(a), string(b))
	})
	parts := make([]string, len(causes))
	for i, c := range causes {
		parts[i] = fmt.Sprintf("%s x%d", c, by[c])
	}
	return strings.Join(parts, ", ")
}
