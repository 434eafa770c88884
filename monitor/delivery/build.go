package delivery

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/notifier"
)

// Build makes the notifiers cfg names: Slack as the primary when it is
// configured, else the console (out; colour when it is a terminal), so a
// daemon without Slack still says what it would have posted; and each of
// notify: by its name.
func Build(cfg *config.Config, logger *slog.Logger, out io.Writer, color bool) (notifier.Notifier, map[string]notifier.Notifier, error) {
	var primary notifier.Notifier
	if cfg.Slack.Enabled() {
		s, err := notifier.NewSlack(notifier.SlackOptions{WebhookURL: cfg.Slack.WebhookURL, Token: cfg.Slack.Token,
			Channel: cfg.Slack.Channel, APIURL: cfg.Slack.APIURL, Logger: logger, Buttons: cfg.Slack.AppToken != ""})
		if err != nil {
			return nil, nil, fmt.Errorf("slack: %w", err)
		}
		primary = s
	} else {
		primary = notifier.NewConsole(out, notifier.ConsoleOptions{Color: color})
	}
	targets := map[string]notifier.Notifier{}
	for _, nc := range cfg.Notify {
		var n notifier.Notifier
		var err error
		switch {
		case nc.Alertmanager != nil:
			n, err = notifier.NewAlertmanager(notifier.AlertmanagerOptions{URL: nc.Alertmanager.URL})
		case nc.PagerDuty != nil:
			p := nc.PagerDuty
			n, err = notifier.NewPagerDuty(notifier.PagerDutyOptions{RoutingKey: p.RoutingKey, APIURL: p.APIURL, Severity: p.Severity,
				SeverityByCause: p.SeverityByCause})
		case nc.Webhook != nil:
			n, err = notifier.NewWebhook(notifier.WebhookOptions{URL: nc.Webhook.URL, Secret: nc.Webhook.Secret})
		}
		if err != nil {
			return nil, nil, fmt.Errorf("notify %q: %w", nc.Name, err)
		}
		targets[nc.Name] = n
	}
	return primary, targets, nil
}
