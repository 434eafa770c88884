package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestGroupLabelsDepends: group:, labels and alert.depends_on as read, and
// their errors at file and line.
func TestGroupLabelsDepends(t *testing.T) {
	check := func(name, extra string) string {
		return "  - {name: " + name + ", url: \"ws://127.0.0.1:1/ws\", schedule: \"@every 1m\"" + extra + "}\n"
	}
	for _, tc := range []struct {
		name, main, checks string
		err                string
		test               func(t *testing.T, c *Config)
	}{
		{"defaults", "", check("a", ""), "", func(t *testing.T, c *Config) {
			if g := c.Group; g.Off || g.Wait != 30*time.Second || g.Min != 3 || !slices.Equal(g.By, []string{"cause", "vendor"}) || g.Interval != 10*time.Second {
				t.Errorf("group %+v", g)
			}
		}},
		{"group off in the main file", "group: off\n", check("a", ""), "", func(t *testing.T, c *Config) {
			if !c.Group.Off {
				t.Error("group: off not read")
			}
		}},
		{"group settings", "group: {wait: 1m, min: 5, by: [cause, label:team], interval: 30s}\n", check("a", ", group: off"), "", func(t *testing.T, c *Config) {
			if g := c.Group; g.Wait != time.Minute || g.Min != 5 || !slices.Equal(g.By, []string{"cause", "label:team"}) || g.Interval != 30*time.Second {
				t.Errorf("group %+v", g)
			}
			if !c.Checks[0].NoGroup {
				t.Error("the check's group: off not read")
			}
		}},
		{"labels and depends_on", "", check("edge", ", labels: {team: payments, env: prod}") + check("chat", ", alert: {depends_on: [edge]}"), "", func(t *testing.T, c *Config) {
			if c.Checks[0].Labels["team"] != "payments" || !slices.Equal(c.Checks[1].Alert.DependsOn, []string{"edge"}) {
				t.Errorf("labels %v depends_on %v", c.Checks[0].Labels, c.Checks[1].Alert.DependsOn)
			}
		}},
		{"routes by label", "routes:\n  - {labels: {team: pay}, channel: \"#pay\"}\n  - {labels: {team: pay, env: prod}, channel: \"#never\"}\n",
			check("a", ", labels: {team: pay, env: prod}") + check("b", ", labels: {team: news}") + check("c", ", labels: {team: pay}, alert: {channel: \"#own\"}"), "",
			func(t *testing.T, c *Config) {
				if got := []string{c.Checks[0].Alert.Channel, c.Checks[1].Alert.Channel, c.Checks[2].Alert.Channel}; !slices.Equal(got, []string{"#pay", "", "#own"}) {
					t.Errorf("channels %q, want the first route's, none, the check's own", got)
				}
			}},
		{"a route without a channel", "routes:\n  - {labels: {team: pay}}\n", check("a", ""), "m.yaml:3: routes: each route needs labels and a channel", nil},
		{"a bad group.by", "group: {by: [colour]}\n", check("a", ""), `m.yaml:2: group.by: "colour" is not one of`, nil},
		{"group.min of one", "group: {min: 1}\n", check("a", ""), "m.yaml:2: group.min: 1: a group needs 2 incidents or more", nil},
		{"a check's group is off or nothing", "", check("a", ", group: {min: 2}"), "c.yaml:2: group: a check can only say off", nil},
		{"a reserved label", "", check("a", ", labels: {cause: x}"), `c.yaml:2: labels: "cause" is a label wscanary sets itself`, nil},
		{"a label that is no name", "", check("a", ", labels: {\"2x\": y}"), `labels: "2x" is not a label name`, nil},
		{"depends on nothing known", "", check("a", ", alert: {depends_on: [b]}"), `c.yaml:2: check "a": alert.depends_on: no check "b"`, nil},
		{"depends on itself", "", check("a", ", alert: {depends_on: [a]}"), "names the check itself", nil},
		{"a cycle", "", check("a", ", alert: {depends_on: [b]}") + check("b", ", alert: {depends_on: [a]}"), "alert.depends_on makes a cycle: a -> b -> a", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := LoadBytes("m.yaml", []byte("vantage: v\n"+tc.main), map[string][]byte{"c.yaml": []byte("checks:\n" + tc.checks)},
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
			tc.test(t, cfg)
		})
	}
}
