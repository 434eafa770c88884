package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wscanary/wscanary/monitor/config"
)

func TestFetchToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("  file-token\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	big := filepath.Join(dir, "big")
	os.WriteFile(big, []byte(strings.Repeat("x", maxTokenBytes+1)), 0o600)
	tests := []struct {
		name    string
		tok     *config.Token
		want    string
		errHas  string
		errLeak string
	}{
		{name: "none", tok: nil, want: ""},
		{name: "value", tok: &config.Token{Value: "v"}, want: "v"},
		{name: "file", tok: &config.Token{File: good}, want: "file-token"},
		{name: "missing file", tok: &config.Token{File: filepath.Join(dir, "nope")}, errHas: "read token file"},
		{name: "empty file", tok: &config.Token{File: empty}, errHas: "empty"},
		{name: "huge file", tok: &config.Token{File: big}, errHas: "more than"},
		{name: "command", tok: &config.Token{Command: []string{"/bin/sh", "-c", "echo cmd-token"}}, want: "cmd-token"},
		{name: "failing command shows stderr, not stdout", tok: &config.Token{Command: []string{"/bin/sh", "-c", "echo SECRET-OUT; echo denied >&2; exit 3"}},
			errHas: "denied", errLeak: "SECRET-OUT"},
		{name: "missing program", tok: &config.Token{Command: []string{filepath.Join(dir, "no-such-program")}}, errHas: "token command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fetchToken(context.Background(), tt.tok)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("error %v, want one with %q", err, tt.errHas)
				}
				if tt.errLeak != "" && strings.Contains(err.Error(), tt.errLeak) {
					t.Fatalf("error shows the command's stdout: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestTokenCommandHygiene: a token command is a child of the daemon, and
// it must neither outlive its run nor leak what it prints.
func TestTokenCommandHygiene(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0o600)

	t.Run("a hung command and its children are killed", func(t *testing.T) {
		t.Parallel()
		pidFile := filepath.Join(dir, "child.pid")
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, err := fetchToken(ctx, &config.Token{Command: []string{"/bin/sh", "-c", "sleep 300 & echo $! > " + pidFile + "; wait"}})
		if err == nil {
			t.Fatal("a hung command gave a token")
		}
		b, _ := os.ReadFile(pidFile)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid <= 0 {
			t.Fatalf("no child pid: %q", b)
		}
		end := time.Now().Add(3 * time.Second)
		for alive(pid) {
			if time.Now().After(end) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("the command's child %d outlived the run", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Run("a helper that leaves a child behind still gives its token", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		got, err := fetchToken(context.Background(), &config.Token{Command: []string{"/bin/sh", "-c", "echo tok-bg; sleep 30 & exit 0"}})
		if err != nil || got != "tok-bg" {
			t.Fatalf("got %q, %v", got, err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("took %v", took)
		}
	})
	t.Run("stderr is bounded and scrubbed", func(t *testing.T) {
		t.Parallel()
		script := `echo "refresh failed: Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnLXNlY3JldC0xMjM client_secret=hunter2-secret" >&2; head -c 100000 /dev/zero | tr '\\0' x >&2; exit 1`
		_, err := fetchToken(context.Background(), &config.Token{Command: []string{"/bin/sh", "-c", script}})
		if err == nil {
			t.Fatal("no error")
		}
		msg := err.Error()
		if strings.Contains(msg, "c2lnLXNlY3JldC0xMjM") || strings.Contains(msg, "hunter2") || !strings.Contains(msg, "refresh failed") {
			t.Fatalf("error %q", msg)
		}
		if len(msg) > 600 {
			t.Fatalf("error of %d bytes", len(msg))
		}
	})
	t.Run("a FIFO as token file is an error at once", func(t *testing.T) {
		t.Parallel()
		done := make(chan error, 1)
		go func() { _, err := fetchToken(context.Background(), &config.Token{File: fifo}); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Fatalf("error %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("reading a FIFO hangs the run")
		}
	})
}

func TestTokenFacts(t *testing.T) {
	t.Parallel()
	exp := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(exp),
		IssuedAt: jwt.NewNumericDate(exp.Add(-time.Hour))}).SignedString([]byte("k"))
	f := tokenFacts("query", s)
	if !f.JWT || !f.ExpiresAt.Equal(exp) || !f.IssuedAt.Equal(exp.Add(-time.Hour)) {
		t.Fatalf("%+v", f)
	}
	if f := tokenFacts("header", "not.a.jwt"); f.JWT || f.In != "header" {
		t.Fatalf("%+v", f)
	}
}

// alive reports whether pid runs; a zombie waiting to be reaped does not.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}
