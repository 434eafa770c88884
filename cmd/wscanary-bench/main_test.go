package main

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// The keys of bench-results.json are how runs are compared across
// commits; renaming one silently breaks every comparison.
func TestResultsKeys(t *testing.T) {
	b, err := json.Marshal(Results{})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	want := []string{"accuracy_ms", "alert_latency_ms", "attempt_cpu_us", "checks", "cpu_core_pct", "duration_s",
		"history_cpu_us", "history_ratio", "lateness_p50_ms", "lateness_p99_ms", "library_cpu_us", "no_history_cpu_us",
		"process_cpu_us", "process_ratio", "process_raw_cpu_us", "ratio", "raw_floor_cpu_us", "rss_mb", "stdlib_cpu_us"}
	if !slices.Equal(got, want) {
		t.Errorf("keys = %v, want %v", got, want)
	}
	b, _ = json.Marshal(FleetResults{})
	m = nil
	json.Unmarshal(b, &m)
	got = got[:0]
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	want = []string{"alert_max_ms", "alert_median_ms", "checks_each", "db_cpu_core_pct", "interval_s", "lateness_p99_ms", "max_cpu_core_pct",
		"max_rss_mb", "members", "per_member_cpu_core_pct", "per_member_rss_mb", "window_s"}
	if !slices.Equal(got, want) {
		t.Errorf("fleet keys = %v, want %v", got, want)
	}
}

// cpuPerAttempt must give every contender the same number of attempts,
// interleaved, and stop at the first failure.
func TestCPUPerAttemptTurns(t *testing.T) {
	var order strings.Builder
	counts := make([]int, 2)
	mk := func(i int, name string) func() error {
		return func() error {
			counts[i]++
			if order.Len() == 0 || !strings.HasSuffix(order.String(), name) {
				order.WriteString(name)
			}
			return nil
		}
	}
	us, err := cpuPerAttempt(100, mk(0, "a"), mk(1, "b"))
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 2 {
		t.Errorf("got %d figures for 2 contenders", len(us))
	}
	if counts[0] != 110 || counts[1] != 110 {
		t.Errorf("counts = %v, want 110 each (10 warm-up + 100)", counts)
	}
	// Warm-up a then b, then rounds turns of a and b.
	if want := "ab" + strings.Repeat("ab", rounds); order.String() != want {
		t.Errorf("order = %q, want %q", order.String(), want)
	}

	boom := errors.New("boom")
	calls := 0
	_, err = cpuPerAttempt(100, func() error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Errorf("err = %v after %d calls, want boom after 1", err, calls)
	}
}
