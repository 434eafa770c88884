package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/diagnose"
	"github.com/wscanary/wscanary/monitor/internal/files"
	"github.com/wscanary/wscanary/monitor/redact"
)

// maxTokenBytes bounds a token file or command output: a credential is a
// few KiB at most, anything larger is a misconfiguration.
const maxTokenBytes = 64 << 10

// tokenCommandTimeout bounds a token command when the run has more time.
const tokenCommandTimeout = 10 * time.Second

// stderrKept bounds what a failing token command's stderr adds to the
// run's error, after scrubbing.
const stderrKept = 300

// fetchToken resolves a check's credential for one run. File and command
// are read every time because tokens rotate. Errors never include the
// token, only where it was to come from.
func fetchToken(ctx context.Context, t *config.Token) (string, error) {
	switch {
	case t == nil:
		return "", nil
	case t.Value != "":
		return t.Value, nil
	case t.File != "":
		b, err := files.ReadRegular(t.File, maxTokenBytes)
		if errors.As(err, new(*files.TooLargeError)) {
			return "", fmt.Errorf("token file %s: more than %d bytes", t.File, maxTokenBytes)
		}
		if err != nil {
			return "", fmt.Errorf("read token file: %w", err)
		}
		return checkToken(b, "token file "+t.File)
	case len(t.Command) > 0:
		return runTokenCommand(ctx, t.Command)
	}
	return "", errors.New("token has no source")
}

// runTokenCommand runs a token helper in a process group of its own, so
// that a timeout kills whatever it started too. A helper that exits 0
// after printing the token but leaves a child holding stdout (a backgrounded
// refresher) still gives its token; stderr, which may echo secrets, is
// bounded and scrubbed before it becomes part of the run's error.
func runTokenCommand(ctx context.Context, argv []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, tokenCommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out, errOut bytes.Buffer
	cmd.Stdout = &limitedWriter{w: &out, n: maxTokenBytes + 1}
	cmd.Stderr = &limitedWriter{w: &errOut, n: 4 << 10}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 200 * time.Millisecond
	err := cmd.Run()
	if cmd.Process != nil && cmd.ProcessState != nil && !cmd.ProcessState.Success() {
		// Whatever it left behind goes with it.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		err = nil // it finished; a child of its kept the pipe open
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("no token within %s: %w", tokenCommandTimeout, ctx.Err())
		}
		// stderr may help; stdout may be the secret, so it is never shown.
		if msg := scrubStderr(errOut.String()); msg != "" {
			return "", fmt.Errorf("token command %s: %w: %s", argv[0], err, msg)
		}
		return "", fmt.Errorf("token command %s: %w", argv[0], err)
	}
	return checkToken(out.Bytes(), "token command "+argv[0])
}

// scrubStderr keeps the start of a helper's complaint: secrets scrubbed,
// control characters dropped, one line, bounded.
func scrubStderr(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return ' '
		}
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	s = strings.Join(strings.Fields(redact.Text(s)), " ")
	if len(s) > stderrKept {
		s = strings.ToValidUTF8(s[:stderrKept], "") + "…"
	}
	return s
}

func checkToken(b []byte, from string) (string, error) {
	if len(b) > maxTokenBytes {
		return "", fmt.Errorf("%s: more than %d bytes", from, maxTokenBytes)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s: empty", from)
	}
	return s, nil
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	n := len(p)
	if l.n <= 0 {
		return n, nil
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	l.n -= len(p)
	_, err := l.w.Write(p)
	return n, err
}

// tokenFacts decodes a JWT's time claims without verifying it: we only need
// to know whether the server will think it expired, never to trust it.
func tokenFacts(in string, value string) *diagnose.Token {
	tok := &diagnose.Token{In: in}
	if strings.Count(value, ".") != 2 {
		return tok
	}
	claims := jwt.RegisteredClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(value, &claims); err != nil {
		return tok
	}
	tok.JWT = true
	if claims.ExpiresAt != nil {
		tok.ExpiresAt = claims.ExpiresAt.Time
	}
	if claims.IssuedAt != nil {
		tok.IssuedAt = claims.IssuedAt.Time
	}
	if claims.NotBefore != nil {
		tok.NotBefore = claims.NotBefore.Time
	}
	return tok
}
