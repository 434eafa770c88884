package web

import (
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/notifier"
)

// The status page: every series with its state and a timeline of the last
// day drawn from the history, the open incidents first. It is rendered by
// the server (no script, nothing fetched from elsewhere), so it works on
// an air-gapped host, and it refreshes itself.
const (
	pageWindow  = 24 * time.Hour
	pageBuckets = 96 // 15 minutes each
	pageRows    = 500
	// timelineTTL: the day's timeline is read at most this often.
	timelineTTL = 30 * time.Second
)

//go:embed statuspage.html
var statusPageHTML string

var statusPage = template.Must(template.New("status").Parse(statusPageHTML))

type pageBar struct {
	X     int
	Class string
	Title string
}

type pageRow struct {
	Class, State, Check, Vantage, Route, Status, Cause, Since, Uptime string
	Bars                                                              []pageBar
	order                                                             int
}

type pageIncident struct {
	Check, Headline, Cause, Vendor, Opened, OpenFor, Summary, Matrix string
}

type pageData struct {
	Vantage, Store, StoreError, Now, Window, Bucket string
	Checks, Total, Failing, OpenCount, More, Width  int
	Incidents                                       []pageIncident
	Rows                                            []pageRow
	// Quiet are the maintenance windows and silences in force, one line
	// each; Upcoming the windows that start within a day.
	Quiet, Upcoming []string
	// Filter says which checks the page shows ("" for all of them).
	Filter string
}

// pageFilter is the checks a page asks for with ?group=ID (a group's
// members), ?label=NAME=VALUE (every one must match) and ?check=NAME (any
// of them): nil for every check, and the words that say so.
func (srv *Server) pageFilter(r *http.Request, cfg *config.Config) (map[string]bool, string) {
	q := r.URL.Query()
	labels, names := q["label"], q["check"]
	if id := q.Get("group"); id != "" {
		// A group's link: its members as the group knows them.
		rec, err := srv.opts.Store.IncidentByID(r.Context(), id)
		var checks []string
		if err == nil && rec != nil && rec.View.Group != nil {
			checks, err = srv.opts.Store.GroupChecks(r.Context(), id)
		}
		if err != nil || rec == nil || rec.View.Group == nil {
			return map[string]bool{}, fmt.Sprintf("group %s, which this store does not know", id)
		}
		keep := map[string]bool{}
		for _, c := range checks {
			keep[c] = true
		}
		return keep, fmt.Sprintf("group %s: %s (%d checks)", id, rec.View.Group.Key, len(keep))
	}
	if len(labels) == 0 && len(names) == 0 {
		return nil, ""
	}
	keep := map[string]bool{}
	for _, c := range cfg.Checks {
		ok := len(names) == 0 || slices.Contains(names, c.Name)
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			ok = ok && c.Labels[k] == v
		}
		if ok {
			keep[c.Name] = true
		}
	}
	var said []string
	if len(names) > 0 {
		said = append(said, "checks "+strings.Join(names, ", "))
	}
	if len(labels) > 0 {
		said = append(said, "labels "+strings.Join(labels, ", "))
	}
	return keep, fmt.Sprintf("%s (%d checks)", strings.Join(said, "; "), len(keep))
}

// timelineCache keeps the day's timeline between page loads.
type timelineCache struct {
	mu    sync.Mutex
	at    time.Time
	since time.Time
	data  map[store.SeriesKey][]store.Bucket
}

