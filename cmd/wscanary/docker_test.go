package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/testbed"
)

// TestDockerImageConfig: no Docker engine runs here, so check what the
// image relies on: its baked-in config loads as the image lays it out, the
// HEALTHCHECK command exists and works against a running daemon, and the
// final stage runs as a numeric non-root user.
func TestDockerImageConfig(t *testing.T) {
	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "USER 65532:65532", "HEALTHCHECK", "/etc/wscanary/checks.d"} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "checks.d"), 0o755)
	baked, _ := os.ReadFile("../../docker/wscanary.yaml")
	listen, _ := testbed.FreeAddr()
	conf := regexp.MustCompile(`(?m)^listen: .*$`).ReplaceAllString(string(baked), "listen: "+listen)
	conf = regexp.MustCompile(`(?m)^state_dir: .*$`).ReplaceAllString(conf, "state_dir: "+filepath.Join(dir, "state"))
	os.WriteFile(filepath.Join(dir, "wscanary.yaml"), []byte(conf), 0o644)
	if _, errOut, code := wscanary(t, "validate", "--config", filepath.Join(dir, "wscanary.yaml")); code != exitOK {
		t.Fatalf("the image's config does not load: %s", errOut)
	}
	// HEALTHCHECK: `wscanary health` against the daemon the image would run.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		var out, errOut bytes.Buffer
		done <- run(ctx, []string{"run", "--config", filepath.Join(dir, "wscanary.yaml")}, &out, &errOut)
	}()
	testbed.WaitFor(t, "the daemon's /healthz", 10*time.Second, func() bool {
		_, _, code := wscanary(t, "health", "--url", "http://"+listen+"/healthz")
		return code == exitOK
	})
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("run exit %d", code)
	}
	if _, _, code := wscanary(t, "health", "--url", "http://"+listen+"/healthz"); code != exitFailed {
		t.Fatalf("health of a stopped daemon: exit %d", code)
	}
}
