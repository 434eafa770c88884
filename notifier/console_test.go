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
		ev        notifier.Event
		color     bool
		wantColor string // ANSI color of the headline, "" for plain
		thread    string
	}{
		{"alert plain", alertEvent(), false, "", ""},
		{"alert red", alertEvent(), true, "\x1b[31m", ""},
		{"recovery green", recoveryEvent(), true, "\x1b[32m", "1764000750.000100"},
		{"change yellow", changeEvent(), true, "\x1b[33m", "1764000750.000100"},
		{"reminder red", reminderEvent(), true, "\x1b[31m", "1764000750.000100"},
		{"recovery plain", recoveryEvent(), false, "", "1764000750.000100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			c := notifier.NewConsole(&buf, notifier.ConsoleOptions{Color: tt.color})
			d, err := c.Notify(t.Context(), tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if want := (notifier.Delivery{Channel: "console", TS: tt.ev.ID, ThreadTS: tt.thread}); d != want {
				t.Errorf("Delivery = %+v, want %+v", d, want)
			}
			out := buf.String()
			first, _, _ := strings.Cut(out, "\n")
			if tt.wantColor == "" {
				if strings.Contains(out, "\x1b") {
					t.Errorf("plain output has escape sequences:\n%q", out)
				}
				if out != notifier.Text(tt.ev)+"\n" {
					t.Errorf("plain output is not Text(ev):\n%s", out)
				}
				return
			}
			if !strings.HasPrefix(first, "\x1b[1m"+tt.wantColor) || !strings.HasSuffix(first, "\x1b[0m") {
				t.Errorf("headline %q is not painted %q", first, tt.wantColor)
			}
			if stripped := stripANSI(out); stripped != notifier.Text(tt.ev)+"\n" {
				t.Errorf("colored output differs from Text(ev) once the colors are removed:\n%s", stripped)
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

// Every field line is "  label<padding>value" with the values in one column.
func TestTextAligned(t *testing.T) {
	t.Parallel()
	const col = 12 // two spaces, a 10-character label column
	multiline := changeEvent()
	multiline.Attempt.Body = "<html>\n<body>\nblocked\n</body>"
	for _, ev := range []notifier.Event{alertEvent(), recoveryEvent(), changeEvent(), reminderEvent(), multiline} {
		lines := strings.Split(strings.TrimSuffix(notifier.Text(ev), "\n"), "\n")
		if len(lines) < 8 {
			t.Fatalf("%s: only %d lines", ev.Kind, len(lines))
		}
		for _, l := range lines[1:] {
			if strings.TrimSpace(l[:min(col, len(l))]) == "" && len(l) > col && l[col] != ' ' {
				continue // a value's continuation line
			}
			if len(l) <= col || !strings.HasPrefix(l, "  ") || l[2] == ' ' || l[col-1] != ' ' || l[col] == ' ' {
				t.Errorf("%s: %q does not have its value at column %d", ev.Kind, l, col)
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
			ev := alertEvent()
			ev.ID = fmt.Sprintf("event-%02d", i)
			if _, err := c.Notify(context.Background(), ev); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	blocks := strings.Split(strings.TrimSuffix(buf.String(), "\n\n"), "\n\n")
	if len(blocks) != n {
		t.Fatalf("%d blocks of output, want %d", len(blocks), n)
	}
	want := stripANSI(notifier.Text(alertEvent()))
	for _, b := range blocks {
		// each block is one whole event: same as the fixture but for its id
		got := stripANSI(b + "\n")
		i := strings.LastIndex(got, "event-")
		if i < 0 || got[:i] != want[:strings.LastIndex(want, "chat/us-east-1/cdn/")] {
			t.Fatalf("interleaved output:\n%s", b)
		}
	}
}

func TestConsoleCanceled(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := notifier.NewConsole(&buf, notifier.ConsoleOptions{}).Notify(ctx, alertEvent()); err == nil || buf.Len() != 0 {
		t.Errorf("err = %v, wrote %d bytes", err, buf.Len())
	}
}

func ExampleConsole() {
	c := notifier.NewConsole(os.Stdout, notifier.ConsoleOptions{})
	ev := changeEvent()
	ev.Attempt.Body = ""
	d, _ := c.Notify(context.Background(), ev)
	fmt.Printf("delivery: %+v\n", d)
	// Output:
	// CHANGED  api: 401 -> 403 on eu-west-1/cdn
	//   check     api
	//   vantage   eu-west-1
	//   route     cdn
	//   status    401 -> 403 Forbidden
	//   since     2026-11-24T11:00:00Z (30s ago)
	//   request   credential in header
	//   cause     cdn_blocked (aws)
	//   summary   AWS WAF blocks the upgrade at CloudFront; the origin accepts it.
	//   hint      Look up the blocking rule in the AWS WAF web ACL sampled requests and add an exception for the WebSocket path
	//   header    Server: CloudFront
	//   header    X-Amz-Cf-Id: Q1w2E3r4T5y6==
	//   header    Via: 1.1 3f2a.cloudfront.net (CloudFront)
	//   header    X-Cache: Error from cloudfront
	//   header    X-Amzn-Waf-Action: block
	//   same run  eu-west-1 / direct: 101 ok
	//   trace     0af7651916cd43dd8448eb211c80319c
	//   url       wss://api.example.com/socket?access_token=REDACTED
	//   event     api/eu-west-1/cdn/20261124T110030Z
	//
	// delivery: {Channel:console TS:api/eu-west-1/cdn/20261124T110030Z ThreadTS:1764000750.000100}
}
