package config

import (
	"encoding/json"
)

// schema is a JSON Schema fragment. Every key of every section carries
// one, and CheckFileSchema assembles them, so the schema editors read is
// derived from the very tables the loader reads with.
type schema map[string]any

// SchemaFile is where the check-file schema ships, relative to the
// repository root.
const SchemaFile = "checks.d/wscanary-checks.schema.json"

func sString(desc string) schema { return schema{"type": "string", "description": desc} }

func sPattern(pattern, desc string) schema {
	return schema{"type": "string", "pattern": pattern, "description": desc}
}

func sBool(desc string) schema { return schema{"type": "boolean", "description": desc} }

func sInt(min int, desc string) schema {
	return schema{"type": "integer", "minimum": min, "description": desc}
}

func sEnum(desc string, values ...string) schema { return schema{"enum": values, "description": desc} }

func sList(item schema, desc string) schema {
	return schema{"type": "array", "items": item, "description": desc}
}

func sMap(desc string) schema {
	return schema{"type": "object", "additionalProperties": schema{"type": "string"}, "description": desc}
}

func sRef(def string) schema { return schema{"$ref": "#/$defs/" + def} }

// sObject is the schema of a section: its keys and nothing else.
func sObject[T any](s section[T], desc string, required ...string) schema {
	props := schema{}
	for _, k := range s {
		props[k.name] = k.schema
	}
	out := schema{"type": "object", "additionalProperties": false, "properties": props}
	if desc != "" {
		out["description"] = desc
	}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

// CheckFileSchema is the JSON Schema of a checks.d file, generated from
// the loader's tables. A test keeps SchemaFile equal to it.
func CheckFileSchema() []byte {
	doc := schema{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  "https://github.com/wscanary/wscanary/" + SchemaFile,
		"title":                "wscanary check file",
		"description":          "A file in checks.d/: a list of WebSocket handshake checks. Generated from monitor/config; do not edit by hand.",
		"type":                 "object",
		"additionalProperties": false,
		"required":             []string{"checks"},
		"properties":           schema{"checks": sList(sRef("check"), "The checks of this file; names are unique across checks.d.")},
		"$defs": schema{
			"check": sObject(checkKeys, "One WebSocket endpoint, its schedule, request and alert rule.", "name", "url", "schedule"),
			"tls":   sObject(tlsKeys, "Client TLS settings of a route."),
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err) // a static document of maps, strings and numbers
	}
	return append(b, '\n')
}