func (srv *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	now := srv.now()
	doc := srv.Status(r.Context())
	bucket := pageWindow / pageBuckets
	since := now.Add(-pageWindow).Truncate(bucket).Add(bucket)
	tl := srv.timeline(r, since, bucket, now)
	keep, filter := srv.pageFilter(r, srv.opts.Config())
	if keep != nil {
		doc.Incidents = slices.DeleteFunc(doc.Incidents, func(i IncidentStatus) bool { return !keep[i.Check] })
		doc.Series = slices.DeleteFunc(doc.Series, func(s SeriesStatus) bool { return !keep[s.Check] })
		doc.Checks = len(keep)
	}
	data := pageData{Vantage: doc.Vantage, Store: doc.Store, StoreError: doc.StoreError, Now: now.UTC().Format("2006-01-02 15:04:05 UTC"),
		Window: "24 h", Bucket: "15 min", Checks: doc.Checks, Total: len(doc.Series), OpenCount: len(doc.Incidents), Width: pageBuckets * 3, Filter: filter}
	for _, w := range doc.Maintenance {
		who := "every check"
		if w.Check != "" {
			who = w.Check
		}
		switch {
		case w.Active:
			data.Quiet = append(data.Quiet, fmt.Sprintf("Maintenance of %s until %s: %s", who, w.Until.UTC().Format("15:04 UTC"), w.Window))
		case !w.Next.IsZero() && w.Next.Sub(now) < 24*time.Hour:
			data.Upcoming = append(data.Upcoming, fmt.Sprintf("Maintenance of %s at %s: %s", who, w.Next.UTC().Format("Mon 15:04 UTC"), w.Window))
		}
	}
	for _, sl := range doc.Silences {
		if !sl.Holds(now) {
			continue
		}
		what := sl.Check
		if sl.Vantage != "" {
			what += " from " + sl.Vantage
		}
		data.Quiet = append(data.Quiet, fmt.Sprintf("Silenced: %s until %s by %s: %s (%s)", what, sl.Ends.UTC().Format("Jan 2 15:04 UTC"), sl.By, sl.Reason, sl.ID))
	}
	for _, inc := range doc.Incidents {
		pi := pageIncident{Check: inc.Check, Headline: inc.Headline, Cause: string(inc.Cause), Vendor: inc.Vendor,
			Opened: inc.Opened.UTC().Format(time.RFC3339), OpenFor: report.Ago(now.Sub(inc.Opened))}
		if rec, ok := srv.opts.Engine.OpenIncident(inc.Check); ok {
			pi.Summary, pi.Matrix = rec.View.Summary, notifier.Matrix(rec.View.Cells)
		}
		data.Incidents = append(data.Incidents, pi)
	}
	for _, s := range doc.Series {
		route := string(s.Route)
		if s.Transport == report.TransportHTTP2 {
			route += " h2"
		}
		row := pageRow{Check: s.Check, Vantage: s.Vantage, Route: route, Status: statusText(s), Since: report.Ago(now.Sub(s.Since))}
		switch {
		case s.Stale:
			row.Class, row.State, row.order = "stale", "silent", 2
		case s.Failing:
			row.Class, row.State, row.order = "fail", "FAILING", 0
			data.Failing++
		case s.Outcome == report.OutcomeNotOffered:
			row.Class, row.State, row.order = "ok", "h2 not offered", 3
		case s.Outcome != report.OutcomeUpgraded:
			row.Class, row.State, row.order = "warn", "not upgrading", 1
		default:
			row.Class, row.State, row.order = "ok", "ok", 3
		}
		if s.Cause != report.CauseOK && s.Outcome != report.OutcomeUpgraded {
			row.Cause = string(s.Cause)
		}
		runs, up := 0, 0
		for i, b := range tl[store.SeriesKey{Check: s.Check, Vantage: s.Vantage, Route: s.Route, Transport: s.Transport}] {
			bar := pageBar{X: i * 3, Class: "none", Title: b.Start.UTC().Format("15:04") + " no run"}
			if b.Runs > 0 {
				runs, up = runs+b.Runs, up+b.Upgraded
				bar.Title = fmt.Sprintf("%s %d of %d upgraded", b.Start.UTC().Format("15:04"), b.Upgraded, b.Runs)
				switch {
				case b.Upgraded == b.Runs:
					bar.Class = "ok"
				case b.Upgraded == 0:
					bar.Class = "fail"
				default:
					bar.Class = "warn"
				}
			}
			row.Bars = append(row.Bars, bar)
		}
		if len(row.Bars) == 0 {
			for i := range pageBuckets {
				row.Bars = append(row.Bars, pageBar{X: i * 3, Class: "none", Title: "no run"})
			}
		}
		row.Uptime = "–"
		if runs > 0 {
			row.Uptime = fmt.Sprintf("%.1f%%", 100*float64(up)/float64(runs))
		}
		data.Rows = append(data.Rows, row)
	}
	slices.SortStableFunc(data.Rows, func(a, b pageRow) int { return a.order - b.order })
	if len(data.Rows) > pageRows {
		data.More, data.Rows = len(data.Rows)-pageRows, data.Rows[:pageRows]
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := statusPage.Execute(w, data); err != nil {
		srv.log.Warn("status page", "err", err)
	}
}

// timeline reads the day's buckets, at most every timelineTTL.
func (srv *Server) timeline(r *http.Request, since time.Time, bucket time.Duration, now time.Time) map[store.SeriesKey][]store.Bucket {
	c := &srv.page
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.data != nil && now.Sub(c.at) < timelineTTL && c.since.Equal(since) {
		return c.data
	}
	data, err := srv.opts.Store.Timeline(r.Context(), since, bucket, pageBuckets)
	if err != nil {
		srv.log.Warn("status page: no timeline", "err", err)
		return c.data
	}
	c.at, c.since, c.data = now, since, data
	return data
}

func statusText(s SeriesStatus) string {
	switch s.Outcome {
	case report.OutcomeUpgraded:
		if s.Transport == report.TransportHTTP2 {
			return "200 upgraded (h2)"
		}
		return "101 upgraded"
	case report.OutcomeNotOffered:
		return "h2 not offered"
	case report.OutcomeRefused:
		return fmt.Sprintf("%d %s", s.Status, strings.ToLower(http.StatusText(s.Status)))
	case report.OutcomeRejectedAfterOpen:
		return "101, then rejected"
	case report.OutcomeNoAnswer:
		return "no answer"
	}
	return string(s.Outcome)
}
