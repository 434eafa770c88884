package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/delivery"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/notifier"
)

// Handler serves /healthz, /status, /metrics (metrics may be nil) and the
// status page at /.
func (srv *Server) Handler(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if !srv.opts.Healthy() {
			http.Error(w, "scheduler not ticking", http.StatusServiceUnavailable)
			return
		}
		// Degraded, not down (200): a restart would lose what memory holds,
		// and would not mend a Slack token.
		ok := true
		if e := srv.opts.Engine.StoreError(); e != "" {
			fmt.Fprintf(w, "degraded: the store (%s) cannot be written: %s\n", srv.opts.Store.Where(), e)
			ok = false
		}
		for _, n := range srv.opts.Notifiers() {
			if n.Broken != "" {
				fmt.Fprintf(w, "degraded: notifier %s is broken since %s, its messages held: %s\n", n.Name, n.Since.UTC().Format(time.RFC3339), n.Broken)
				ok = false
			}
		}
		if ok {
			fmt.Fprintln(w, "ok")
		}
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(srv.Status(r.Context()))
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.HandleFunc("GET /{$}", srv.statusPage)
	return mux
}

// SeriesStatus is one row of /status.
type SeriesStatus struct {
	Check   string       `json:"check"`
	Vantage string       `json:"vantage"`
	Route   report.Route `json:"route"`
	// Transport is http1 or http2.
	Transport report.Transport `json:"transport"`
	Member    string           `json:"member"`
	Status    int              `json:"status"`
	Outcome   report.Outcome   `json:"outcome"`
	Since     time.Time        `json:"since"`
	Cause     report.Cause     `json:"cause"`
	TraceID   string           `json:"trace_id"`
	Failing   bool             `json:"failing"`
	Stale     bool             `json:"stale,omitempty"`
	Updated   time.Time        `json:"updated"`
}

// IncidentStatus is an open incident in /status.
type IncidentStatus struct {
	ID       string       `json:"id"`
	Check    string       `json:"check"`
	Opened   time.Time    `json:"opened"`
	Cause    report.Cause `json:"cause"`
	Vendor   string       `json:"vendor,omitempty"`
	Headline string       `json:"headline"`
	Posted   bool         `json:"posted"`
}

// MemberStatus is a fleet member in /status.
type MemberStatus struct {
	Name    string    `json:"name"`
	Started time.Time `json:"started"`
	Seen    time.Time `json:"seen"`
	// Interval is its shortest check interval ("30s"): silent after three.
	Interval string `json:"interval"`
	Version  string `json:"version,omitempty"`
	Silent   bool   `json:"silent"`
}

func membersStatus(ms []store.Member) []MemberStatus {
	out := make([]MemberStatus, 0, len(ms))
	for _, m := range ms {
		out = append(out, MemberStatus{Name: m.Name, Started: m.Started, Seen: m.Seen, Interval: m.Interval.String(), Version: m.Version, Silent: m.Silent})
	}
	return out
}

// WindowStatus is a maintenance window in /status.
type WindowStatus struct {
	// Check is "" for a window of every check.
	Check  string `json:"check,omitempty"`
	Window string `json:"window"`
	Active bool   `json:"active"`
	// Until is when the window that holds ends; Next when the next starts.
	Until time.Time `json:"until,omitzero"`
	Next  time.Time `json:"next,omitzero"`
	Where string    `json:"where"`
}

// windowsStatus lists cfg's windows as they stand at now.
func windowsStatus(cfg *config.Config, now time.Time) []WindowStatus {
	out := []WindowStatus{}
	add := func(check string, ws []config.Window) {
		for _, w := range ws {
			ok, until := w.Holds(now)
			st := WindowStatus{Check: check, Window: w.String(), Active: ok, Next: w.Next(now), Where: fmt.Sprintf("%s:%d", w.File, w.Line)}
			if ok {
				st.Until = until
			}
			out = append(out, st)
		}
	}
	add("", cfg.Maintenance)
	for i := range cfg.Checks {
		add(cfg.Checks[i].Name, cfg.Checks[i].Maintenance)
	}
	return out
}

