package monitor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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
