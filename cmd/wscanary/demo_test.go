package main

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs `wscanary demo` as a process with a short pace: it must
// exit 0 and show, for every scripted fault, an alert with its cause and
// trace id, and recoveries.
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
	alerts := regexp.MustCompile(`(?m)^ALERT .*\n((?:  .*\n)+)`).FindAllStringSubmatch(text, -1)
	causes := map[string]bool{}
	for _, a := range alerts {
		body := a[1]
		cause := regexp.MustCompile(`(?m)^  cause\s+(\S+)`).FindStringSubmatch(body)
		trace := regexp.MustCompile(`(?m)^  trace\s+[0-9a-f]{32}$`).FindString(body)
		if cause == nil || trace == "" {
			t.Errorf("alert without cause or trace id:\n%s", body)
			continue
		}
		causes[cause[1]] = true
	}
	for _, want := range []string{"cdn_blocked", "token_expired", "origin_rejected", "proxy_stripped_upgrade"} {
		if !causes[want] {
			t.Errorf("no alert with cause %s", want)
		}
	}
	recoveries := strings.Count(text, "\nRECOVERED ")
	if recoveries < 4 || !strings.Contains(text, "Summary:") {
		t.Errorf("%d recoveries, summary present %v", recoveries, strings.Contains(text, "Summary:"))
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", text)
	}
}
