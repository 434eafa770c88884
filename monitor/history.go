package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/store"
)

// HistoryDoc is what `wscanary history` prints: per check, vantage and
// route over a window, how often it ran and upgraded, how fast, why it
// failed; and the incidents of the window.
type HistoryDoc struct {
	Since     time.Time           `json:"since"`
	Until     time.Time           `json:"until"`
	Series    []store.Stat        `json:"series"`
	Incidents []store.IncidentRow `json:"incidents"`
}

// History reads the store's history since a time (of one check when check
// is not "").
func History(ctx context.Context, s *store.Store, since, until time.Time, check string) (HistoryDoc, error) {
	doc := HistoryDoc{Since: since, Until: until}
	var err error
	if doc.Series, err = s.Stats(ctx, since, check); err != nil {
		return doc, err
	}
	if doc.Incidents, err = s.Incidents(ctx, since, check); err != nil {
		return doc, err
	}
	if doc.Series == nil {
		doc.Series = []store.Stat{}
	}
	if doc.Incidents == nil {
		doc.Incidents = []store.IncidentRow{}
	}
	return doc, nil
}

// WriteJSON writes the document as indented JSON.
func (h HistoryDoc) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(h)
}

// WriteTable writes the document for a person: a row per series, then the
// incidents.
func (h HistoryDoc) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "History from %s to %s\n\n", h.Since.UTC().Format(time.RFC3339), h.Until.UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tVANTAGE\tROUTE\tRUNS\tUPTIME\tP50\tP95\tFAILURES")
	for _, s := range h.Series {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.2f%%\t%s\t%s\t%s\n", s.Check, s.Vantage, s.Route, s.Runs, s.Uptime(),
			msText(s.P50MS), msText(s.P95MS), failures(s.Failures))
	}
	if len(h.Series) == 0 {
		fmt.Fprintln(tw, "(no runs recorded in this window)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nIncidents (%d)\n", len(h.Incidents))
	if len(h.Incidents) == 0 {
		return nil
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tOPENED\tCLOSED\tLASTED\tCAUSE\tID")
	for _, i := range h.Incidents {
		closed, lasted := "open", ago(h.Until.Sub(i.Opened))+" so far"
		if !i.Open {
			closed, lasted = i.Closed.UTC().Format(time.RFC3339), ago(i.Closed.Sub(i.Opened))
		}
		cause := string(i.Cause)
		if i.Vendor != "" {
			cause += " (" + i.Vendor + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", i.Check, i.Opened.UTC().Format(time.RFC3339), closed, lasted, cause, i.ID)
	}
	return tw.Flush()
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
