package main

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs `wscanary demo` as a process with a short pace: it must
// exit 0 and show one message per incident, each with its cause and trace
// id, for every scripted fault (the one that grows is updated in place and
// its thread says so), and a recovery for each.
func TestDemo(t *testing.T) {
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "demo", "--pace", "2s")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()} // no Slack, no OTEL from the machine
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	text := string(out)
	opened := regexp.MustCompile(`(?m)^FAILING  .*\n((?:  .*\n)+)`).FindAllStringSubmatch(text, -1)
	causes := map[string]bool{}
	for _, a := range opened {
		body := a[1]
		cause := regexp.MustCompile(`(?m)^  cause\s+(\S+)`).FindStringSubmatch(body)
		trace := regexp.MustCompile(`(?m)^  trace\s+[0-9a-f]{32}$`).FindString(body)
		if cause == nil || trace == "" {
			t.Errorf("incident without cause or trace id:\n%s", body)
			continue
		}
		causes[cause[1]] = true
	}
	for _, m := range regexp.MustCompile(`(?m)^CAUSE CHANGED  chat: .* -> (\S+)`).FindAllStringSubmatch(text, -1) {
		causes[m[1]] = true
	}
	for _, want := range []string{"cdn_blocked", "origin_rejected", "token_expired", "proxy_stripped_upgrade", "post_handshake_rejected"} {
		if !causes[want] {
			t.Errorf("no incident with cause %s", want)
		}
	}
	// Six faults, four incidents: the allowlist breaks while the WAF
	// incident is open, which widens it and changes its cause; the WAF
	// rollout inside its maintenance window opens nothing.
	if n := len(opened); n != 4 {
		t.Errorf("%d incident messages, want 4", n)
	}
	if !strings.Contains(text, "inside its maintenance window: no incident opens") {
		t.Error("the demo does not show its maintenance window")
	}
	for _, want := range []string{"\nUPDATED  chat:", "\nWIDER  chat: now also demo/direct", "Summary:"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in the output", want)
		}
	}
	if n := strings.Count(text, "\nRECOVERED "); n != 4 {
		t.Errorf("%d recoveries, want 4", n)
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", text)
	}
}
