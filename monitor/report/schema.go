package report

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"
)

// Schema is the JSON Schema of what `wscanary check --output json` and
// `wscanary probe --output json` print: an array of reports. It is
// generated from the types, so it cannot drift from them; the enums are
// the package's own lists (Causes, Hops, ...). docs/report.schema.json is
// this, written by the report package's test.
func Schema() []byte {
	defs := map[string]any{}
	root := map[string]any{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"$id":         "https://github.com/wscanary/wscanary/docs/report.schema.json",
		"title":       "wscanary reports",
		"description": "What wscanary check and probe print with --output json: one report per check run.",
		"type":        "array",
		"items":       schemaOf(reflect.TypeFor[Report](), defs),
		"$defs":       defs,
	}
	b, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		panic(err) // maps of strings and slices only
	}
	return append(b, '\n')
}

// enums are the closed string types and their values.
var enums = map[reflect.Type][]string{
	reflect.TypeFor[Cause]():     names(Causes),
	reflect.TypeFor[Hop]():       names(Hops),
	reflect.TypeFor[Route]():     {string(RouteCDN), string(RouteDirect)},
	reflect.TypeFor[Variant]():   {string(VariantConfigured), string(VariantNoOrigin), string(VariantSameOrigin), string(VariantNoToken), string(VariantBrowser)},
	reflect.TypeFor[Transport](): names(Transports),
	reflect.TypeFor[Outcome]():   {string(OutcomeUpgraded), string(OutcomeRefused), string(OutcomeRejectedAfterOpen), string(OutcomeNoAnswer), string(OutcomeNotOffered)},
	reflect.TypeFor[StepResult](): {string(StepOK), string(StepRefused), string(StepClosed), string(StepNoMatch), string(StepTimeout),
		string(StepSendFailed)},
}

func names[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

func schemaOf(t reflect.Type, defs map[string]any) map[string]any {
	if vs, ok := enums[t]; ok {
		// "" stands for an optional value left out by omitempty.
		return map[string]any{"type": "string", "enum": append([]string{""}, vs...)}
	}
	switch {
	case t == reflect.TypeFor[time.Time]():
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.Pointer:
		return schemaOf(t.Elem(), defs)
	case t.Kind() == reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), defs)}
	case t.Kind() == reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), defs)}
	case t.Kind() == reflect.String:
		return map[string]any{"type": "string"}
	case t.Kind() == reflect.Bool:
		return map[string]any{"type": "boolean"}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return map[string]any{"type": "integer"}
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return map[string]any{"type": "number"}
	case t.Kind() == reflect.Struct:
		name := t.Name()
		if _, ok := defs[name]; !ok {
			defs[name] = nil // a placeholder while its fields are read
			props := map[string]any{}
			var required []string
			for f := range t.Fields() {
				tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				if tag == "-" || !f.IsExported() {
					continue
				}
				props[tag] = schemaOf(f.Type, defs)
				if opts := f.Tag.Get("json"); !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
					required = append(required, tag)
				}
			}
			d := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
			if len(required) > 0 {
				d["required"] = required
			}
			defs[name] = d
		}
		return map[string]any{"$ref": "#/$defs/" + name}
	}
	return map[string]any{}
}
