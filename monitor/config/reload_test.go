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
		{"debug listener", func(c *Config) { c.DebugListen = "127.0.0.1:6060" }, []string{"debug_listen"}, false},
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

// TestAlertAfterXOfY: alert.after takes a count or "X of Y"; a bad form
// is an error at its file and line.
func TestAlertAfterXOfY(t *testing.T) {
	for _, tc := range []struct {
		after, recover string
		x, y, r        int
		err            string
	}{
		{"2", "", 2, 0, 1, ""},
		{`"3 of 5"`, "3", 3, 5, 3, ""},
		{"3 of 5", "", 3, 5, 1, ""},
		{`"64 of 64"`, "", 64, 64, 1, ""},
		{`"5 of 3"`, "", 0, 0, 0, `c.yaml:3: alert.after: "5 of 3" asks for more failures than runs`},
		{`"3 of 65"`, "", 0, 0, 0, "looks back more than 64 runs"},
		{`"3 out of 5"`, "", 0, 0, 0, `c.yaml:3: alert.after: expected a count or "X of Y"`},
		{`"0 of 5"`, "", 0, 0, 0, "two positive counts"},
		{"2", "0", 0, 0, 0, "c.yaml:4: alert.recover_after: must be 1 or more"},
	} {
		t.Run(tc.after, func(t *testing.T) {
			file := "checks:\n  - name: chat\n    alert: {after: " + tc.after + "}\n"
			if tc.recover != "" {
				file = "checks:\n  - name: chat\n    alert:\n      recover_after: " + tc.recover + "\n      after: " + tc.after + "\n"
				file = strings.Replace(file, "after: "+tc.after+"\n", "after: "+tc.after+"\n", 1)
			}
			file += "    url: ws://127.0.0.1:1/ws\n    schedule: \"@every 1m\"\n"
			cfg, err := LoadBytes("m.yaml", []byte("vantage: v\n"), map[string][]byte{"c.yaml": []byte(file)},
				Options{Lookup: func(string) (string, bool) { return "", false }})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a := cfg.Checks[0].Alert
			if a.After != tc.x || a.Within != tc.y || a.RecoverAfter != tc.r {
				t.Errorf("after %d within %d recover_after %d; want %d, %d, %d", a.After, a.Within, a.RecoverAfter, tc.x, tc.y, tc.r)
			}
		})
	}
}
