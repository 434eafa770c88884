package notifier

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync"
)

// ConsoleOptions configure NewConsole.
type ConsoleOptions struct {
	// Color turns on ANSI colors: the headline red for a failure, green for
	// a recovery, yellow for the rest. Default off.
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

// Notify writes Text(m) followed by a blank line: an incident in full when
// it opens, its headline and matrix when it is updated, replies and
// notices as their lines. The Delivery is {Channel: "console", TS: m.ID}
// for an open, so threads work the same way as with Slack.
func (c *Console) Notify(ctx context.Context, m Message) (Delivery, error) {
	if err := ctx.Err(); err != nil {
		return Delivery{}, err
	}
	if !slices.Contains(Kinds, m.Kind) {
		return Delivery{}, errorf("notify", "unknown message kind %q", m.Kind)
	}
	text := Text(m)
	if text == "" {
		return Delivery{}, nil
	}
	if c.color {
		text = colorize(m, text)
	}
	c.mu.Lock()
	_, err := io.WriteString(c.w, text+"\n")
	c.mu.Unlock()
	if err != nil {
		return Delivery{}, err
	}
	if root, ok := m.thread(); ok {
		return root, nil
	}
	return Delivery{Channel: "console", TS: m.ID}, nil
}

// colorize paints the first line red for a failure, green for a recovery,
// yellow for the rest, and dims the labels.
func colorize(m Message, text string) string {
	color := ansiYellow
	switch {
	case m.Kind == KindReply && m.Resolves(), m.Incident != nil && m.Incident.State == StateResolved:
		color = ansiGreen
	case m.Kind == KindOpen, m.Kind == KindReply && m.tells(EventReopened):
		color = ansiRed
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	var b strings.Builder
	for i, l := range lines {
		switch {
		case i == 0:
			b.WriteString(ansiBold + color + l + ansiReset)
		case len(l) > 2+labelWidth && strings.HasPrefix(l, "  ") && l[2] != ' ':
			b.WriteString(ansiDim + l[:2+labelWidth] + ansiReset + l[2+labelWidth:])
		default:
			b.WriteString(l)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
