package config

import (
	"os"
	"time"
)

// Every default lives here, so the rest of the program never guesses.
const (
	DefaultPath      = "/etc/wscanary/wscanary.yaml"
	DefaultChecksDir = "checks.d"
	DefaultStateDir  = "/var/lib/wscanary"
	DefaultListen    = "127.0.0.1:9464"
	DefaultTimeout   = 10 * time.Second
	DefaultAfter     = 1
	DefaultMinVant   = 1
)

// Bounds on what a configuration may ask for.
const (
	// MaxTimeout bounds a check's timeout: a stop must finish within the
	// unit's TimeoutStopSec, and an attempt slower than this is down for
	// any user anyway.
	MaxTimeout = time.Minute
	// MaxFileBytes bounds each file the configuration reads (the main
	// file, every checks.d file, CA bundles): 10,000 plain checks fit in
	// one, and the parse of an adversarial file of tiny keys stays near
	// 150 MB.
	MaxFileBytes = 4 << 20
	// MaxErrors bounds the errors one load reports; the rest are counted.
	MaxErrors = 100
)

// DefaultAlertOn are the statuses that alert unless a check says otherwise.
func DefaultAlertOn() []int { return []int{401, 403} }

// defaultTokenName is the parameter, cookie or header a token goes in.
func defaultTokenName(in TokenIn) string {
	switch in {
	case TokenInHeader:
		return "Authorization"
	case TokenInQuery, TokenInCookie:
		return "token"
	}
	return ""
}

// defaultVantage is WSCANARY_VANTAGE, then the hostname.
func defaultVantage(lookup func(string) (string, bool)) string {
	if v, ok := lookup("WSCANARY_VANTAGE"); ok && v != "" {
		return v
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "local"
}

// defaultStateDir follows systemd's StateDirectory= when it is set.
func defaultStateDir(lookup func(string) (string, bool)) string {
	if v, ok := lookup("STATE_DIRECTORY"); ok && v != "" {
		// systemd may list several, colon-separated; the first is ours.
		for i := 0; i < len(v); i++ {
			if v[i] == ':' {
				return v[:i]
			}
		}
		return v
	}
	return DefaultStateDir
}
