package testbed_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wscanary/wscanary/monitor/testbed"
)

// TestMain fails the run when a test left a child process (nginx,
// tinyproxy, a guardian) behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if left := children(); len(left) > 0 && code == 0 {
		fmt.Fprintf(os.Stderr, "testbed: processes left behind: %s\n", strings.Join(left, "; "))
		code = 1
	}
	os.Exit(code)
}

// children lists this process's live children from /proc.
func children() []string {
	return procs(func(_, ppid, _ string) bool { return ppid == strconv.Itoa(os.Getpid()) })
}

// liveInGroup lists the processes of process group pgid that are not
// zombies (workers orphaned by a killed master stay zombies until the
// machine's init reaps them).
func liveInGroup(pgid int) []string {
	return procs(func(_, _, pgrp string) bool { return pgrp == strconv.Itoa(pgid) })
}

// procs lists "pid (comm)" of live processes that match.
func procs(match func(pid, ppid, pgrp string) bool) []string {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []string
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		pid := strings.Fields(s[:i])[0]
		if len(f) > 2 && f[0] != "Z" && match(pid, f[1], f[2]) {
			out = append(out, strings.TrimSpace(s[:i+1]))
		}
	}
	return out
}

// fakeTB records what MissingTool asks of it.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Skipf(format string, args ...any)  { f.skipped = fmt.Sprintf(format, args...) }
func (f *fakeTB) Fatalf(format string, args ...any) { f.failed = fmt.Sprintf(format, args...) }

func TestMissingToolSkipsOrFails(t *testing.T) {
	t.Setenv(testbed.RequireToolsEnv, "")
	f := &fakeTB{}
	testbed.MissingTool(f, testbed.ErrNoNginx)
	if f.failed != "" || !strings.Contains(f.skipped, "nginx-light") {
		t.Errorf("without %s: skipped %q failed %q", testbed.RequireToolsEnv, f.skipped, f.failed)
	}
	t.Setenv(testbed.RequireToolsEnv, "1")
	f = &fakeTB{}
	testbed.MissingTool(f, testbed.ErrNoTinyproxy)
	if f.skipped != "" || !strings.Contains(f.failed, "Debian package tinyproxy") {
		t.Errorf("with %s=1: skipped %q failed %q", testbed.RequireToolsEnv, f.skipped, f.failed)
	}
}
