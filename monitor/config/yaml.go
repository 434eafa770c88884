package config

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"
)

// key is one key of a YAML mapping: how its value is read into T and what
// the published JSON Schema says of it. The loader's known keys, its
// readers and checks.d/wscanary-checks.schema.json all come from these
// tables, so a key cannot be added to one and forgotten in another.
type key[T any] struct {
	name   string
	schema schema
	read   func(l *loader, file string, k, v *yaml.Node, into *T)
}

// section is the keys of one mapping, in the order messages list them.
type section[T any] []key[T]

func (s section[T]) names() []string {
	out := make([]string, len(s))
	for i, k := range s {
		out[i] = k.name
	}
	return out
}

// read walks mapping m, rejecting unknown and repeated keys, and reads
// each known one into into.
func (s section[T]) read(l *loader, file string, m *yaml.Node, into *T) {
	if m.Kind != yaml.MappingNode {
		l.add(file, m.Line, "expected a mapping")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		idx := -1
		for j := range s {
			if s[j].name == k.Value {
				idx = j
				break
			}
		}
		if idx < 0 {
			l.add(file, k.Line, "unknown key %q (known: %s)", k.Value, strings.Join(s.names(), ", "))
			continue
		}
		if seen[k.Value] {
			l.add(file, k.Line, "key %q appears twice", k.Value)
			continue
		}
		seen[k.Value] = true
		s[idx].read(l, file, k, v, into)
	}
}

// parse reads one YAML document; an empty file is an empty mapping.
func (l *loader) parse(file string, b []byte) *yaml.Node {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		line := 0
		msg := err.Error()
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = strings.TrimSpace(m[2])
		} else {
			line = yamlErrorLine(b, msg)
		}
		l.add(file, line, "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
		return nil
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		l.add(file, root.Line, "expected a mapping at the top of the file")
		return nil
	}
	return root
}

var (
	yamlLine   = regexp.MustCompile(`line (\d+):\s*(.*)`)
	yamlAnchor = regexp.MustCompile(`unknown anchor '([^']*)'`)
)

// yamlErrorLine finds the line of the few YAML errors that come without
// one; failing that, the document starts at line 1.
func yamlErrorLine(b []byte, msg string) int {
	at := -1
	switch {
	case strings.Contains(msg, "control characters"):
		at = bytes.IndexFunc(b, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' })
	case yamlAnchor.MatchString(msg):
		at = bytes.Index(b, []byte("*"+yamlAnchor.FindStringSubmatch(msg)[1]))
	}
	if at < 0 {
		return 1
	}
	return 1 + bytes.Count(b[:at], []byte("\n"))
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// str reads a scalar string and expands ${VAR}.
func (l *loader) str(file, key string, v *yaml.Node) (string, bool) {
	if v.Kind != yaml.ScalarNode {
		l.add(file, v.Line, "%s: expected a string", key)
		return "", false
	}
	if v.Tag == "!!null" {
		return "", true
	}
	ok := true
	out := envRef.ReplaceAllStringFunc(v.Value, func(ref string) string {
		name := ref[2 : len(ref)-1]
		val, set := l.lookup(name)
		if !set && l.beside && key != "store" && key != "state_dir" {
			return ""
		}
		if !set {
			l.add(file, v.Line, "%s: environment variable %s is not set", key, name)
			ok = false
		}
		return val
	})
	return out, ok
}

func (l *loader) integer(file, key string, v *yaml.Node) (int, bool) {
	s, ok := l.str(file, key, v)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		l.add(file, v.Line, "%s: expected a whole number, got %q", key, s)
		return 0, false
	}
	return n, true
}

// atLeastOne reads a whole number of 1 or more.
func (l *loader) atLeastOne(file, key string, v *yaml.Node) (int, bool) {
	n, ok := l.integer(file, key, v)
	if ok && n < 1 {
		l.add(file, v.Line, "%s: must be 1 or more", key)
	}
	return n, ok
}

func (l *loader) boolean(file, key string, v *yaml.Node) (bool, bool) {
	s, ok := l.str(file, key, v)
	if !ok {
		return false, false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		l.add(file, v.Line, "%s: expected true or false, got %q", key, s)
		return false, false
	}
	return b, true
}

func (l *loader) duration(file, key string, v *yaml.Node) (time.Duration, bool) {
	s, ok := l.str(file, key, v)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		l.add(file, v.Line, "%s: expected a positive duration like 10s or 4h, got %q", key, s)
		return 0, false
	}
	return d, true
}

// ParseDays is time.ParseDuration that also takes whole days ("30d"),
// which retention and expiry windows are usually written in.
func ParseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 3650 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(days) * Day, nil
	}
	return time.ParseDuration(s)
}

// days reads a positive duration that may be written in days.
func (l *loader) days(file, key string, v *yaml.Node) (time.Duration, bool) {
	s, ok := l.str(file, key, v)
	if !ok {
		return 0, false
	}
	d, err := ParseDays(s)
	if err != nil || d <= 0 {
		l.add(file, v.Line, "%s: expected a positive duration like 14d or 36h, got %q", key, s)
		return 0, false
	}
	return d, true
}

func (l *loader) strings(file, key string, v *yaml.Node) []string {
	if v.Kind != yaml.SequenceNode {
		l.add(file, v.Line, "%s: expected a list", key)
		return nil
	}
	out := make([]string, 0, len(v.Content))
	for _, item := range v.Content {
		if s, ok := l.str(file, key, item); ok {
			out = append(out, s)
		}
	}
	return out
}

func (l *loader) stringMap(file, key string, v *yaml.Node) map[string]string {
	if v.Kind != yaml.MappingNode {
		l.add(file, v.Line, "%s: expected a mapping", key)
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		if s, ok := l.str(file, key+"."+v.Content[i].Value, v.Content[i+1]); ok {
			out[v.Content[i].Value] = s
		}
	}
	return out
}

// list calls each for every item of a sequence.
func (l *loader) list(file, key string, v *yaml.Node, each func(item *yaml.Node)) {
	if v.Kind != yaml.SequenceNode {
		l.add(file, v.Line, "%s: expected a list", key)
		return
	}
	for _, item := range v.Content {
		each(item)
	}
}

func fmtLine(file string, line int) string { return fmt.Sprintf("%s:%d", file, line) }
