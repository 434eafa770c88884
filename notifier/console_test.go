package notifier_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/wscanary/wscanary/notifier"
)

func TestConsole(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		msg       notifier.Message
		color     bool
		wantColor string // ANSI color of the headline, "" for plain
		want      notifier.Delivery
	}{
		{"open plain", openMsg(), false, "", notifier.Delivery{Channel: "console", TS: openMsg().ID}},
		{"open red", openMsg(), true, "\x1b[31m", notifier.Delivery{Channel: "console", TS: openMsg().ID}},
		{"recovery green", recoveryMsg(), true, "\x1b[32m", root},
		{"resolved update green", resolvedUpdateMsg(), true, "\x1b[32m", root},
		{"update yellow", updateMsg(), true, "\x1b[33m", root},
		{"widened yellow", replyMsg(widened()), true, "\x1b[33m", root},
		{"reopened red", replyMsg(reopened()), true, "\x1b[31m", root},
		{"notice yellow", noticeMsg(), true, "\x1b[33m", notifier.Delivery{Channel: "console", TS: noticeMsg().ID}},
		{"recovery plain", recoveryMsg(), false, "", root},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			c := notifier.NewConsole(&buf, notifier.ConsoleOptions{Color: tt.color})
			d, err := c.Notify(t.Context(), tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if d != tt.want {
				t.Errorf("Delivery = %+v, want %+v", d, tt.want)
			}
			out := buf.String()
			first, _, _ := strings.Cut(out, "\n")
			if tt.wantColor == "" {
				if strings.Contains(out, "\x1b") {
					t.Errorf("plain output has escape sequences:\n%q", out)
				}
				if out != notifier.Text(tt.msg)+"\n" {
					t.Errorf("plain output is not Text(m):\n%s", out)
				}
				return
			}
			if !strings.HasPrefix(first, "\x1b[1m"+tt.wantColor) || !strings.HasSuffix(first, "\x1b[0m") {
				t.Errorf("headline %q is not painted %q", first, tt.wantColor)
			}
			if stripped := stripANSI(out); stripped != notifier.Text(tt.msg)+"\n" {
				t.Errorf("colored output differs from Text(m) once the colors are removed:\n%s", stripped)
			}
		})
	}
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Every field line is "  label<padding>value" with the values in one
// column; matrix lines are indented by four.
func TestTextAligned(t *testing.T) {
	t.Parallel()
	const col = 12 // two spaces, a 10-character label column
	multiline := openMsg()
	multiline.Incident.Attempt.Body = "<html>\n<body>\nblocked\n</body>"
	for _, m := range []notifier.Message{openMsg(), multiline, resolvedUpdateMsg(), noticeMsg()} {
		lines := strings.Split(strings.TrimSuffix(notifier.Text(m), "\n"), "\n")
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "    ") && len(l) > col && l[col] != ' ' && strings.TrimSpace(l[:col]) == "" {
				continue // a value's continuation line
			}
			if strings.HasPrefix(l, "    ") {
				continue // the matrix
			}
			if len(l) <= col || !strings.HasPrefix(l, "  ") || l[col-1] != ' ' || l[col] == ' ' {
				t.Errorf("%s: %q does not have its value at column %d", m.Kind, l, col)
			}
		}
	}
}

func TestConsoleConcurrent(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	c := notifier.NewConsole(&buf, notifier.ConsoleOptions{Color: true})
	const n = 32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m := openMsg()
			inc := *m.Incident
			inc.ID = fmt.Sprintf("incident-%02d", i)
			m.Incident = &inc
			if _, err := c.Notify(context.Background(), m); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	blocks := strings.Split(strings.TrimSuffix(buf.String(), "\n\n"), "\n\n")
	if len(blocks) != n {
		t.Fatalf("%d blocks of output, want %d", len(blocks), n)
	}
	want := stripANSI(notifier.Text(openMsg()))
	for _, b := range blocks {
		// each block is one whole message: same as the fixture but for its id
		got := stripANSI(b + "\n")
		i := strings.LastIndex(got, "incident-")
		if i < 0 || got[:i] != want[:strings.LastIndex(want, "chat-2026")] {
			t.Fatalf("interleaved output:\n%s", b)
		}
	}
}

func TestConsoleCanceled(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := notifier.NewConsole(&buf, notifier.ConsoleOptions{}).Notify(ctx, openMsg()); err == nil || buf.Len() != 0 {
		t.Errorf("err = %v, wrote %d bytes", err, buf.Len())
	}
}

func ExampleConsole() {
	c := notifier.NewConsole(os.Stdout, notifier.ConsoleOptions{})
	d, _ := c.Notify(context.Background(), updateMsg())
	fmt.Printf("delivery: %+v\n", d)
	// Output:
	// UPDATED  chat: 403 Forbidden on 3 of 6
	//     VANTAGE     cdn              direct
	//     ap-south-1  ✗ 403 Forbidden  • 426 Upgrade Required
	//     eu-west-1   ✗ 403 Forbidden  ✓ 101
	//     us-east-1   ✗ 403 Forbidden  ✓ 101
	//
	// delivery: {Channel:C0ALERTS TS:1764000750.000100}
}
