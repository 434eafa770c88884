package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/testbed"
)

// TestFleetBurstNoDeadlock: three members on one healthy PostgreSQL, 300
// checks failing at once and then recovering. No decision transaction
// fails (before: "deadlock detected (SQLSTATE 40P01)" on "lock check
// k018" 5 to 7 times per member, every member degraded, incidents closed
// 39 s after the recovery), no member says degraded, every check gets one
// message, and every incident closes within two runs of the recovery.
func TestFleetBurstNoDeadlock(t *testing.T) {
	t.Parallel()
	const n, every = 300, 5 * time.Second
	origin := startOrigin(t, testbed.Behavior{}, nil)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	pg := testbed.StartPostgresT(t)
	dsn := pg.NewDatabaseT(t)
	dir := t.TempDir()
	checks := filepath.Join(dir, "checks.d")
	os.MkdirAll(checks, 0o755)
	var b strings.Builder
	b.WriteString("checks:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: k%03d, url: \"ws://%s/ws?k=%03d\", schedule: \"@every %s\", timeout: 2s}\n", i, origin.Addr(), i, every)
	}
	os.WriteFile(filepath.Join(checks, "burst.yaml"), []byte(b.String()), 0o600)
	members := map[string]*daemonProc{}
	listens := map[string]string{}
	for _, m := range fleetRegions {
		listen, _ := testbed.FreeAddr()
		main := fmt.Sprintf("vantage: %s\nsource_address: %s\nlisten: %s\nstate_dir: %s\nchecks_dir: %s\nstore: %s\ngroup: off\n"+
			"slack: {token: \"${SLACK_BOT_TOKEN}\", channel: \"#ws-alerts\", api_url: %q}\n",
			m.name, m.addr, listen, filepath.Join(dir, m.name), checks, dsn, slack.APIURL())
		path := filepath.Join(dir, m.name+".yaml")
		os.WriteFile(path, []byte(main), 0o600)
		members[m.name], listens[m.name] = startRun(t, path, daemonEnv...), listen
	}
	t.Cleanup(func() {
		for name, p := range members {
			if t.Failed() {
				t.Logf("logs of %s:\n%s", name, lastLines(p.stderr.String(), 30))
			}
			p.stop(t)
		}
	})
	waitFor(t, "every series upgrading on every member", 2*time.Minute, func() bool {
		_, s := getStatus(t, listens["eu"])
		return strings.Count(s, `"outcome": "upgraded"`) == 3*n
	})
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(q string) int {
		var v int
		if err := db.QueryRowContext(context.Background(), q).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	degraded := map[string]bool{}
	watch := func() {
		for name, l := range listens {
			if _, body := get(l, "/healthz"); strings.Contains(body, "degraded") {
				degraded[name] = true
			}
		}
	}
	origin.Set(testbed.Behavior{Status: http.StatusForbidden, Body: "forbidden"})
	// Ceilings from the work: a few runs per check, then the messages.
	waitFor(t, "an incident for every check", 3*time.Minute, func() bool {
		watch()
		return count("SELECT COUNT(*) FROM incidents WHERE state = 'open'") == n
	})
	recovered := time.Now()
	origin.Set(testbed.Behavior{})
	waitFor(t, "every incident closed", 3*time.Minute, func() bool {
		watch()
		return count("SELECT COUNT(*) FROM incidents WHERE state = 'open'") == 0
	})
	var last int64
	db.QueryRow("SELECT MAX(closed) FROM incidents").Scan(&last)
	took := time.UnixMilli(last).Sub(recovered)
	t.Logf("the last of %d incidents closed %.1fs after the recovery (runs every %s)", n, took.Seconds(), every)
	if limit := 2*every + 3*time.Second; took > limit {
		t.Errorf("the last incident closed %s after the recovery, more than two runs (%s)", took.Round(time.Second), limit)
	}
	for name, p := range members {
		logs := p.stderr.String()
		for _, bad := range []string{"deadlock detected", "40P01", "the store cannot be written", "could not serialize"} {
			if k := strings.Count(logs, bad); k > 0 {
				t.Errorf("%s logged %q %d times", name, bad, k)
			}
		}
		if degraded[name] {
			t.Errorf("%s said degraded on /healthz during the burst", name)
		}
	}
	if k := count("SELECT COUNT(*) FROM incidents"); k != n {
		t.Errorf("%d incidents for %d checks", k, n)
	}
	// Told as it is when its message goes out: on a busy machine an
	// incident may have recovered before its turn, and is posted RESOLVED.
	told := func() []testbed.SlackCall { roots, _ := slack.Posts(); return incidentRootsOf(roots) }
	waitFor(t, "every incident's message", 3*time.Minute, func() bool { return len(told()) >= n })
	seen := map[string]int{}
	for _, c := range told() {
		seen[strings.Fields(c.Text)[1]]++
	}
	for name, k := range seen {
		if k != 1 {
			t.Errorf("%s posted %d times", name, k)
		}
	}
}
