package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wscanary/wscanary/notifier"
)

// Tee prints every event once on the console, mirrors it to Slack when
// configured, and counts it for the summary.
type Tee struct {
	Console *notifier.Console
	// Slack, when set, gets a copy of every event; its errors are logged.
	Slack notifier.Notifier
	Tally *Tally
	Log   *slog.Logger
}

func (n *Tee) Notify(ctx context.Context, ev notifier.Event) (notifier.Delivery, error) {
	d, err := n.Console.Notify(ctx, ev)
	if err != nil {
		return d, err
	}
	n.Tally.add(ev)
	if n.Slack != nil {
		if _, err := n.Slack.Notify(ctx, ev); err != nil {
			n.Log.Warn("slack mirror failed", "err", err)
		}
	}
	return d, nil
}

// Tally counts what the demo posted, for its summary.
type Tally struct {
	mu         sync.Mutex
	alerts     int
	recoveries int
	causes     map[string]int
}

func (t *Tally) add(ev notifier.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.causes == nil {
		t.causes = map[string]int{}
	}
	switch ev.Kind {
	case notifier.KindAlert, notifier.KindChange:
		t.alerts++
		t.causes[string(ev.Diagnosis.Cause)]++
	case notifier.KindRecovery:
		t.recoveries++
	}
}

// Summary is the closing text.
func (t *Tally) Summary() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "\nSummary: %d alerts and %d recoveries.\n", t.alerts, t.recoveries)
	causes := make([]string, 0, len(t.causes))
	for c := range t.causes {
		causes = append(causes, c)
	}
	sort.Strings(causes)
	for _, c := range causes {
		fmt.Fprintf(&b, "  %-26s %d alert(s)\n", c, t.causes[c])
	}
	b.WriteString("\nNext: write a check for your own endpoint (see checks.d/example-chat.yaml), then\n  wscanary validate --config wscanary.yaml && wscanary check --config wscanary.yaml\n")
	return b.String()
}

// LockedWriter serialises writes from the notifier and the progress line.
type LockedWriter struct {
	mu sync.Mutex
	W  io.Writer
	// ClearLine erases the live progress line before other output.
	ClearLine bool
}

func (l *LockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ClearLine {
		io.WriteString(l.W, "\r\x1b[2K")
	}
	return l.W.Write(p)
}

// Progress draws a live status line on a terminal and plain lines
// otherwise.
type Progress struct {
	w     *LockedWriter
	live  bool
	start time.Time
}

// NewProgress draws on w; live redraws one line on a terminal.
func NewProgress(w *LockedWriter, live bool) *Progress {
	return &Progress{w: w, live: live, start: time.Now()}
}

// Event prints a step.
func (p *Progress) Event(s string) {
	p.clear()
	stamp := time.Since(p.start).Truncate(time.Second)
	if p.live {
		fmt.Fprintf(p.w, "\x1b[1;36m%6s  ▶ %s\x1b[0m\n\n", stamp, s)
	} else {
		fmt.Fprintf(p.w, "%6s  > %s\n\n", stamp, s)
	}
}

// Wait sleeps d, redrawing the live line; false when ctx ended.
func (p *Progress) Wait(ctx context.Context, d time.Duration, what string) bool {
	end := time.Now().Add(d)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	spin := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
	for i := 0; ; i++ {
		left := time.Until(end)
		if left <= 0 {
			return true
		}
		if p.live {
			p.w.mu.Lock()
			fmt.Fprintf(p.w.W, "\r\x1b[2K\x1b[2m%s %s… next change in %ds\x1b[0m", spin[i%len(spin)], what, int(left.Seconds()+0.99))
			p.w.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

func (p *Progress) clear() {
	if p.live {
		p.w.mu.Lock()
		fmt.Fprint(p.w.W, "\r\x1b[2K")
		p.w.mu.Unlock()
	}
}

// Done clears the live line.
func (p *Progress) Done() { p.clear() }

// Alerts is how many alerts (and changes) were posted.
func (t *Tally) Alerts() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.alerts
}
