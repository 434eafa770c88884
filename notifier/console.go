package notifier

import (
	"context"
	"io"
	"strings"
	"sync"
)

// ConsoleOptions configure NewConsole.
type ConsoleOptions struct {
	// Color turns on ANSI colors: the headline red for an alert or reminder,
	// yellow for a change, green for a recovery. Default off.
	Color bool
}

// Console prints events as Text to a writer: the demo and dry runs use it.
// It is safe for concurrent use; each event is written with one Write.
type Console struct {
	mu    sync.Mutex
	w     io.Writer
	color bool
}

// NewConsole returns a Console writing to w.
func NewConsole(w io.Writer, opts ConsoleOptions) *Console {
	return &Console{w: w, color: opts.Color}
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
)

// Notify writes Text(ev) followed by a blank line. The Delivery is
// {Channel: "console", TS: ev.ID}, with ThreadTS set for an event that
// carries a Thread, so threads work the same way as with Slack.
func (c *Console) Notify(ctx context.Context, ev Event) (Delivery, error) {
	if err := ctx.Err(); err != nil {
		return Delivery{}, err
	}
	text := Text(ev)
	if c.color {
		text = colorize(ev.Kind, text)
	}
	c.mu.Lock()
	_, err := io.WriteString(c.w, text+"\n")
	c.mu.Unlock()
	if err != nil {
		return Delivery{}, err
	}
	d := Delivery{Channel: "console", TS: ev.ID}
	if root, ok := ev.thread(); ok && ev.Kind != KindAlert {
		d.ThreadTS = root.TS
	}
	return d, nil
}

// colorize paints the headline in the kind's color and dims the labels.
func colorize(k Kind, text string) string {
	color := ansiRed
	switch k {
	case KindRecovery:
		color = ansiGreen
	case KindChange:
		color = ansiYellow
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	var b strings.Builder
	for i, l := range lines {
		switch {
		case i == 0:
			b.WriteString(ansiBold + color + l + ansiReset)
		case len(l) > 2+labelWidth && strings.TrimSpace(l[:2+labelWidth]) != "":
			b.WriteString(ansiDim + l[:2+labelWidth] + ansiReset + l[2+labelWidth:])
		default:
			b.WriteString(l)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
