package state_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/state"
)

var (
	t0  = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	key = state.Key{Check: "chat", Vantage: "us", Route: "cdn"}
)

func open(t testing.TB, dir string) *state.Store {
	t.Helper()
	s, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// feed observes statuses one minute apart and renders what each run
// emitted: "-" for nothing, "alert 101->403" and so on.
func feed(s *state.Store, rule state.Rule, statuses []int, start time.Time, step time.Duration) []string {
	var out []string
	for i, st := range statuses {
		tr := s.Observe(key, rule, st, "", "", start.Add(time.Duration(i)*step))
		if tr == nil {
			out = append(out, "-")
			continue
		}
		out = append(out, fmt.Sprintf("%s %d->%d", tr.Kind, tr.Old, tr.New))
	}
	return out
}

func TestTransitions(t *testing.T) {
	t.Parallel()
	on := []int{401, 403}
	tests := []struct {
		name     string
		rule     state.Rule
		statuses []int
		want     string
	}{
		{"first run refused alerts at once", state.Rule{On: on, After: 1}, []int{403}, "alert 0->403"},
		{"101 then 403", state.Rule{On: on, After: 1}, []int{101, 403}, "- alert 101->403"},
		{"after 2", state.Rule{On: on, After: 2}, []int{101, 403, 403}, "- - alert 101->403"},
		{"staying put posts nothing", state.Rule{On: on, After: 1}, []int{101, 403, 403, 403}, "- alert 101->403 - -"},
		{"401 to 403 is a change", state.Rule{On: on, After: 1}, []int{101, 401, 403}, "- alert 101->401 change 401->403"},
		{"change waits for after too", state.Rule{On: on, After: 2}, []int{403, 403, 401, 401}, "- alert 0->403 - change 403->401"},
		{"recovery", state.Rule{On: on, After: 1}, []int{101, 403, 101, 101}, "- alert 101->403 recovery 403->101 -"},
		{"flapping under after never alerts", state.Rule{On: on, After: 2}, []int{101, 403, 101, 403, 101}, "- - - - -"},
		{"other statuses neither open nor close", state.Rule{On: on, After: 1}, []int{101, 500, 0, 403, 500, 101}, "- - - alert 0->403 - recovery 403->101"},
		{"custom on", state.Rule{On: []int{500}, After: 1}, []int{101, 403, 500, 101}, "- - alert 403->500 recovery 500->101"},
		{"after 3 counts consecutive runs only", state.Rule{On: on, After: 3}, []int{403, 403, 101, 403, 403, 403}, "- - - - - alert 101->403"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, t.TempDir())
			got := strings.Join(feed(s, tt.rule, tt.statuses, t0, time.Minute), " ")
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestReminder(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	rule := state.Rule{On: []int{403}, After: 1, Remind: 4 * time.Hour}
	// one run an hour: alert at 0h, reminder at 4h and 8h, not between
	got := strings.Join(feed(s, rule, []int{403, 403, 403, 403, 403, 403, 403, 403, 403}, t0, time.Hour), " ")
	want := "alert 0->403 - - - reminder 403->403 - - - reminder 403->403"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestRestartKeepsOpenAlert(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rule := state.Rule{On: []int{403}, After: 1}
	s := open(t, dir)
	s.Observe(key, rule, 101, "ok", "t1", t0)
	if tr := s.Observe(key, rule, 403, "cdn_blocked", "t2", t0.Add(time.Minute)); tr == nil || tr.Kind != state.KindAlert {
		t.Fatalf("no alert: %+v", tr)
	}
	s.MarkDelivered(key, "ev1", "C123", "1700000000.000100", t0.Add(time.Minute))
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	// A new process.
	s = open(t, dir)
	if tr := s.Observe(key, rule, 403, "cdn_blocked", "t3", t0.Add(2*time.Minute)); tr != nil {
		t.Fatalf("a restart repeated the alert: %+v", tr)
	}
	tr := s.Observe(key, rule, 101, "ok", "t4", t0.Add(3*time.Minute))
	if tr == nil || tr.Kind != state.KindRecovery || tr.Alert.TS != "1700000000.000100" || tr.Alert.Channel != "C123" || !tr.Since.Equal(t0.Add(time.Minute)) {
		t.Fatalf("recovery after restart: %+v", tr)
	}
	if sr, _ := s.Get(key); sr.Alert != nil || sr.Status != 101 || sr.TraceID != "t4" {
		t.Fatalf("series %+v", sr)
	}
}

func TestCorruptFileMovedAside(t *testing.T) {
	t.Parallel()
	for name, content := range map[string]string{"garbage": "{not json", "truncated": `{"version":1,"series":[{"key":`, "future": `{"version":99}`} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, state.FileName), []byte(content), 0o600)
			var logs bytes.Buffer
			s, err := state.Open(dir, state.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Snapshot()) != 0 || !strings.Contains(logs.String(), "moved aside") {
				t.Fatalf("store %v logs %s", s.Snapshot(), logs.String())
			}
			aside, _ := filepath.Glob(filepath.Join(dir, state.FileName+".corrupt-*"))
			if len(aside) != 1 {
				t.Fatalf("corrupt file not kept: %v", aside)
			}
			if b, _ := os.ReadFile(aside[0]); string(b) != content {
				t.Fatal("the moved file lost its content")
			}
		})
	}
}

