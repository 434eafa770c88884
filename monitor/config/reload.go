package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// RestartNeeded names the settings of next that a reload cannot apply:
// the listener, the state directory, the store and Slack's socket are
// opened once per process.
func RestartNeeded(running, next *Config) []string {
	var later []string
	for _, s := range []struct {
		key     string
		was, is string
	}{
		{"listen", running.Listen, next.Listen},
		{"debug_listen", running.DebugListen, next.DebugListen},
		{"state_dir", running.StateDir, next.StateDir},
		{"store", running.Store, next.Store},
		{"slack.app_token", running.Slack.AppToken, next.Slack.AppToken},
	} {
		if s.was != s.is {
			later = append(later, s.key)
		}
	}
	return later
}

// NotifiersChanged says whether a reload must rebuild the notifiers: a new
// Slack token or channel, or a changed notify: entry.
func NotifiersChanged(running, next *Config) bool {
	return !reflect.DeepEqual(running.Slack, next.Slack) || !reflect.DeepEqual(running.Notify, next.Notify)
}

// MaxSilence bounds a silence: one longer than this is a check to remove.
const MaxSilence = 90 * Day

// SilenceLength parses how long a silence lasts ("30m", "2h", "3d"): a
// positive duration of at most MaxSilence.
func SilenceLength(s string) (time.Duration, error) {
	d, err := ParseDays(strings.TrimSpace(s))
	switch {
	case s == "":
		return 0, fmt.Errorf("a silence needs a length (30m, 2h, 3d)")
	case err != nil || d <= 0:
		return 0, fmt.Errorf("%q is not a positive duration like 2h or 3d", s)
	case d > MaxSilence:
		return 0, fmt.Errorf("%s is more than %d days: remove the check instead", s, MaxSilence/Day)
	}
	return d, nil
}
