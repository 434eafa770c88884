package monitor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/diagnose"
)

// maxTokenBytes bounds a token file or command output: a credential is a
// few KiB at most, anything larger is a misconfiguration.
const maxTokenBytes = 64 << 10

// tokenCommandTimeout bounds a token command when the run has more time.
const tokenCommandTimeout = 10 * time.Second

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
		f, err := os.Open(t.File)
		if err != nil {
			return "", fmt.Errorf("read token file: %w", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxTokenBytes+1))
		if err != nil {
			return "", fmt.Errorf("read token file %s: %w", t.File, err)
		}
		return checkToken(b, "token file "+t.File)
	case len(t.Command) > 0:
		ctx, cancel := context.WithTimeout(ctx, tokenCommandTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, t.Command[0], t.Command[1:]...)
		var out, errOut bytes.Buffer
		cmd.Stdout = &limitedWriter{w: &out, n: maxTokenBytes + 1}
		cmd.Stderr = &limitedWriter{w: &errOut, n: 512}
		cmd.WaitDelay = time.Second
		if err := cmd.Run(); err != nil {
			// stderr may help; stdout may be the secret, so it is never shown.
			msg := strings.TrimSpace(errOut.String())
			if msg != "" {
				return "", fmt.Errorf("token command %s: %w: %s", t.Command[0], err, msg)
			}
			return "", fmt.Errorf("token command %s: %w", t.Command[0], err)
		}
		return checkToken(out.Bytes(), "token command "+t.Command[0])
	}
	return "", errors.New("token has no source")
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
