package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wscanary/wscanary/monitor/internal/files"
	"github.com/wscanary/wscanary/monitor/redact"
	"github.com/wscanary/wscanary/monitor/report"
)

// The rules below judge one value each. The file loader wraps their errors
// with file, line and key; AdHoc (the probe command) with the flag's name.
// A rule changed here changes for both.

// ParseCheckURL accepts a ws:// or wss:// URL with a host and, if given, a
// usable port. Errors quote the URL redacted.
func ParseCheckURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Hostname() == "" {
		return nil, fmt.Errorf("%q must be a ws:// or wss:// URL with a host", redact.URL(s))
	}
	if p := u.Port(); p != "" && !validPort(p) {
		return nil, fmt.Errorf("%q: port must be 1-65535", redact.URL(s))
	}
	return u, nil
}

// ParseProxy accepts an egress proxy: http:// (CONNECT) or socks5://,
// socks5h:// with host and port.
func ParseProxy(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "socks5" && u.Scheme != "socks5h") {
		return nil, fmt.Errorf("%q must be http://host:port (CONNECT) or socks5://host:port", redact.URL(s))
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return nil, fmt.Errorf("%q needs a port", redact.URL(s))
	}
	return u, nil
}

// CheckAddress accepts host:port with a usable port (direct.address).
func CheckAddress(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || !validPort(port) {
		return fmt.Errorf("%q must be host:port", s)
	}
	return nil
}

// validPort is a TCP port a connection can go to.
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// ParseTokenIn accepts where a credential goes.
func ParseTokenIn(s string) (TokenIn, error) {
	switch in := TokenIn(s); in {
	case TokenInQuery, TokenInHeader, TokenInCookie, TokenInMessage:
		return in, nil
	}
	return "", fmt.Errorf("%q must be query, header, cookie or message", s)
}

// errMessageToken: a token that goes in the first message needs a message
// to go in.
var errMessageToken = errors.New("token in: message needs send with {token} in it")

// CheckMessageToken refuses a token in: message without {token} in send.
func CheckMessageToken(in TokenIn, send string) error {
	if in == TokenInMessage && !strings.Contains(send, "{token}") {
		return errMessageToken
	}
	return nil
}

// ParseExpect compiles the regular expression the first reply must match.
func ParseExpect(s string) (*regexp.Regexp, error) { return regexp.Compile(s) }

// ParseHTTPURL accepts an http(s) URL (Slack's API base and webhook). With
// secret set the error never quotes it.
func ParseHTTPURL(s string, secret bool) error {
	if u, err := url.Parse(s); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		if secret {
			return errors.New("not an http(s) URL")
		}
		return fmt.Errorf("%q is not an http(s) URL", redact.URL(s))
	}
	return nil
}

// checkName is what a check may be called: it appears in metrics labels,
// Slack messages and file names.
var checkName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// CheckName accepts a check's name.
func CheckName(s string) error {
	if !checkName.MatchString(s) {
		return fmt.Errorf("%q may only use letters, digits, '.', '_' and '-'", s)
	}
	return nil
}

// ParseAlertOn reads one entry of alert.on.
func ParseAlertOn(s string) (AlertOn, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		if n < 100 || n > 599 {
			return AlertOn{}, fmt.Errorf("%d is not an HTTP status", n)
		}
		if n == 101 {
			return AlertOn{}, errors.New("101 is the upgrade itself, not a failure")
		}
		return AlertOn{Status: n}, nil
	}
	switch o := report.Outcome(s); o {
	case report.OutcomeRefused, report.OutcomeRejectedAfterOpen, report.OutcomeNoAnswer:
		return AlertOn{Outcome: o}, nil
	}
	if s == "any" {
		return AlertOn{Any: true}, nil
	}
	if slices.Contains(alertCauses(), s) {
		return AlertOn{Cause: report.Cause(s)}, nil
	}
	if len(s) == 3 && s[1:] == "xx" && s[0] >= '1' && s[0] <= '5' {
		return AlertOn{Class: int(s[0] - '0')}, nil
	}
	return AlertOn{}, fmt.Errorf("%q is not a status (100-599), a class (4xx, 5xx), an outcome (refused, rejected_after_open, no_answer), any or a cause (client_blocked, cdn_blocked, ...)", s)
}

// ParseTokenExpiry reads warn.token_expiry: a share of the token's
// lifetime ("10%") or the time left ("2h", "1d").
func ParseTokenExpiry(s string) (share float64, left time.Duration, err error) {
	if p, ok := strings.CutSuffix(strings.TrimSpace(s), "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f <= 0 || f >= 100 {
			return 0, 0, fmt.Errorf("%q must be a share between 0%% and 100%%", s)
		}
		return f / 100, 0, nil
	}
	d, err := ParseDays(s)
	if err != nil || d <= 0 {
		return 0, 0, fmt.Errorf("%q must be a share like 10%% or a duration like 2h", s)
	}
	return 0, d, nil
}

// ParseStore accepts the store setting: "" (SQLite in state_dir) or a
// PostgreSQL URL. Errors never quote a password.
func ParseStore(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || (u.Host == "" && u.Query().Get("host") == "") {
		return fmt.Errorf("%q must be empty (SQLite in state_dir) or a postgres:// URL", redact.URL(s))
	}
	return nil
}

// LoadTLS builds a TLS setting outside a file (the probe command's flags).
func LoadTLS(caFile, serverName string, insecure bool) (TLS, error) {
	t := TLS{CAFile: caFile, ServerName: serverName, InsecureSkipVerify: insecure}
	if caFile != "" {
		pool, err := readCA(caFile)
		if err != nil {
			return t, fmt.Errorf("ca file: %w", err)
		}
		t.Roots = pool
	}
	return t, nil
}

func readCA(path string) (*x509.CertPool, error) {
	b, err := files.ReadRegular(path, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %s", path, pathErr(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// alertCauses are the causes alert.on accepts: every cause of a failure
// (not ok, not a run that could not start).
func alertCauses() []string {
	out := make([]string, 0, len(report.Causes))
	for _, c := range report.Causes {
		if c != report.CauseOK && c != report.CauseRunError {
			out = append(out, string(c))
		}
	}
	return out
}

// MaxWithin bounds Y of "after: X of Y": a series keeps its last 64 runs.
const MaxWithin = 64

// ParseXOfY parses alert.after's "X of Y": X failing runs among a series'
// last Y, 1 <= X <= Y <= MaxWithin.
func ParseXOfY(s string) (x, y int, err error) {
	f := strings.Fields(s)
	if len(f) != 3 || f[1] != "of" {
		return 0, 0, fmt.Errorf("expected a count or \"X of Y\" like \"3 of 5\", got %q", s)
	}
	x, errX := strconv.Atoi(f[0])
	y, errY := strconv.Atoi(f[2])
	switch {
	case errX != nil || errY != nil || x < 1 || y < 1:
		return 0, 0, fmt.Errorf("expected two positive counts in %q", s)
	case x > y:
		return 0, 0, fmt.Errorf("%q asks for more failures than runs", s)
	case y > MaxWithin:
		return 0, 0, fmt.Errorf("%q looks back more than %d runs", s, MaxWithin)
	}
	return x, y, nil
}
