package main

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDebianPackage builds the package (scripts/deb, what `make deb` runs)
// and installs it on this machine: every file lands with its owner and
// mode, systemd accepts the installed unit, the installed example
// validates, a reinstall keeps an edited configuration, and a purge leaves
// nothing behind.
func TestDebianPackage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("installing a package with dpkg needs root")
	}
	dpkg, err := exec.LookPath("dpkg")
	requireTool(t, err, "dpkg")
	sa, err := exec.LookPath("systemd-analyze")
	requireTool(t, err, "systemd")
	if exec.Command(dpkg, "-s", "wscanary").Run() == nil {
		t.Skip("a wscanary package is already installed on this machine; the test will not replace it")
	}
	out, err := exec.Command("../../scripts/deb", t.TempDir()).Output()
	if err != nil {
		t.Fatalf("scripts/deb: %v", err)
	}
	deb := strings.TrimSpace(string(out))
	run := func(args ...string) string {
		t.Helper()
		// dpkg does not wait for its lock: while another install holds it
		// (apt, unattended-upgrades) it fails at once. Wait for the other
		// to finish, up to five minutes of it.
		for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(time.Second) {
			b, err := exec.Command(args[0], args[1:]...).CombinedOutput()
			switch {
			case err == nil:
				return string(b)
			case bytes.Contains(b, []byte("lock was locked by another process")) && time.Now().Before(deadline):
				continue
			}
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
	t.Cleanup(func() { exec.Command(dpkg, "--purge", "wscanary").Run() })
	run(dpkg, "-i", deb)

	for _, f := range []struct {
		path  string
		mode  os.FileMode
		owner string
	}{
		{"/usr/bin/wscanary", 0o755, "root"},
		{"/lib/systemd/system/wscanary.service", 0o644, "root"},
		{"/etc/wscanary/wscanary.yaml", 0o644, "root"},
		{"/etc/wscanary/checks.d/example.yaml", 0o644, "root"},
		{"/usr/share/doc/wscanary/wscanary-checks.schema.json", 0o644, "root"},
		{"/var/lib/wscanary", 0o750 | os.ModeDir, "wscanary"},
	} {
		st, err := os.Stat(f.path)
		if err != nil {
			t.Errorf("%s: %v", f.path, err)
			continue
		}
		owner := strconv.Itoa(int(st.Sys().(*syscall.Stat_t).Uid))
		if u, err := user.LookupId(owner); err == nil {
			owner = u.Username
		}
		if st.Mode() != f.mode || owner != f.owner {
			t.Errorf("%s: mode %v owner %s, want %v %s", f.path, st.Mode(), owner, f.mode, f.owner)
		}
	}
	if _, err := user.Lookup("wscanary"); err != nil {
		t.Errorf("no wscanary system user: %v", err)
	}
	unit, _ := os.ReadFile("/lib/systemd/system/wscanary.service")
	for _, want := range []string{"ExecStart=/usr/bin/wscanary run --config /etc/wscanary/wscanary.yaml", "User=wscanary", "StateDirectory=wscanary"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("installed unit lacks %q", want)
		}
	}
	if b, err := exec.Command(sa, "verify", "/lib/systemd/system/wscanary.service").CombinedOutput(); err != nil || strings.TrimSpace(string(b)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, b)
	}
	sec := run(sa, "security", "--offline=true", "/lib/systemd/system/wscanary.service")
	if m := regexp.MustCompile(`Overall exposure level for wscanary.service: ([0-9.]+)`).FindStringSubmatch(sec); m == nil {
		t.Errorf("no exposure level:\n%s", sec)
	} else if level, _ := strconv.ParseFloat(m[1], 64); level > 2.0 {
		t.Errorf("installed unit's exposure %.1f, want 2.0 or lower", level)
	} else {
		t.Logf("installed unit's exposure: %.1f", level)
	}
	if b, err := exec.Command("/usr/bin/wscanary", "validate", "--config", "/etc/wscanary/wscanary.yaml").CombinedOutput(); err != nil {
		t.Errorf("the installed example does not validate: %v\n%s", err, b)
	}

	// An edited configuration survives a reinstall.
	const edit = "\n# edited by an operator\nhistory: 7d\n"
	f, err := os.OpenFile("/etc/wscanary/wscanary.yaml", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(edit)
	f.Close()
	run(dpkg, "-i", deb)
	if b, _ := os.ReadFile("/etc/wscanary/wscanary.yaml"); !strings.HasSuffix(string(b), edit) {
		t.Errorf("the reinstall replaced the edited configuration:\n%s", b)
	}

	// A purge removes it all.
	run(dpkg, "--purge", "wscanary")
	for _, p := range []string{"/usr/bin/wscanary", "/lib/systemd/system/wscanary.service", "/etc/wscanary", "/var/lib/wscanary", "/usr/share/doc/wscanary"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is left after the purge", p)
		}
	}
	if _, err := user.Lookup("wscanary"); err == nil {
		t.Error("the wscanary user is left after the purge")
	}
	if _, err := os.Stat(filepath.Join("/var/lib/dpkg/info", "wscanary.list")); err == nil {
		t.Error("dpkg still lists the package")
	}
}
