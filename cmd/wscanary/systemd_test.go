package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestSystemdUnit checks the shipped unit with systemd's own tools: it must
// verify cleanly and rate an exposure of 2.0 or lower.
func TestSystemdUnit(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	requireTool(t, err, "systemd")
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile("../../systemd/wscanary.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "StateDirectory=wscanary",
		"EnvironmentFile=", "LoadCredential=", "WatchdogSec="} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %s", want)
		}
	}
	// verify wants the binary to exist: point ExecStart at the one just built.
	dir := t.TempDir()
	path := filepath.Join(dir, "wscanary.service")
	os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/wscanary", bin)), 0o644)
	if out, err := exec.Command(sa, "verify", path).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command(sa, "security", "--offline=true", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for wscanary.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	level, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security exposure: %.1f", level)
	if level > 2.0 {
		t.Fatalf("exposure %.1f, want 2.0 or lower\n%s", level, out)
	}
}