// StatusDoc is the /status document.
type StatusDoc struct {
	Vantage string `json:"vantage"`
	Healthy bool   `json:"healthy"`
	// Store is the backend; StoreError says why it cannot be written.
	Store      string `json:"store"`
	StoreError string `json:"store_error,omitempty"`
	Checks     int    `json:"checks"`
	Pending    int    `json:"pending_notifications"`
	// Notifiers are each notifier's delivery state: broken (held until a
	// person fixes it), in flight, dropped.
	Notifiers []delivery.NotifierStatus `json:"notifiers"`
	// Members are the daemons writing to the store and when each last
	// reported: the fleet, with a shared store.
	Members []MemberStatus `json:"members"`
	// Maintenance are the configured windows, Silences those not ended.
	Maintenance []WindowStatus   `json:"maintenance"`
	Silences    []store.Silence  `json:"silences"`
	Series      []SeriesStatus   `json:"series"`
	Incidents   []IncidentStatus `json:"incidents"`
}

// Status is what /status serves: every series (every member's, with a
// shared store) and the open incidents. Without the store it shows what
// this daemon holds in memory.
func (srv *Server) Status(ctx context.Context) StatusDoc {
	cfg := srv.opts.Config()
	doc := StatusDoc{Vantage: cfg.Vantage, Checks: len(cfg.Checks), Store: string(srv.opts.Store.Backend()),
		Maintenance: windowsStatus(cfg, srv.now()), Silences: []store.Silence{}, Notifiers: srv.opts.Notifiers()}
	checks := map[string]int{}
	for i := range cfg.Checks {
		checks[cfg.Checks[i].Name] = i
	}
	rule := func(check string) func(report.Outcome, int, report.Cause) bool {
		if i, ok := checks[check]; ok {
			return cfg.Checks[i].Alert.Fails
		}
		return func(report.Outcome, int, report.Cause) bool { return false }
	}
	doc.Healthy = srv.opts.Healthy()
	doc.StoreError = srv.opts.Engine.StoreError()
	now := srv.now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var rows []store.SeriesRow
	var open map[string]*store.Record
	var err error
	if doc.StoreError == "" {
		rows, err = srv.opts.Store.AllSeries(ctx, now)
		if err == nil {
			open, err = srv.opts.Store.OpenIncidents(ctx)
		}
		if err == nil {
			doc.Pending, err = srv.opts.Store.Pending(ctx)
		}
		if err == nil {
			var ms []store.Member
			ms, err = srv.opts.Store.Members(ctx)
			doc.Members = membersStatus(ms)
		}
		if err == nil {
			var sl []store.Silence
			if sl, err = srv.opts.Store.Silences(ctx, now); err == nil && sl != nil {
				doc.Silences = sl
			}
		}
	}
	if doc.StoreError != "" || err != nil {
		rows, open = srv.opts.Engine.Snapshot(now)
		doc.Pending = srv.opts.Engine.PendingLocal()
		doc.Members = membersStatus(srv.opts.Members())
	}
	doc.Series = []SeriesStatus{}
	for _, r := range rows {
		doc.Series = append(doc.Series, SeriesStatus{Check: r.Check, Vantage: r.Vantage, Route: r.Route, Transport: r.Transport, Member: r.Member,
			Status: r.Status, Outcome: r.Outcome, Since: r.Since, Cause: r.Cause, TraceID: r.TraceID,
			Failing: !r.Stale && rule(r.Check)(r.Outcome, r.Status, r.Cause), Stale: r.Stale, Updated: r.Updated})
	}
	doc.Incidents = []IncidentStatus{}
	for _, rec := range open {
		doc.Incidents = append(doc.Incidents, incidentStatus(rec))
	}
	slices.SortFunc(doc.Incidents, func(a, b IncidentStatus) int { return strings.Compare(a.Check, b.Check) })
	return doc
}

func incidentStatus(rec *store.Record) IncidentStatus {
	return IncidentStatus{ID: rec.Decision.ID, Check: rec.Decision.Check, Opened: rec.Decision.Opened,
		Cause: rec.Decision.Cause, Vendor: rec.Decision.Vendor, Headline: notifier.Headline(rec.View), Posted: rec.Posted}
}
