package config

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestCredentialLookup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "SLACK_BOT_TOKEN"), []byte("xoxb-from-cred\n"), 0o600)
	syscall.Mkfifo(filepath.Join(dir, "FIFO"), 0o600)
	env := func(n string) (string, bool) {
		if n == "FROM_ENV" {
			return "env-value", true
		}
		return "", false
	}
	look := credentialLookup(env, dir)
	for name, want := range map[string]string{"FROM_ENV": "env-value", "SLACK_BOT_TOKEN": "xoxb-from-cred"} {
		if v, ok := look(name); !ok || v != want {
			t.Errorf("%s = %q, %v", name, v, ok)
		}
	}
	for _, name := range []string{"MISSING", "FIFO", "../etc/passwd"} {
		if v, ok := look(name); ok {
			t.Errorf("%s resolved to %q", name, v)
		}
	}
}
