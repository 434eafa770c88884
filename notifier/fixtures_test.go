package notifier_test

import (
	"time"

	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/notifier"
)

// Fixed messages shared by the tests; the golden files are built from them.

var (
	t0    = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	root  = notifier.Delivery{Channel: "C0ALERTS", TS: "1764000750.000100"}
)

const firstHint = "Find the matching rule in Cloudflare Security Events by its Cf-Ray and add a skip rule for /ws"

// incidentView is a Cloudflare challenge seen from three vantages through
// the CDN while the direct route upgrades everywhere: 3 of 6 cells fail.
func incidentView() notifier.Incident {
	cell := func(v string, r report.Route, status int) notifier.Cell {
		c := notifier.Cell{Vantage: v, Route: r, Status: status, Outcome: report.OutcomeUpgraded}
		if status != 101 {
			c.Outcome, c.Reason, c.Failing = report.OutcomeRefused, "Forbidden", true
		}
		return c
	}
	return notifier.Incident{
		ID: "chat-20261124T100000Z", Check: "chat", State: notifier.StateOpen,
		Opened: t0, At: t0.Add(12*time.Minute + 30*time.Second),
		Cause: report.CauseCDNBlocked, Vendor: "cloudflare",
		Summary: "Cloudflare answers 403 with a challenge through the CDN while the origin accepts the handshake directly.",
		Hints: []string{
			firstHint,
			"Managed challenges cannot be solved by a WebSocket client: exempt the path (Security > WAF > Custom rules > Skip).",
		},
		Cells: []notifier.Cell{
			cell("ap-south-1", report.RouteCDN, 403), cell("ap-south-1", report.RouteDirect, 101),
			cell("eu-west-1", report.RouteCDN, 403), cell("eu-west-1", report.RouteDirect, 101),
			cell("us-east-1", report.RouteCDN, 403), cell("us-east-1", report.RouteDirect, 101),
		},
		Attempt: report.Attempt{
			Vantage: "us-east-1", Route: report.RouteCDN, Variant: report.VariantConfigured,
			URL:    "wss://chat.example.com/ws?room=1&token=REDACTED",
			Status: 403, Reason: "Forbidden", Outcome: report.OutcomeRefused,
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
		Variants: []report.Attempt{
			{Vantage: "us-east-1", Route: report.RouteCDN, Variant: report.VariantNoOrigin, Status: 403, Reason: "Forbidden"},
			{Vantage: "us-east-1", Route: report.RouteCDN, Variant: report.VariantNoToken, Error: "connect: connection refused"},
		},
		TraceURL: "https://grafana.example.com/explore?traceId=" + trace,
	}
}

// resolvedView is the same incident once every cell upgrades again.
func resolvedView() notifier.Incident {
	inc := incidentView()
	inc.State = notifier.StateResolved
	inc.Closed = t0.Add(47 * time.Minute)
	inc.At = inc.Closed
	for i := range inc.Cells {
		inc.Cells[i] = notifier.Cell{Vantage: inc.Cells[i].Vantage, Route: inc.Cells[i].Route, Status: 101, Outcome: report.OutcomeUpgraded}
	}
	return inc
}

func openMsg() notifier.Message {
	inc := incidentView()
	return notifier.Message{ID: "chat-20261124T100000Z/open", Kind: notifier.KindOpen, Incident: &inc}
}

func updateMsg() notifier.Message {
	inc := incidentView()
	inc.Cells[1] = notifier.Cell{Vantage: "ap-south-1", Route: report.RouteDirect, Status: 426, Reason: "Upgrade Required", Outcome: report.OutcomeRefused}
	th := root
	return notifier.Message{ID: "chat-20261124T100000Z/update/2", Kind: notifier.KindUpdate, Incident: &inc, Thread: &th}
}

func resolvedUpdateMsg() notifier.Message {
	inc := resolvedView()
	th := root
	return notifier.Message{ID: "chat-20261124T100000Z/update/9", Kind: notifier.KindUpdate, Incident: &inc, Thread: &th}
}

func replyMsg(events ...notifier.Event) notifier.Message {
	inc := incidentView()
	th := root
	return notifier.Message{ID: "chat-20261124T100000Z/reply/" + string(events[0].Kind), Kind: notifier.KindReply, Incident: &inc, Events: events, Thread: &th}
}

func causeChanged() notifier.Event {
	return notifier.Event{Kind: notifier.EventCauseChanged, At: t0.Add(20 * time.Minute),
		FromCause: report.CauseCDNBlocked, FromVendor: "cloudflare", ToCause: report.CauseProxyStrippedUpgrade, ToVendor: "nginx"}
}

func widened() notifier.Event {
	return notifier.Event{Kind: notifier.EventWidened, At: t0.Add(5 * time.Minute), Added: []string{"eu-west-1/cdn", "ap-south-1/cdn"}}
}

func reminder() notifier.Event {
	return notifier.Event{Kind: notifier.EventReminder, At: t0.Add(4 * time.Hour), Lasted: 4 * time.Hour}
}

func resolved() notifier.Event {
	return notifier.Event{Kind: notifier.EventResolved, At: t0.Add(47 * time.Minute), Lasted: 47 * time.Minute}
}

func reopened() notifier.Event {
	return notifier.Event{Kind: notifier.EventReopened, At: t0.Add(50 * time.Minute), Flaps: 2}
}

func recoveryMsg() notifier.Message {
	m := replyMsg(resolved())
	inc := resolvedView()
	m.Incident = &inc
	return m
}

func noticeMsg() notifier.Message {
	return notifier.Message{ID: "warn/chat/cert", Kind: notifier.KindNotice, Notice: &notifier.Notice{
		Check: "chat", Title: "chat: the TLS certificate of chat.example.com expires in 5 days",
		Lines: []string{"Seen on us-east-1/cdn: not after 2026-11-29T10:00:00Z.", "Renew it before then; wscanary opens no incident for this."},
	}}
}
