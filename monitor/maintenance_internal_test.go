package monitor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/testbed"
)

// TestMaintenanceWindow: with a window from 12:30 to 13:00 (simulated
// clock, a run a minute), a check that starts failing inside it opens
// nothing until the window ends and then opens at once; a check whose
// incident was open before keeps it, its message says it is in
// maintenance, and its reminders pause until the window ends.
func TestMaintenanceWindow(t *testing.T) {
	t.Parallel()
	fake := testbed.NewFakeSlack("xoxb-test")
	defer fake.Close()
	main := "vantage: us\nmaintenance:\n  - {schedule: \"CRON_TZ=UTC 30 12 * * *\", duration: 30m, reason: CHG-42}\n"
	checks := "checks:\n  - {name: late, url: \"ws://127.0.0.1:1/a\", schedule: \"@every 1m\"}\n" +
		"  - {name: early, url: \"ws://127.0.0.1:1/b\", schedule: \"@every 1m\", alert: {remind: 10m}}\n"
	sim := newSimulatedWith(t, main, checks, fake.APIURL())
	type call struct {
		at   string // simulated HH:MM
		text string
	}
	var calls []call
	for minute := 1; minute <= 75; minute++ {
		sim.clock.Add(time.Minute)
		now := sim.clock.Now()
		late, early := 101, 101
		if minute >= 35 { // 12:35, inside the window
			late = 403
		}
		if minute >= 10 { // 12:10, before it
			early = 403
		}
		sim.run(0, late)
		sim.run(1, early)
		before := len(fake.Calls())
		sim.d.deliverDue()
		for _, c := range fake.Calls()[before:] {
			head, _, _ := strings.Cut(c.Text, "\n")
			if c.Method == "chat.update" {
				head = "update " + head
				if strings.Contains(c.Blocks, "In maintenance until") {
					head += " [in maintenance]"
				}
			}
			calls = append(calls, call{now.Format("15:04"), head})
		}
	}
	var log []string
	for _, c := range calls {
		log = append(log, c.at+" "+c.text)
	}
	t.Logf("Slack calls:\n%s", strings.Join(log, "\n"))
	when := func(prefix string) []string {
		var out []string
		for _, c := range calls {
			if strings.HasPrefix(c.text, prefix) {
				out = append(out, c.at)
			}
		}
		return out
	}
	if got := when("FAILING  late:"); len(got) != 1 || got[0] != "13:00" {
		t.Errorf("late opened at %v, want once at 13:00 (the window's end)", got)
	}
	if got := when("FAILING  early:"); len(got) != 1 || got[0] != "12:10" {
		t.Errorf("early opened at %v, want once at 12:10", got)
	}
	if got := when("STILL FAILING  early:"); strings.Join(got, " ") != "12:20 13:00 13:10" {
		t.Errorf("early's reminders at %v, want 12:20, then none in the window, then 13:00 and 13:10", got)
	}
	if got := when("update FAILING  early:"); strings.Join(got, " ") != "12:30 13:00" {
		t.Errorf("early's message updated at %v, want when the window began and when it ended", got)
	}
	inWindow := 0
	for _, c := range calls {
		if strings.HasSuffix(c.text, "[in maintenance]") {
			inWindow++
			if c.at < "12:30" || c.at >= "13:00" {
				t.Errorf("a message says in maintenance at %s", c.at)
			}
		}
	}
	if inWindow == 0 {
		t.Error("no message said the incident was in maintenance")
	}
	// The history went on through the window.
	stats, err := sim.st.Stats(context.Background(), sim.clock.Now().Add(-2*time.Hour), "late")
	if err != nil || len(stats) != 1 || stats[0].Runs != 75 {
		t.Fatalf("history of late: %+v, %v; want 75 runs", stats, err)
	}
}
