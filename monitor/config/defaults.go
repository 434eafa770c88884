package config

import (
	"os"
	"time"

	"github.com/wscanary/wscanary/monitor/report"
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

// DefaultAlertOn is what fails unless a check says otherwise: the two
// statuses of an upgrade that was refused for who is asking, and a
// rejection right after the upgrade (first-message authentication).
func DefaultAlertOn() []AlertOn {
	return []AlertOn{{Status: 401}, {Status: 403}, {Outcome: report.OutcomeRejectedAfterOpen}}
}

// DefaultWarn are the early warnings of a check that sets none.
func DefaultWarn() Warn { return Warn{CertExpiry: 14 * Day, TokenShare: 0.1} }

// Day is the unit of the "d" suffix in durations (history: 30d).
const Day = 24 * time.Hour

// Store defaults: every attempt is kept for two days, hourly rollups of
// them for 400 days (more than a year, for a year-on-year look).
const (
	DefaultHistoryRaw  = 48 * time.Hour
	DefaultHistoryKeep = 400 * Day
	MinHistory         = time.Hour
)

// DefaultHistory is history: when the main file does not say.
func DefaultHistory() History { return History{Raw: DefaultHistoryRaw, Keep: DefaultHistoryKeep} }

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
