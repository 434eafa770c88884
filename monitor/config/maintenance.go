package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"
)

// Window is a maintenance window: a recurring one (a cron start and a
// duration) or a fixed one (from and to). While one holds, runs and the
// history go on and no incident opens; an open incident stays open and
// says it is in maintenance.
type Window struct {
	// Schedule is the cron expression (5 fields) of the starts; Sched is
	// it parsed. Empty for a fixed window.
	Schedule string
	Sched    cron.Schedule
	Duration time.Duration
	// From and To bound a fixed window.
	From, To time.Time
	// Reason is shown where the window is (optional).
	Reason string
	// File and Line say where it was configured.
	File string
	Line int
}

// MaxWindow bounds a recurring window: one longer than a week is a
// silence that was forgotten, not maintenance.
const MaxWindow = 7 * Day

// Holds reports whether the window holds at t and, if so, until when.
func (w Window) Holds(t time.Time) (bool, time.Time) {
	if w.Sched == nil {
		return !t.Before(w.From) && t.Before(w.To), w.To
	}
	// The start that matters is the last one at or before t: the first
	// after t-Duration, if it is not after t.
	start := w.Sched.Next(t.Add(-w.Duration))
	if start.IsZero() || start.After(t) {
		return false, time.Time{}
	}
	return true, start.Add(w.Duration)
}

// Next is the next start of the window after t (zero when there is none).
func (w Window) Next(t time.Time) time.Time {
	if w.Sched == nil {
		if t.Before(w.From) {
			return w.From
		}
		return time.Time{}
	}
	return w.Sched.Next(t)
}

// String says what the window is, for /status and messages.
func (w Window) String() string {
	var s string
	if w.Sched != nil {
		s = fmt.Sprintf("%q for %s", w.Schedule, w.Duration)
	} else {
		s = w.From.UTC().Format(time.RFC3339) + " to " + w.To.UTC().Format(time.RFC3339)
	}
	if w.Reason != "" {
		s += " (" + w.Reason + ")"
	}
	return s
}

// Occurrences are the spans of the window that overlap [from, to), at
// most limit of them.
func (w Window) Occurrences(from, to time.Time, limit int) [][2]time.Time {
	var out [][2]time.Time
	if w.Sched == nil {
		if w.From.Before(to) && w.To.After(from) {
			out = append(out, [2]time.Time{w.From, w.To})
		}
		return out
	}
	for start := w.Sched.Next(from.Add(-w.Duration)); !start.IsZero() && start.Before(to) && len(out) < limit; start = w.Sched.Next(start) {
		out = append(out, [2]time.Time{start, start.Add(w.Duration)})
	}
	return out
}

// InWindow returns the window that holds at t among ws, if any.
func InWindow(ws []Window, t time.Time) (Window, time.Time, bool) {
	for _, w := range ws {
		if ok, until := w.Holds(t); ok {
			return w, until, true
		}
	}
	return Window{}, time.Time{}, false
}

type windowDraft struct {
	w                            Window
	scheduleLine, durLine, fromL int
}

var windowKeys = section[windowDraft]{
	{"schedule", sString(`Cron expression (5 fields) of the window's starts, e.g. "0 2 * * SUN".`), func(l *loader, file string, _, v *yaml.Node, d *windowDraft) {
		d.scheduleLine = v.Line
		d.w.Schedule, _ = l.str(file, "maintenance.schedule", v)
		if strings.HasPrefix(strings.TrimSpace(d.w.Schedule), "@every") {
			l.add(file, v.Line, "maintenance.schedule: %q: a window starts at a time of day; use 5 cron fields or @daily, @weekly", d.w.Schedule)
			return
		}
		sched, err := ParseSchedule(d.w.Schedule, l.now())
		if err != nil {
			l.add(file, v.Line, "maintenance.schedule: %q: %v", d.w.Schedule, err)
			return
		}
		d.w.Sched = sched
	}},
	{"duration", sString("How long each window lasts (2h, 30m, 1d)."), func(l *loader, file string, _, v *yaml.Node, d *windowDraft) {
		d.durLine = v.Line
		d.w.Duration, _ = l.days(file, "maintenance.duration", v)
	}},
	{"from", sString("Start of a one-off window, RFC 3339 (2026-12-24T22:00:00Z)."), func(l *loader, file string, _, v *yaml.Node, d *windowDraft) {
		d.fromL = v.Line
		d.w.From, _ = l.timestamp(file, "maintenance.from", v)
	}},
	{"to", sString("End of a one-off window, RFC 3339."), func(l *loader, file string, _, v *yaml.Node, d *windowDraft) {
		d.w.To, _ = l.timestamp(file, "maintenance.to", v)
	}},
	{"reason", sString("Shown with the window: a change ticket, a name."), func(l *loader, file string, _, v *yaml.Node, d *windowDraft) {
		d.w.Reason, _ = l.str(file, "maintenance.reason", v)
	}},
}

// windowsSchema is the schema of a `maintenance:` list.
func windowsSchema() schema {
	item := sObject(windowKeys, "A window: schedule and duration, or from and to.")
	item["oneOf"] = []schema{{"required": []string{"schedule", "duration"}}, {"required": []string{"from", "to"}}}
	return sList(item, "Maintenance windows: runs go on, no incident opens, reminders pause.")
}

// windows reads a `maintenance:` list.
func (l *loader) windows(file string, v *yaml.Node) []Window {
	var out []Window
	l.list(file, "maintenance", v, func(item *yaml.Node) {
		d := windowDraft{w: Window{File: file, Line: item.Line}}
		before := l.count()
		windowKeys.read(l, file, item, &d)
		recurring, fixed := d.w.Schedule != "" || d.w.Duration > 0, !d.w.From.IsZero() || !d.w.To.IsZero()
		switch {
		case recurring && fixed:
			l.add(file, item.Line, "maintenance: set schedule and duration, or from and to, not both")
		case recurring && (d.w.Schedule == "" || d.w.Duration == 0) && l.count() == before:
			l.add(file, item.Line, "maintenance: a recurring window needs both schedule and duration")
		case recurring && d.w.Duration > MaxWindow:
			l.add(file, d.durLine, "maintenance.duration: %s is more than a week; use a silence or a one-off window (from, to)", d.w.Duration)
		case fixed && (d.w.From.IsZero() || d.w.To.IsZero()) && l.count() == before:
			l.add(file, item.Line, "maintenance: a one-off window needs both from and to")
		case fixed && !d.w.To.After(d.w.From):
			l.add(file, d.fromL, "maintenance: to must be after from")
		case !recurring && !fixed && l.count() == before:
			l.add(file, item.Line, "maintenance: set schedule and duration, or from and to")
		}
		if l.count() == before {
			out = append(out, d.w)
		}
	})
	return out
}

// timestamp reads an RFC 3339 time.
func (l *loader) timestamp(file, key string, v *yaml.Node) (time.Time, bool) {
	s, ok := l.str(file, key, v)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		l.add(file, v.Line, "%s: expected an RFC 3339 time like 2026-12-24T22:00:00Z, got %q", key, s)
		return time.Time{}, false
	}
	return t, true
}
