package probe

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/wscanary/wscanary/monitor/redact"
	"github.com/wscanary/wscanary/monitor/report"
)

// Bounds of a scripted exchange's evidence.
const (
	// DefaultWithin is how long a step waits for its expected message.
	DefaultWithin = 5 * time.Second
	// MaxMessages and MaxMessageBytes bound the messages kept as evidence
	// (each is cut to MaxBody).
	MaxMessages     = 16
	MaxMessageBytes = 8 << 10
)

// Step is one step of a scripted exchange after the upgrade: a message to
// send, then a message to wait for. An application protocol's refusal
// usually comes after an earlier message of its own (Socket.IO's open
// packet comes before its namespace refusal), so a step reads until a
// message matches, the connection closes, or Within passes.
type Step struct {
	// Name says what the step is for, in the evidence ("namespace
	// connect"); "" is "step N".
	Name string
	// Send is written first ("" for nothing); "{token}" is replaced by the
	// credential when Credential.In is "message", else removed.
	Send string
	// Build, when set, makes the message instead of Send, from the
	// credential ("" when none goes in a message), and it goes as a
	// binary message: a binary protocol's packet has lengths to fill in
	// (MQTT's CONNECT).
	Build func(token string) []byte
	// Expect is what ends the step well; nil waits for nothing.
	Expect *regexp.Regexp
	// Within bounds the wait for Expect; 0 is DefaultWithin. The
	// attempt's timeout bounds it too.
	Within time.Duration
	// Refused, when set, reads a message as the protocol's refusal (its
	// reason): the step fails at once instead of waiting out Within.
	Refused func(msg []byte) (reason string, refused bool)
}

// runSteps runs req.Steps in order on an open connection and records each
// step, the messages read and how the first failing one failed. answer
// replies to the protocol's own keep-alives while a step waits.
func runSteps(ctx context.Context, conn *websocket.Conn, req Request, att *report.Attempt, secrets []string) {
	conn.SetReadLimit(MaxReply)
	defer func() { // what the server said may quote the credential
		att.CloseReason = redact.Secrets(att.CloseReason, secrets...)
		att.Refusal = redact.Secrets(att.Refusal, secrets...)
	}()
	opened := time.Now()
	kept := 0
	keep := func(msg []byte) {
		if len(att.Messages) >= MaxMessages || kept >= MaxMessageBytes {
			return
		}
		s := string(msg[:min(len(msg), MaxBody, MaxMessageBytes-kept)])
		kept += len(s)
		s = redact.Secrets(s, secrets...)
		if !printable(s) { // a binary protocol's packet, as hex
			s = "0x" + hex.EncodeToString([]byte(s[:min(len(s), MaxBody/2)]))
		}
		att.Messages = append(att.Messages, s)
		if att.Reply == "" {
			att.Reply = s
		}
	}
	for i, st := range req.Steps {
		name := cmp.Or(st.Name, fmt.Sprintf("step %d", i+1))
		start := time.Now()
		result, detail := report.StepOK, ""
		typ, msg := websocket.MessageText, []byte(withToken(st.Send, req.Credential))
		if st.Build != nil {
			typ, msg = websocket.MessageBinary, st.Build(tokenIn(req.Credential))
		}
		if len(msg) > 0 {
			if err := conn.Write(ctx, typ, msg); err != nil {
				result, detail = report.StepSendFailed, "sending: "+trimWS(err)
			}
		}
		if result == report.StepOK && st.Expect != nil {
			result, detail = await(ctx, conn, st, req.Answer, att, keep)
		}
		att.Steps = append(att.Steps, report.Step{Name: name, Result: result, MS: ms(time.Since(start))})
		if result == report.StepOK && st.Expect != nil && att.ReplyMS == 0 {
			att.ReplyMS = ms(time.Since(opened))
		}
		if result != report.StepOK {
			att.Error = redact.Secrets(fmt.Sprintf("%s: %s: %s", report.ErrExpect, name, detail), secrets...)
			return
		}
	}
}

// await reads messages until one matches the step's expect, one is the
// protocol's refusal, the connection closes, or the step's time passes.
func await(ctx context.Context, conn *websocket.Conn, st Step, answer func([]byte) ([]byte, bool),
	att *report.Attempt, keep func([]byte)) (report.StepResult, string) {
	within := st.Within
	if within <= 0 {
		within = DefaultWithin
	}
	sctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	read := 0
	var last []byte
	for {
		_, msg, err := conn.Read(sctx)
		if err != nil {
			if code := websocket.CloseStatus(err); code != -1 {
				att.CloseCode = int(code)
				var ce websocket.CloseError
				if errors.As(err, &ce) {
					att.CloseReason = strings.ToValidUTF8(ce.Reason[:min(len(ce.Reason), MaxBody)], "?")
				}
				return report.StepClosed, fmt.Sprintf("the server closed with %d %q", code, att.CloseReason)
			}
			if sctx.Err() != nil {
				if read > 0 {
					return report.StepNoMatch, fmt.Sprintf("%d message(s) in %s, none matched %q; the last: %q",
						read, within, st.Expect.String(), report.OneLine(string(last), 121))
				}
				return report.StepTimeout, fmt.Sprintf("no message within %s (expecting %q)", within, st.Expect.String())
			}
			return report.StepClosed, "reading: " + trimWS(err)
		}
		read++
		last = msg
		keep(msg)
		if answer != nil {
			if reply, ok := answer(msg); ok {
				if err := conn.Write(sctx, websocket.MessageText, reply); err != nil {
					return report.StepSendFailed, "answering the server's keep-alive: " + trimWS(err)
				}
				continue
			}
		}
		if st.Refused != nil {
			if reason, ok := st.Refused(msg); ok {
				att.Refusal = strings.ToValidUTF8(reason[:min(len(reason), MaxBody)], "?")
				return report.StepRefused, fmt.Sprintf("refused: %q", att.Refusal)
			}
		}
		if st.Expect.Match(msg) {
			return report.StepOK, ""
		}
	}
}

// tokenIn is the credential when it goes in a message, else "".
func tokenIn(c *Credential) string {
	if c == nil || c.In != "message" {
		return ""
	}
	return c.Value
}

// withToken puts the credential into a message when it goes in one.
func withToken(send string, c *Credential) string {
	if c == nil || c.Value == "" || c.In != "message" {
		return strings.ReplaceAll(send, "{token}", "")
	}
	return strings.ReplaceAll(send, "{token}", c.Value)
}

// printable: text a person can read, not a binary packet.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return false
		}
	}
	return true
}
