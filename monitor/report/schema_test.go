package report_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/report"
)

var update = flag.Bool("update", false, "rewrite docs/report.schema.json")

const schemaFile = "../../docs/report.schema.json"

// TestSchemaIsGenerated: the published schema is what the types generate.
func TestSchemaIsGenerated(t *testing.T) {
	got := report.Schema()
	if *update {
		if err := os.WriteFile(schemaFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s is not what the report types generate (%v); run go test ./monitor/report -run TestSchemaIsGenerated -update", schemaFile, err)
	}
}

// TestReportMatchesSchema: a report with every field set validates, and
// one with a field or a cause the schema does not know does not.
func TestReportMatchesSchema(t *testing.T) {
	var schema map[string]any
	if err := json.Unmarshal(report.Schema(), &schema); err != nil {
		t.Fatal(err)
	}
	a := report.Attempt{Vantage: "eu", Route: report.RouteCDN, Variant: report.VariantConfigured, Transport: report.TransportHTTP1,
		URL: "ws://x/ws", Status: 403, Outcome: report.OutcomeRefused, Error: "connect: proxy", Headers: map[string]string{"Server": "squid/5.7"},
		Body: "denied", Hop: report.HopVantageProxy, Gateway: "oauth2-proxy", Steps: []report.Step{{Name: "s", Result: report.StepOK, MS: 1}},
		CertNotAfter: time.Now(), Messages: []string{"m"}}
	r := report.Report{Check: "chat", Diagnosis: report.Diagnosis{Cause: report.CauseVantageProxyRefused, Hop: report.HopVantageProxy,
		Gateway: "x", Hints: []string{"h"}}, Attempts: []report.Attempt{a}, Started: time.Now(), Token: &report.Token{In: "header", JWT: true}}
	doc := func(r report.Report, edit func(map[string]any)) any {
		b, _ := json.Marshal([]report.Report{r})
		var v []map[string]any
		json.Unmarshal(b, &v)
		if edit != nil {
			edit(v[0])
		}
		return []any{v[0]}
	}
	if err := validate(schema, schema, doc(r, nil), "$"); err != nil {
		t.Fatalf("a full report does not validate: %v", err)
	}
	for name, edit := range map[string]func(map[string]any){
		"an unknown field": func(m map[string]any) { m["surprise"] = 1 },
		"an unknown cause": func(m map[string]any) { m["diagnosis"].(map[string]any)["cause"] = "gremlins" },
		"an unknown hop":   func(m map[string]any) { m["attempts"].([]any)[0].(map[string]any)["hop"] = "carrier pigeon" },
		"no check":         func(m map[string]any) { delete(m, "check") },
	} {
		if err := validate(schema, schema, doc(r, edit), "$"); err == nil {
			t.Errorf("a report with %s validates", name)
		}
	}
}

// validate checks v against the subset of JSON Schema Schema uses.
func validate(root, s map[string]any, v any, at string) error {
	if ref, ok := s["$ref"].(string); ok {
		def := root["$defs"].(map[string]any)[ref[len("#/$defs/"):]].(map[string]any)
		return validate(root, def, v, at)
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		return fmt.Errorf("%s: %v is not one of %v", at, v, enum)
	}
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: not an object", at)
		}
		props, _ := s["properties"].(map[string]any)
		for _, r := range asList(s["required"]) {
			if _, ok := m[r.(string)]; !ok {
				return fmt.Errorf("%s: %s is required", at, r)
			}
		}
		for k, fv := range m {
			ps, ok := props[k].(map[string]any)
			if !ok {
				ps, ok = s["additionalProperties"].(map[string]any)
			}
			if !ok {
				return fmt.Errorf("%s: %s is not in the schema", at, k)
			}
			if err := validate(root, ps, fv, at+"."+k); err != nil {
				return err
			}
		}
	case "array":
		for i, e := range asList(v) {
			if err := validate(root, s["items"].(map[string]any), e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case "string":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s: not a string", at)
		}
	case "integer", "number":
		if _, ok := v.(float64); !ok {
			return fmt.Errorf("%s: not a number", at)
		}
	}
	return nil
}

func asList(v any) []any { l, _ := v.([]any); return l }
