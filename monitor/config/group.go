package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// groupKeys are the keys of the main file's group: mapping.
var groupKeys = section[Group]{
	{"wait", sString("Incidents that open within this of each other may form a group (Go duration). Default 30s."), func(l *loader, file string, _, v *yaml.Node, g *Group) {
		g.Wait, _ = l.duration(file, "group.wait", v)
	}},
	{"min", sInt(2, "How many open incidents form a group. Default 3."), func(l *loader, file string, _, v *yaml.Node, g *Group) {
		if n, ok := l.integer(file, "group.min", v); ok {
			if n < 2 {
				l.add(file, v.Line, "group.min: %d: a group needs 2 incidents or more", n)
				return
			}
			g.Min = n
		}
	}},
	{"by", sList(schema{"type": "string", "pattern": `^(cause|vendor|pop|vantages|route|label:[A-Za-z_][A-Za-z0-9_]*)$`},
		"What members share beside the channel: cause, vendor, pop, vantages, route, label:NAME. Default [cause, vendor]."),
		func(l *loader, file string, _, v *yaml.Node, g *Group) {
			g.By = nil
			for _, s := range l.strings(file, "group.by", v) {
				if err := groupByPart(s); err != nil {
					l.add(file, v.Line, "group.by: %v", err)
					continue
				}
				if !slices.Contains(g.By, s) {
					g.By = append(g.By, s)
				}
			}
		}},
	{"interval", sString("The shortest time between two updates of a group's message (Go duration). Default 10s."), func(l *loader, file string, _, v *yaml.Node, g *Group) {
		g.Interval, _ = l.duration(file, "group.interval", v)
	}},
}

// DefaultGroup is group: when the main file does not say.
func DefaultGroup() Group {
	return Group{Wait: DefaultGroupWait, Min: DefaultGroupMin, By: DefaultGroupBy(), Interval: DefaultGroupInterval}
}

// groupSchema: off, or the mapping.
func groupSchema(desc string, mapping bool) schema {
	off := schema{"enum": []any{"off", false}}
	if !mapping {
		return schema{"description": desc, "enum": []any{"off", false}}
	}
	return schema{"description": desc, "oneOf": []schema{off, sObject(groupKeys, "")}}
}

// group reads the main file's group: ("off" or the mapping).
func (l *loader) group(file string, v *yaml.Node) Group {
	g := DefaultGroup()
	if v.Kind == yaml.ScalarNode {
		if isOff(v.Value) {
			g.Off = true
		} else {
			l.add(file, v.Line, "group: expected off or a mapping (wait, min, by, interval), got %q", v.Value)
		}
		return g
	}
	if v.Kind != yaml.MappingNode {
		l.add(file, v.Line, "group: expected off or a mapping (wait, min, by, interval)")
		return g
	}
	groupKeys.read(l, file, v, &g)
	return g
}

// isOff: "off", "false" or "no" (YAML 1.1 readers write off as false).
func isOff(s string) bool {
	switch strings.ToLower(s) {
	case "off", "false", "no":
		return true
	}
	return false
}

var labelName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ReservedLabels are the Alertmanager labels wscanary sets itself.
var ReservedLabels = []string{"alertname", "check", "incident", "cause", "vendor", "route", "group"}

// LabelName says why a label's name cannot be used: it must be an
// Alertmanager label name and none of wscanary's own.
func LabelName(k string) error {
	if !labelName.MatchString(k) {
		return fmt.Errorf("%q is not a label name (letters, digits and _, not first a digit)", k)
	}
	if slices.Contains(ReservedLabels, k) {
		return fmt.Errorf("%q is a label wscanary sets itself (%s)", k, strings.Join(ReservedLabels, ", "))
	}
	return nil
}

func groupByPart(s string) error {
	if name, ok := strings.CutPrefix(s, "label:"); ok {
		if !labelName.MatchString(name) {
			return fmt.Errorf("%q: %q is not a label name", s, name)
		}
		return nil
	}
	if !slices.Contains(GroupByParts, s) {
		return fmt.Errorf("%q is not one of %s or label:NAME", s, strings.Join(GroupByParts, ", "))
	}
	return nil
}

// checkDepends applies the rules of alert.depends_on that need every
// check: each name is another check, and no chain comes back to itself.
func checkDepends(cfg *Config, l *loader) {
	for _, c := range cfg.Checks {
		for _, p := range c.Alert.DependsOn {
			switch {
			case p == c.Name:
				l.add(c.File, c.Line, "check %q: alert.depends_on names the check itself", c.Name)
			case cfg.Check(p) == nil:
				l.add(c.File, c.Line, "check %q: alert.depends_on: no check %q", c.Name, p)
			}
		}
	}
	// A cycle would hold every check in it back for ever.
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, path []string) bool
	visit = func(name string, path []string) bool {
		switch state[name] {
		case 1:
			c := cfg.Check(name)
			l.add(c.File, c.Line, "check %q: alert.depends_on makes a cycle: %s", name, strings.Join(append(path, name), " -> "))
			return false
		case 2:
			return true
		}
		state[name] = 1
		if c := cfg.Check(name); c != nil {
			for _, p := range c.Alert.DependsOn {
				if p != name && cfg.Check(p) != nil && !visit(p, append(path, name)) {
					state[name] = 2
					return false
				}
			}
		}
		state[name] = 2
		return true
	}
	for _, c := range cfg.Checks {
		visit(c.Name, nil)
	}
}

// Route is one entry of the main file's routes: the channel of the checks
// whose labels include Labels, unless a check says alert.channel.
type Route struct {
	Labels  map[string]string
	Channel string
}

var routeKeys = section[Route]{
	{"labels", sMap("The labels a check must have (all of them)."), func(l *loader, file string, _, v *yaml.Node, r *Route) {
		r.Labels = l.stringMap(file, "routes.labels", v)
		for k := range r.Labels {
			if !labelName.MatchString(k) {
				l.add(file, v.Line, "routes.labels: %q is not a label name", k)
			}
		}
	}},
	{"channel", sString("The Slack channel of those checks."), func(l *loader, file string, _, v *yaml.Node, r *Route) {
		r.Channel, _ = l.str(file, "routes.channel", v)
	}},
}

// routes reads the main file's routes: list.
func (l *loader) routes(file string, v *yaml.Node) []Route {
	if v.Kind != yaml.SequenceNode {
		l.add(file, v.Line, "routes: expected a list of {labels, channel}")
		return nil
	}
	var out []Route
	for _, item := range v.Content {
		var r Route
		routeKeys.read(l, file, item, &r)
		if len(r.Labels) == 0 || r.Channel == "" {
			l.add(file, item.Line, "routes: each route needs labels and a channel")
			continue
		}
		out = append(out, r)
	}
	return out
}

// applyRoutes gives a check without alert.channel the channel of the
// first route whose labels it has.
func applyRoutes(cfg *Config) {
	for i := range cfg.Checks {
		c := &cfg.Checks[i]
		if c.Alert.Channel != "" {
			continue
		}
		for _, r := range cfg.Routes {
			match := true
			for k, v := range r.Labels {
				match = match && c.Labels[k] == v
			}
			if match {
				c.Alert.Channel = r.Channel
				break
			}
		}
	}
}
