package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRestartNeeded(t *testing.T) {
	base := Config{Listen: "127.0.0.1:9090", StateDir: "/var/lib/wscanary", Slack: Slack{Token: "xoxb-1", AppToken: "xapp-1", Channel: "#a"}}
	for _, tc := range []struct {
		name      string
		change    func(*Config)
		later     []string
		notifiers bool
	}{
		{"nothing", func(*Config) {}, nil, false},
		{"listen and store", func(c *Config) { c.Listen = ":1"; c.Store = "postgres://x" }, []string{"listen", "store"}, false},
		{"app token", func(c *Config) { c.Slack.AppToken = "xapp-2" }, []string{"slack.app_token"}, true},
		{"channel", func(c *Config) { c.Slack.Channel = "#b" }, nil, true},
		{"notify", func(c *Config) { c.Notify = []Notifier{{Name: "pd"}} }, nil, true},
		{"state dir", func(c *Config) { c.StateDir = "/tmp" }, []string{"state_dir"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := base
			tc.change(&next)
			if got := RestartNeeded(&base, &next); !slices.Equal(got, tc.later) {
				t.Errorf("RestartNeeded = %v, want %v", got, tc.later)
			}
			if got := NotifiersChanged(&base, &next); got != tc.notifiers {
				t.Errorf("NotifiersChanged = %v, want %v", got, tc.notifiers)
			}
		})
	}
}

func TestSilenceLength(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"2h", 2 * time.Hour, ""},
		{"3d", 3 * Day, ""},
		{"90d", 90 * Day, ""},
		{"91d", 0, "more than 90 days"},
		{"", 0, "needs a length"},
		{"soon", 0, `"soon" is not a positive duration`},
		{"-1h", 0, "not a positive duration"},
		{"0s", 0, "not a positive duration"},
	} {
		d, err := SilenceLength(tc.in)
		if tc.err == "" && (err != nil || d != tc.want) {
			t.Errorf("SilenceLength(%q) = %v, %v; want %v", tc.in, d, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("SilenceLength(%q) error = %v, want one saying %q", tc.in, err, tc.err)
		}
	}
}
