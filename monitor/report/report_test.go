package report_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/wscanary/wscanary/monitor/report"
)

// TestJSONContract: the keys of the report's JSON contract are present, spelled as
// documented, and lists are [] rather than null.
func TestJSONContract(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	reps := []report.Report{{Check: "chat", Diagnosis: report.Diagnosis{Cause: report.CauseCDNBlocked}, Attempts: []report.Attempt{{
		Vantage: "us", Route: report.RouteCDN, Variant: report.VariantConfigured, Status: 403,
		Headers: map[string]string{"Server": "cloudflare"}, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}}}, {Check: "empty"}}
	if err := report.WriteJSON(&buf, reps); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"check", "ok", "diagnosis", "attempts"} {
		if _, ok := got[0][k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	d := got[0]["diagnosis"].(map[string]any)
	for _, k := range []string{"cause", "route", "vantage", "vendor", "summary", "hints"} {
		if _, ok := d[k]; !ok {
			t.Errorf("diagnosis lacks %q", k)
		}
	}
	a := got[0]["attempts"].([]any)[0].(map[string]any)
	for _, k := range []string{"vantage", "route", "variant", "url", "status", "ok", "error", "close_code", "duration_ms", "timings_ms", "headers", "body", "trace_id"} {
		if _, ok := a[k]; !ok {
			t.Errorf("attempt lacks %q", k)
		}
	}
	for _, k := range []string{"dns", "connect", "tls", "first_byte"} {
		if _, ok := a["timings_ms"].(map[string]any)[k]; !ok {
			t.Errorf("timings lack %q", k)
		}
	}
	if got[1]["attempts"] == nil || got[1]["diagnosis"].(map[string]any)["hints"] == nil {
		t.Error("empty lists must be [], not null")
	}
}

func TestTable(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	report.WriteTable(&buf, []report.Report{{Check: "chat", Diagnosis: report.Diagnosis{Cause: report.CauseCDNBlocked, Vendor: "cloudflare",
		Summary: "blocked at the edge", Hints: []string{"first hint", "second hint"}}, Attempts: []report.Attempt{
		{Vantage: "us", Route: report.RouteCDN, Variant: report.VariantConfigured, Status: 403, Reason: "Forbidden",
			Headers: map[string]string{"Cf-Mitigated": "challenge"}, DurationMS: 41.2, TraceID: "abc"},
		{Vantage: "us", Route: report.RouteDirect, Variant: report.VariantConfigured, Status: 101, OK: true, DurationMS: 3}}}},
		report.TableOptions{})
	out := buf.String()
	for _, want := range []string{"chat FAIL", "cdn", "403", "41.2ms", "Forbidden Cf-Mitigated: challenge", "upgraded",
		"cause: cdn_blocked (cloudflare): blocked at the edge", "hint:  first hint"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "second hint") || strings.Contains(out, "\x1b[") {
		t.Errorf("only the first hint, and no color off a terminal:\n%s", out)
	}
}

func TestOutcomeOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a    report.Attempt
		want report.Outcome
	}{
		{report.Attempt{Status: 101, OK: true}, report.OutcomeUpgraded},
		{report.Attempt{Status: 101, CloseCode: 4003, Error: "expect: server closed with 4003"}, report.OutcomeRejectedAfterOpen},
		{report.Attempt{Status: 101, Error: "expect: first message did not match"}, report.OutcomeRejectedAfterOpen},
		{report.Attempt{Status: 403}, report.OutcomeRefused},
		{report.Attempt{Status: 426}, report.OutcomeRefused},
		{report.Attempt{Error: "tls: certificate expired"}, report.OutcomeNoAnswer},
	}
	for _, tt := range tests {
		if got := report.OutcomeOf(tt.a); got != tt.want {
			t.Errorf("OutcomeOf(%+v) = %s, want %s", tt.a, got, tt.want)
		}
	}
}
