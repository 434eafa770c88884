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

// Tee prints every message once on the console, mirrors it to Slack when
// configured (with Slack's own thread for each incident), and counts it for
// the summary.
type Tee struct {
	Console *notifier.Console
	// Slack, when set, gets a copy of every message; its errors are logged.
	Slack notifier.Notifier
	Tally *Tally
	Log   *slog.Logger

	mu      sync.Mutex
	threads map[string]notifier.Delivery // console root ts -> Slack root
}

func (n *Tee) Notify(ctx context.Context, m notifier.Message) (notifier.Delivery, error) {
	d, err := n.Console.Notify(ctx, m)
	if err != nil {
		return d, err
	}
	n.Tally.add(m)
	if n.Slack != nil {
		n.mirror(ctx, m, d)
	}
	return d, nil
}

func (n *Tee) mirror(ctx context.Context, m notifier.Message, console notifier.Delivery) {
	n.mu.Lock()
	if n.threads == nil {
		n.threads = map[string]notifier.Delivery{}
	}
	if m.Thread != nil {
		root, ok := n.threads[m.Thread.TS]
		if !ok {
			root = notifier.Delivery{}
		}
		m.Thread = &root
	}
	n.mu.Unlock()
	d, err := n.Slack.Notify(ctx, m)
	if err != nil {
		n.Log.Warn("slack mirror failed", "err", err)
		return
	}
	if m.Kind == notifier.KindOpen {
		n.mu.Lock()
		n.threads[console.TS] = d
		n.mu.Unlock()
	}
}

// Tally counts what the demo posted, for its summary.
type Tally struct {
	mu         sync.Mutex
	incidents  int
	updates    int
	recoveries int
	causes     map[string]int
}

func (t *Tally) add(m notifier.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.causes == nil {
		t.causes = map[string]int{}
	}
	switch m.Kind {
	case notifier.KindOpen:
		t.incidents++
		t.causes[string(m.Incident.Cause)]++
	case notifier.KindUpdate:
		t.updates++
	case notifier.KindReply:
		for _, e := range m.Events {
			switch e.Kind {
			case notifier.EventResolved:
				t.recoveries++
			case notifier.EventCauseChanged:
				t.causes[string(e.ToCause)]++
			}
		}
	}
}

// Incidents is how many incidents opened.
func (t *Tally) Incidents() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.incidents
}

// Summary is the closing text.
func (t *Tally) Summary() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "\nSummary: %d incident message(s), updated %d time(s) in place, and %d recoveries.\n", t.incidents, t.updates, t.recoveries)
	causes := make([]string, 0, len(t.causes))
	for c := range t.causes {
		causes = append(causes, c)
	}
	sort.Strings(causes)
	for _, c := range causes {
		fmt.Fprintf(&b, "  %-26s %d time(s)\n", c, t.causes[c])
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
