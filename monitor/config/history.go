package config

import (
	"time"

	"gopkg.in/yaml.v3"
)

// historyKeys are the keys of the main file's history: mapping.
var historyKeys = section[History]{
	{"raw", sString("How long every attempt is kept as it was (48h, 7d); default 48h, at most keep."), func(l *loader, file string, _, v *yaml.Node, h *History) {
		if d, ok := l.historyLength(file, "history.raw", v); ok {
			h.Raw = d
		}
	}},
	{"keep", sString("How long the hourly rollups are kept (400d); default 400d."), func(l *loader, file string, _, v *yaml.Node, h *History) {
		if d, ok := l.historyLength(file, "history.keep", v); ok {
			h.Keep = d
		}
	}},
}

func historySchema() schema {
	return schema{"description": "How long the history is kept: a duration alone (30d) is keep, with the default raw window; or {raw, keep}.",
		"oneOf": []schema{{"type": "string"}, sObject(historyKeys, "")}}
}

// history reads history: a duration alone is keep (what it meant before
// rollups existed: `history: 30d` keeps 30 days), or the mapping.
func (l *loader) history(file string, v *yaml.Node) History {
	h := DefaultHistory()
	switch v.Kind {
	case yaml.ScalarNode:
		d, ok := l.historyLength(file, "history", v)
		if !ok {
			return h
		}
		h.Keep = d
		h.Raw = min(h.Raw, d)
	case yaml.MappingNode:
		raw := false
		for i := 0; i+1 < len(v.Content); i += 2 {
			raw = raw || v.Content[i].Value == "raw"
		}
		historyKeys.read(l, file, v, &h)
		if h.Raw > h.Keep {
			if raw {
				l.add(file, v.Line, "history: raw (%s) is longer than keep (%s)", h.Raw, h.Keep)
			} else {
				h.Raw = h.Keep
			}
		}
	default:
		l.add(file, v.Line, "history: expected a duration (30d) or a mapping (raw, keep)")
	}
	return h
}

func (l *loader) historyLength(file, key string, v *yaml.Node) (time.Duration, bool) {
	h, ok := l.days(file, key, v)
	if !ok {
		return 0, false
	}
	if h < MinHistory {
		l.add(file, v.Line, "%s: %s is less than the minimum of %s", key, v.Value, MinHistory)
		return 0, false
	}
	return h, true
}
