package notifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// Action is a click on one of the buttons of an incident message.
type Action struct {
	// ID is ActionAck, ActionSilence or ActionRun.
	ID string
	// IncidentID is the incident the button was posted with.
	IncidentID string
	// User is the Slack user id of who clicked, UserName their handle.
	User, UserName string
	// Channel and TS are the message clicked.
	Channel, TS string
	// ResponseURL answers the click (an ephemeral message to who clicked).
	ResponseURL string
}

// Who names the person who clicked: the user id, which Slack renders as a
// mention, else the handle.
func (a Action) Who() string {
	if a.User != "" {
		return a.User
	}
	return a.UserName
}

// ListenOptions configure Listen.
type ListenOptions struct {
	// AppToken is the app-level token (xapp-) with connections:write.
	AppToken string
	// APIURL is the Web API base; default https://slack.com/api/.
	APIURL string
	// HTTPClient opens the connection (apps.connections.open).
	HTTPClient *http.Client
	// Logger gets the connection's life; the token never reaches it.
	Logger *slog.Logger
	// OnConnected is called for every connection opened: 0 for the first,
	// then once per reconnection.
	OnConnected func(count int)
	// RetryFatal is how long to wait after a connection Slack refuses for
	// good (a revoked token) before trying again; default a minute.
	RetryFatal time.Duration
}

// Listen keeps a Socket Mode connection to Slack open until ctx ends and
// calls handle for every click on wscanary's buttons. Every envelope is
// acknowledged as soon as it arrives (Slack retries one it has not heard
// back about within three seconds), then handled. A click on a button
// wscanary never posts is logged and ignored. A lost connection is reopened
// (slack-go backs off up to five minutes); a refused one is retried after
// RetryFatal. Alerting never waits on any of it: clicks are an extra.
func Listen(ctx context.Context, opts ListenOptions, handle func(context.Context, Action)) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.RetryFatal <= 0 {
		opts.RetryFatal = time.Minute
	}
	scrub := newScrubber(opts.AppToken, "")
	apiOpts := []slack.Option{slack.OptionAppLevelToken(opts.AppToken), slack.OptionLog(log.New(io.Discard, "", 0))}
	if opts.APIURL != "" {
		apiOpts = append(apiOpts, slack.OptionAPIURL(opts.APIURL))
	}
	if opts.HTTPClient != nil {
		apiOpts = append(apiOpts, slack.OptionHTTPClient(opts.HTTPClient))
	}
	client := socketmode.New(slack.New("", apiOpts...), socketmode.OptionLog(log.New(io.Discard, "", 0)))
	go func() {
		for ctx.Err() == nil {
			err := client.RunContext(ctx)
			if ctx.Err() != nil {
				return
			}
			logger.Error("slack: the Socket Mode connection was refused; buttons do nothing until it works",
				"retry_in", opts.RetryFatal.String(), "err", scrub.scrub(fmt.Sprint(err)))
			select {
			case <-ctx.Done():
			case <-time.After(opts.RetryFatal):
			}
		}
	}()
	for {
		var evt socketmode.Event
		select {
		case <-ctx.Done():
			return
		case evt = <-client.Events:
		}
		switch evt.Type {
		case socketmode.EventTypeConnected:
			n := 0
			if c, ok := evt.Data.(*socketmode.ConnectedEvent); ok {
				n = c.ConnectionCount
			}
			if n == 0 {
				logger.Info("slack: Socket Mode connected: incident messages take clicks")
			} else {
				logger.Warn("slack: Socket Mode reconnected", "connections", n+1)
			}
			if opts.OnConnected != nil {
				opts.OnConnected(n)
			}
		case socketmode.EventTypeConnectionError:
			var err error
			if c, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
				err = c.ErrorObj
			}
			logger.Warn("slack: Socket Mode connection failed, retrying", "err", scrub.scrub(fmt.Sprint(err)))
		case socketmode.EventTypeInteractive:
			if evt.Request != nil {
				if err := client.AckCtx(ctx, evt.Request.EnvelopeID, nil); err != nil {
					logger.Warn("slack: could not acknowledge an envelope", "envelope", evt.Request.EnvelopeID, "err", err)
				}
			}
			cb, ok := evt.Data.(slack.InteractionCallback)
			if !ok || cb.Type != slack.InteractionTypeBlockActions {
				logger.Debug("slack: ignored an interaction that is not a button click", "type", string(cb.Type))
				continue
			}
			for _, ba := range cb.ActionCallback.BlockActions {
				a := Action{ID: ba.ActionID, IncidentID: ba.Value, User: cb.User.ID, UserName: cb.User.Name,
					Channel: cb.Channel.ID, TS: cb.Message.Timestamp, ResponseURL: cb.ResponseURL}
				if a.Channel == "" {
					a.Channel = cb.Container.ChannelID
				}
				if a.TS == "" {
					a.TS = cb.Container.MessageTs
				}
				if !ours(a.ID) {
					logger.Warn("slack: ignored a click on a button wscanary does not post", "action_id", truncate(a.ID, 80),
						"user", a.Who())
					continue
				}
				handle(ctx, a)
			}
		case socketmode.EventTypeEventsAPI, socketmode.EventTypeSlashCommand:
			// Not asked for, but Slack retries what is not acknowledged.
			if evt.Request != nil {
				client.AckCtx(ctx, evt.Request.EnvelopeID, nil)
			}
		}
	}
}

func ours(actionID string) bool {
	switch actionID {
	case ActionAck, ActionSilence, ActionRun:
		return true
	}
	return false
}

// Respond tells who clicked, and only them (an ephemeral message through
// the click's response_url), why nothing or what happened: not allowed,
// already running. One attempt; a click without a response_url is
// answered nowhere.
func Respond(ctx context.Context, client *http.Client, a Action, text string) error {
	u, err := url.Parse(a.ResponseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil
	}
	body, _ := json.Marshal(map[string]any{"response_type": "ephemeral", "replace_original": false, "text": esc(text)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("slack response: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("slack response: %w", errors.New("request failed")) // the URL is a credential
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("slack response: %s", resp.Status)
	}
	return nil
}