func TestCrashLeftoverTempFileIgnored(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir)
	s.Observe(key, state.Rule{On: []int{403}, After: 1}, 403, "", "", t0)
	s.Save()
	// A crash during a later Save leaves a half-written temp file.
	os.WriteFile(filepath.Join(dir, state.FileName+".tmp"), []byte(`{"version":1,"ser`), 0o600)
	s = open(t, dir)
	if sr, ok := s.Get(key); !ok || sr.Alert == nil {
		t.Fatalf("state lost: %+v", sr)
	}
	if _, err := os.Stat(filepath.Join(dir, state.FileName+".tmp")); !os.IsNotExist(err) {
		t.Fatal("temp file not cleaned up")
	}
}

func TestUnwritableDir(t *testing.T) {
	t.Parallel()
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := state.Open(filepath.Join(f, "sub"), state.Options{}); err == nil {
		t.Fatal("a state dir under a file was accepted")
	}
}

func TestOutbox(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _ := state.Open(dir, state.Options{MaxPending: 3})
	add := func(id string, kind state.TransitionKind) error {
		return s.Enqueue(state.Pending{ID: id, Key: key, Kind: kind, Enqueued: t0, Payload: json.RawMessage(`{"id":"` + id + `"}`)})
	}
	add("a", state.KindAlert)
	add("r", state.KindReminder)
	add("b", state.KindRecovery)
	if err := add("c", state.KindAlert); err != nil { // drops the reminder
		t.Fatal(err)
	}
	if err := add("d", state.KindAlert); err != state.ErrOutboxFull {
		t.Fatalf("want ErrOutboxFull, got %v", err)
	}
	s.Retry("a", t0.Add(time.Minute))
	s.Save()
	s = open(t, dir)
	var ids []string
	for _, p := range s.Pending() {
		ids = append(ids, p.ID)
	}
	if strings.Join(ids, ",") != "a,b,c" || s.Pending()[0].Attempts != 1 || !s.Pending()[0].NextTry.Equal(t0.Add(time.Minute)) {
		t.Fatalf("outbox %+v", s.Pending())
	}
	s.Ack("b")
	if len(s.Pending()) != 2 || s.Pending()[1].ID != "c" {
		t.Fatalf("after ack %+v", s.Pending())
	}
}

func TestRetain(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	other := state.Key{Check: "gone", Vantage: "us", Route: "cdn"}
	s.Observe(key, state.Rule{}, 101, "", "", t0)
	s.Observe(other, state.Rule{}, 101, "", "", t0)
	s.Retain(func(k state.Key) bool { return k.Check != "gone" })
	if snap := s.Snapshot(); len(snap) != 1 || snap[0].Key != key {
		t.Fatalf("%+v", snap)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			k := state.Key{Check: fmt.Sprint("c", i), Vantage: "v", Route: "cdn"}
			for j := range 50 {
				s.Observe(k, state.Rule{On: []int{403}}, []int{101, 403}[j%2], "", "", t0.Add(time.Duration(j)*time.Second))
				s.Enqueue(state.Pending{ID: fmt.Sprint(i, j), Key: k})
				s.Save()
			}
		})
	}
	wg.Wait()
	if len(s.Snapshot()) != 8 {
		t.Fatal(len(s.Snapshot()))
	}
}

func BenchmarkObserve(b *testing.B) {
	s := open(b, b.TempDir())
	rule := state.Rule{On: []int{401, 403}, After: 1}
	i := 0
	for b.Loop() {
		s.Observe(key, rule, []int{101, 403}[i%2], "cdn_blocked", "trace", t0.Add(time.Duration(i)*time.Second))
		i++
	}
}

// FuzzOpen: whatever bytes sit in state.json, Open yields a usable store.
func FuzzOpen(f *testing.F) {
	f.Add([]byte(`{"version":1,"series":[{"key":{"check":"c","vantage":"v","route":"cdn"},"status":403,"alert":{"status":403}}],"outbox":[{"id":"x"}]}`))
	f.Add([]byte(`{"version":1,"series":null}`))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, state.FileName), b, 0o600)
		s, err := state.Open(dir, state.Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Observe(key, state.Rule{On: []int{403}, After: 1}, 403, "", "", t0)
		s.Observe(key, state.Rule{On: []int{403}, After: 1}, 101, "", "", t0)
		s.Pending()
		if err := s.Save(); err != nil {
			t.Fatal(err)
		}
	})
}
