package notifier_test

import (
	"time"

	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/notifier"
)

// Fixed events shared by the tests; the golden files are built from them.

var (
	t0    = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	trace = "4bf92f3577b34da6a3ce929d0e0e4736"
)

const firstHint = "Find the matching rule in Cloudflare Security Events by its Cf-Ray and add a skip rule for /ws"

func alertEvent() notifier.Event {
	return notifier.Event{
		ID:        "chat/us-east-1/cdn/20261124T101230Z",
		Kind:      notifier.KindAlert,
		Check:     "chat",
		Vantage:   "us-east-1",
		Route:     report.RouteCDN,
		OldStatus: 101,
		NewStatus: 403,
		Since:     t0,
		At:        t0.Add(12*time.Minute + 30*time.Second),
		Diagnosis: report.Diagnosis{
			Cause:   report.CauseCDNBlocked,
			Route:   report.RouteCDN,
			Vantage: "us-east-1",
			Vendor:  "cloudflare",
			Summary: "Cloudflare answers 403 with a challenge through the CDN while the origin accepts the handshake directly.",
			Hints: []string{
				firstHint,
				"Managed challenges cannot be solved by a WebSocket client: exempt the path (Security > WAF > Custom rules > Skip).",
			},
		},
		Attempt: report.Attempt{
			Vantage: "us-east-1", Route: report.RouteCDN, Variant: report.VariantConfigured,
			URL:    "wss://chat.example.com/ws?room=1&token=REDACTED",
			Status: 403, Reason: "Forbidden",
			DurationMS: 41.2,
			Headers: map[string]string{
				"Server":        "cloudflare",
				"Cf-Ray":        "8e1f2a3b4c5d6e7f-IAD",
				"Cf-Mitigated":  "challenge",
				"Content-Type":  "text/html; charset=UTF-8",
				"Cache-Control": "private, max-age=0",
			},
			Body: "<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title>" +
				"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\"><meta name=\"robots\" content=\"noindex,nofollow\">" +
				"<style>*{box-sizing:border-box;margin:0;padding:0}html{line-height:1.15;-webkit-text-size-adjust:100%;color:#313131}" +
				"</style></head><body><noscript>Enable JavaScript & cookies to continue</noscript></body></html>",
			TraceID:    trace,
			Origin:     "https://app.example.com",
			Credential: "query",
		},
		Others: []report.Attempt{
			{Vantage: "us-east-1", Route: report.RouteDirect, Variant: report.VariantConfigured, Status: 101, OK: true},
			{Vantage: "eu-west-1", Route: report.RouteCDN, Variant: report.VariantConfigured, Status: 403, Reason: "Forbidden"},
			{Vantage: "eu-west-1", Route: report.RouteDirect, Variant: report.VariantConfigured, Error: "connect: connection refused"},
		},
		TraceURL: "https://grafana.example.com/explore?traceId=" + trace,
	}
}

func changeEvent() notifier.Event {
	return notifier.Event{
		ID:        "api/eu-west-1/cdn/20261124T110030Z",
		Kind:      notifier.KindChange,
		Check:     "api",
		Vantage:   "eu-west-1",
		Route:     report.RouteCDN,
		OldStatus: 401,
		NewStatus: 403,
		Since:     t0.Add(time.Hour),
		At:        t0.Add(time.Hour + 30*time.Second),
		Diagnosis: report.Diagnosis{
			Cause: report.CauseCDNBlocked, Route: report.RouteCDN, Vantage: "eu-west-1", Vendor: "aws",
			Summary: "AWS WAF blocks the upgrade at CloudFront; the origin accepts it.",
			Hints:   []string{"Look up the blocking rule in the AWS WAF web ACL sampled requests and add an exception for the WebSocket path"},
		},
		Attempt: report.Attempt{
			Vantage: "eu-west-1", Route: report.RouteCDN, Variant: report.VariantConfigured,
			URL:    "wss://api.example.com/socket?access_token=REDACTED",
			Status: 403, Reason: "Forbidden",
			Headers: map[string]string{
				"Server":            "CloudFront",
				"Via":               "1.1 3f2a.cloudfront.net (CloudFront)",
				"X-Cache":           "Error from cloudfront",
				"X-Amz-Cf-Id":       "Q1w2E3r4T5y6==",
				"X-Amzn-Waf-Action": "block",
			},
			Body:       "<html><body><h1>403 Forbidden</h1>Request blocked.</body></html>",
			TraceID:    "0af7651916cd43dd8448eb211c80319c",
			Credential: "header",
		},
		Others: []report.Attempt{
			{Vantage: "eu-west-1", Route: report.RouteDirect, Variant: report.VariantConfigured, Status: 101, OK: true},
		},
		Thread: &notifier.Delivery{Channel: "C0ALERTS", TS: "1764000750.000100"},
	}
}

func recoveryEvent() notifier.Event {
	alert := alertEvent()
	return notifier.Event{
		ID:        "chat/us-east-1/cdn/20261124T104700Z",
		Kind:      notifier.KindRecovery,
		Check:     "chat",
		Vantage:   "us-east-1",
		Route:     report.RouteCDN,
		OldStatus: 403,
		NewStatus: 101,
		Since:     alert.Since,
		At:        t0.Add(47 * time.Minute),
		Diagnosis: report.Diagnosis{Cause: report.CauseOK},
		Attempt: report.Attempt{
			Vantage: "us-east-1", Route: report.RouteCDN, Variant: report.VariantConfigured,
			URL:    "wss://chat.example.com/ws?room=1&token=REDACTED",
			Status: 101, OK: true, Reason: "Switching Protocols",
			Headers: map[string]string{"Server": "cloudflare", "Cf-Ray": "8e1f99aa00bb11cc-IAD"},
			TraceID: "7d3c1f0e9b8a4c2d8e6f5a4b3c2d1e0f",
		},
		Others: []report.Attempt{
			{Vantage: "us-east-1", Route: report.RouteDirect, Variant: report.VariantConfigured, Status: 101, OK: true},
		},
		TraceURL: "https://grafana.example.com/explore?traceId=7d3c1f0e9b8a4c2d8e6f5a4b3c2d1e0f",
		Thread:   &notifier.Delivery{Channel: "C0ALERTS", TS: "1764000750.000100"},
		Alert:    &alert,
	}
}

func reminderEvent() notifier.Event {
	ev := alertEvent()
	ev.ID = "chat/us-east-1/cdn/20261124T140000Z"
	ev.Kind = notifier.KindReminder
	ev.At = t0.Add(4 * time.Hour)
	ev.Thread = &notifier.Delivery{Channel: "C0ALERTS", TS: "1764000750.000100"}
	return ev
}
