package config

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/wscanary/wscanary/monitor/protocol"
)

// Step is one step of a check's scripted exchange after the upgrade: a
// message to send, then a message to wait for (either may be missing).
type Step struct {
	Send string
	// Expect is nil when the step waits for nothing.
	Expect *regexp.Regexp
	// Within bounds the wait for Expect; 0 is the probe's default (5s).
	Within time.Duration
	Line   int
}

type stepDraft struct {
	s Step
	// bad: its expect did not compile (already said)
	bad bool
}

var stepKeys = section[stepDraft]{
	{"send", sString("Message to send; {token} is replaced with token.in: message."), func(l *loader, file string, _, v *yaml.Node, d *stepDraft) {
		d.s.Send, _ = l.str(file, "steps.send", v)
	}},
	{"expect", sString("Regular expression: messages are read until one matches, the connection closes or within passes."),
		func(l *loader, file string, _, v *yaml.Node, d *stepDraft) {
			s, ok := l.str(file, "steps.expect", v)
			re, err := ParseExpect(s)
			if !ok || err != nil {
				d.bad = true
				if err != nil {
					l.add(file, v.Line, "steps.expect: %v", err)
				}
				return
			}
			d.s.Expect = re
		}},
	{"within", sString("How long the step waits for expect, a Go duration. Default 5s, within the check's timeout."),
		func(l *loader, file string, _, v *yaml.Node, d *stepDraft) {
			if t, ok := l.duration(file, "steps.within", v); ok {
				if t <= 0 || t > MaxTimeout {
					l.add(file, v.Line, "steps.within: %s must be positive and at most %s", v.Value, MaxTimeout)
					return
				}
				d.s.Within = t
			}
		}},
}

func stepsSchema() schema {
	return sList(sObject(stepKeys, "A step: send, then expect (within)."), "The scripted exchange after open, in order. send and expect alone are one step that reads only the first reply.")
}

// steps reads a `steps:` list.
func (l *loader) steps(file string, v *yaml.Node) []Step {
	var out []Step
	l.list(file, "steps", v, func(item *yaml.Node) {
		d := stepDraft{s: Step{Line: item.Line}}
		stepKeys.read(l, file, item, &d)
		if d.s.Send == "" && d.s.Expect == nil && !d.bad {
			l.add(file, item.Line, "steps: a step needs send, expect or both")
		}
		out = append(out, d.s)
	})
	if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
		l.add(file, v.Line, "steps: an empty list; leave it out for no exchange")
	}
	return out
}

// protocolName reads `protocol:`.
func (l *loader) protocolName(file string, v *yaml.Node) string {
	s, ok := l.str(file, "protocol", v)
	if ok && !slices.Contains(protocol.Names, s) {
		l.add(file, v.Line, "protocol: %q is not a known protocol (%s)", s, strings.Join(protocol.Names, ", "))
		return ""
	}
	return s
}
