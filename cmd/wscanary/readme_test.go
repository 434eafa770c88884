package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wscanary/wscanary/monitor/diagnose"
)

// TestREADMECommands keeps the README honest: the first two commands are
// the demo and the test script; every `wscanary COMMAND --flag` it shows
// is a command and flag the binary accepts; the files it points at exist;
// and the install command works.
func TestREADMECommands(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	blocks := regexp.MustCompile("(?s)```(\\w*)\n(.*?)```").FindAllStringSubmatch(readme, -1)
	if len(blocks) == 0 || !strings.HasPrefix(blocks[0][2], "go run ./cmd/wscanary demo") ||
		!strings.Contains(strings.Split(blocks[0][2], "\n")[1], "scripts/test") {
		t.Fatalf("the README must open with the demo and the test command, got:\n%s", blocks[0][2])
	}
	// The demo command is run by TestDemo; the test script by .ci/run.
	ci, _ := os.ReadFile("../../.ci/run")
	if !strings.Contains(string(ci), "scripts/test") {
		t.Error(".ci/run does not run scripts/test")
	}

	// Every wscanary invocation: the command exists, and its flags too.
	seenCmd := map[string]bool{}
	for _, blk := range blocks {
		for _, line := range strings.Split(blk[2], "\n") {
			m := regexp.MustCompile(`wscanary (run|check|probe|validate|history|demo|version|health)\b(.*)`).FindStringSubmatch(line)
			if m == nil {
				continue
			}
			seenCmd[m[1]] = true
			if m[1] == "version" {
				continue
			}
			var out, errOut bytes.Buffer
			if code := run(context.Background(), []string{m[1], "--help"}, &out, &errOut); code != exitOK {
				t.Errorf("wscanary %s --help: exit %d", m[1], code)
			}
			help := out.String() + errOut.String()
			for _, f := range regexp.MustCompile(`--([a-z-]+)`).FindAllStringSubmatch(m[2], -1) {
				if f[1] == "help" {
					continue
				}
				if !strings.Contains(help, "-"+f[1]+" ") && !strings.Contains(help, "-"+f[1]+"\n") {
					t.Errorf("README shows wscanary %s --%s, which the command does not accept", m[1], f[1])
				}
			}
		}
	}
	for _, c := range []string{"run", "check", "probe", "validate", "history", "demo", "version"} {
		if !seenCmd[c] {
			t.Errorf("the README never shows wscanary %s", c)
		}
	}
	// Links and files it names.
	for _, f := range regexp.MustCompile(`\]\(([^)#:]+)\)`).FindAllStringSubmatch(readme, -1) {
		if _, err := os.Stat(filepath.Join("../..", f[1])); err != nil {
			t.Errorf("README links to %s, which does not exist", f[1])
		}
	}
	// The install command builds a working binary.
	gobin := t.TempDir()
	cmd := exec.Command("go", "install", "./cmd/wscanary")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "GOBIN="+gobin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install ./cmd/wscanary: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(gobin, "wscanary"), "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "wscanary ") {
		t.Fatalf("installed binary: %v %q", err, out)
	}
}

// TestREADMEEdges: the README's tables of edge and gateway ids are the
// contract scripts match on; they list exactly the ids the diagnosis can
// name.
func TestREADMEEdges(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ids := func(from, to string) []string {
		_, section, _ := strings.Cut(string(b), from)
		section, _, _ = strings.Cut(section, to)
		var out []string
		for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9-]+)` \\|").FindAllStringSubmatch(section, -1) {
			out = append(out, m[1])
		}
		slices.Sort(out)
		return out
	}
	for _, tt := range []struct {
		from, to string
		want     []string
	}{
		{"### Edges", "\n### ", diagnose.Vendors()},
		{"#### Gateways", "\n## ", diagnose.Gateways()},
	} {
		slices.Sort(tt.want)
		if got := ids(tt.from, tt.to); !slices.Equal(got, tt.want) {
			t.Errorf("README %s %v, want %v (the diagnosis' ids)", tt.from, got, tt.want)
		}
	}
}
