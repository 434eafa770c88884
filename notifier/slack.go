package notifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// SlackOptions configure NewSlack. Set WebhookURL, or Token and Channel.
type SlackOptions struct {
	// WebhookURL is an incoming webhook. Every event is a plain post: no
	// threads, no updates, Event.Channel is ignored (a webhook posts where it
	// was created), and Notify returns an empty Delivery. The URL is a
	// credential: it is kept out of errors and logs like the token.
	WebhookURL string
	// Token is a bot token (xoxb-...) with the chat:write scope. Alerts are
	// posted with chat.postMessage; later events reply in the alert's thread,
	// and a change or recovery also updates the alert with chat.update.
	Token string
	// Channel is the default channel (name or ID) for bot-token mode;
	// Event.Channel overrides it. Required with Token.
	Channel string
	// APIURL is the Web API base. Default https://slack.com/api/; a missing
	// trailing slash is added.
	APIURL string
	// HTTPClient sends the requests. Default: a client with a 30 s timeout.
	// It is copied and its Transport wrapped, never modified.
	HTTPClient *http.Client
	// Logger receives debug records of deliveries and warnings of partial
	// ones. Default: discard. The token and webhook URL never reach it.
	Logger *slog.Logger
	// Buttons puts Acknowledge, Silence 1h and Run again on the message of
	// an open incident: set when someone listens for the clicks (an app
	// token and Socket Mode). Bot-token mode only.
	Buttons bool
}

// Slack posts events to Slack with one attempt per Notify. It is safe for
// concurrent use.
type Slack struct {
	api     *slack.Client // nil in webhook mode
	webhook string
	channel string
	client  *http.Client
	log     *slog.Logger
	scrub   *scrubber
	buttons bool
}

var (
	_ Notifier = (*Slack)(nil)
	_ Notifier = (*Console)(nil)
)

// DefaultTimeout bounds one Slack request when SlackOptions.HTTPClient is nil.
const DefaultTimeout = 30 * time.Second

// NewSlack returns a Slack notifier. Its errors never quote the token or the
// webhook URL.
func NewSlack(opts SlackOptions) (*Slack, error) {
	switch {
	case opts.WebhookURL != "" && opts.Token != "":
		return nil, errors.New("slack: set either a webhook URL or a bot token, not both")
	case opts.WebhookURL == "" && opts.Token == "":
		return nil, errors.New("slack: a webhook URL or a bot token is required")
	case opts.Token != "" && opts.Channel == "":
		return nil, errors.New("slack: a bot token needs a channel")
	}
	if opts.WebhookURL != "" {
		u, err := url.Parse(opts.WebhookURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, errors.New("slack: the webhook URL is not an http(s) URL")
		}
	}
	apiURL := opts.APIURL
	if apiURL == "" {
		apiURL = slack.APIURL
	}
	if u, err := url.Parse(apiURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("slack: the API URL is not an http(s) URL")
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}

	client := &http.Client{Timeout: DefaultTimeout}
	if opts.HTTPClient != nil {
		c := *opts.HTTPClient
		client = &c
	}
	client.Transport = &recordingTransport{base: client.Transport}

	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Slack{
		webhook: opts.WebhookURL,
		channel: opts.Channel,
		client:  client,
		log:     logger,
		scrub:   newScrubber(opts.Token, opts.WebhookURL),
		buttons: opts.Buttons && opts.Token != "",
	}
	if opts.Token != "" {
		s.api = slack.New(opts.Token,
			slack.OptionHTTPClient(client),
			slack.OptionAPIURL(apiURL),
			slack.OptionLog(log.New(io.Discard, "", 0)),
		)
	}
	return s, nil
}

// Notify delivers m with one attempt.
//
// Bot-token mode: an open posts the incident's message and returns where it
// landed; an update replaces that message with chat.update (an update Slack
// refuses for good, because the message was deleted say, is logged and
// counts as done: there is nothing left to update); a reply posts in the
// message's thread; a notice is a message of its own.
//
// Webhook mode: nothing can be updated or threaded, so an incident is one
// post when it opens and one when it resolves (or fails again); updates and
// other replies are dropped as delivered. The Delivery is empty.
//
// Slack has no idempotency key: when a post went through but its answer was
// lost (a timeout), retrying the message posts it again. Errors are *Error;
// classify them with RetryAfter and Permanent.
func (s *Slack) Notify(ctx context.Context, m Message) (Delivery, error) {
	if !slices.Contains(Kinds, m.Kind) {
		return Delivery{}, errorf("notify", "unknown message kind %q", m.Kind)
	}
	if (m.Kind == KindNotice) != (m.Notice != nil) || (m.Kind != KindNotice && m.Incident == nil) {
		return Delivery{}, errorf("notify", "a %s message without its content", m.Kind)
	}
	d, err := s.notify(ctx, m)
	// Slack refused the message for its size or its blocks: say less (fewer
	// rows, shorter quotes, then the headline alone) rather than nothing.
	for level := 1; level <= maxShrink && TooLarge(err); level++ {
		s.log.WarnContext(ctx, "slack: the message was refused for its size; sending a shorter one", "message", m.ID, "level", level, "error", err.Error())
		d, err = s.notify(ctx, Shrink(m, level))
	}
	return d, err
}

func (s *Slack) notify(ctx context.Context, m Message) (Delivery, error) {
	blocks, text := s.render(m)
	if s.api == nil {
		if m.Kind == KindUpdate || (m.Kind == KindReply && !m.Resolves() && !m.tells(EventReopened)) {
			return Delivery{}, nil
		}
		return Delivery{}, s.postWebhook(ctx, m, blocks, text)
	}
	channel := m.Channel
	if channel == "" {
		channel = s.channel
	}
	root, threaded := m.thread()
	if root.Channel == "" {
		root.Channel = channel
	}
	switch m.Kind {
	case KindUpdate:
		if !threaded {
			return Delivery{}, nil
		}
		if err := s.update(ctx, root, m, blocks, text); err != nil {
			if _, broken := Broken(err); !Permanent(err) || broken || TooLarge(err) {
				return Delivery{}, err
			}
			s.log.WarnContext(ctx, "slack: the incident message cannot be updated; going on without it",
				"message", m.ID, "channel", root.Channel, "ts", root.TS, "error", err.Error())
		}
		return root, nil
	case KindReply:
		if threaded {
			return s.post(ctx, root.Channel, root.TS, m, blocks, text)
		}
	}
	return s.post(ctx, channel, "", m, blocks, text)
}

// GroupMembers lists the user ids of a Slack user group (usergroups:read),
// for slack.allowed_groups.
func (s *Slack) GroupMembers(ctx context.Context, group string) ([]string, error) {
	if s.api == nil {
		return nil, errorf("usergroups.users.list", "a webhook cannot list a user group")
	}
	ctx, rec := withAnswer(ctx)
	ids, err := s.api.GetUserGroupMembersContext(ctx, group)
	if err != nil {
		return nil, classify("usergroups.users.list", err, rec, s.scrub)
	}
	return ids, nil
}

// render is the message's blocks and plain-text fallback.
func (s *Slack) render(m Message) ([]slack.Block, string) {
	switch m.Kind {
	case KindNotice:
		return NoticeBlocks(*m.Notice), Text(m)
	case KindReply:
		return ReplyBlocks(m), Text(m)
	}
	inc := *m.Incident
	if inc.InGroup != nil {
		// A member's message points at its group's, where the buttons are.
		return Blocks(inc), "IN GROUP  " + inc.Check + ": " + pointerLine(inc)
	}
	head := "FAILING  "
	if inc.State == StateResolved {
		head = "RESOLVED  "
	}
	blocks := Blocks(inc)
	if s.buttons && inc.State != StateResolved {
		blocks = append(blocks, ActionsBlock(inc))
	}
	return blocks, head + Headline(inc)
}

// post sends blocks with chat.postMessage, in the thread threadTS if set.
func (s *Slack) post(ctx context.Context, channel, threadTS string, m Message, blocks []slack.Block, text string) (Delivery, error) {
	const op = "chat.postMessage"
	opts := s.messageOptions(blocks, text)
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	ctx, rec := withAnswer(ctx)
	ch, ts, err := s.api.PostMessageContext(ctx, channel, opts...)
	if err != nil {
		return Delivery{}, s.fail(ctx, op, m, err, rec)
	}
	if ch == "" {
		ch = channel
	}
	d := Delivery{Channel: ch, TS: ts}
	s.log.DebugContext(ctx, "slack: message posted", "message", m.ID, "kind", m.Kind, "channel", d.Channel, "ts", d.TS, "thread_ts", threadTS)
	return d, nil
}

// update replaces the incident message at root with blocks.
func (s *Slack) update(ctx context.Context, root Delivery, m Message, blocks []slack.Block, text string) error {
	const op = "chat.update"
	ctx, rec := withAnswer(ctx)
	if _, _, _, err := s.api.UpdateMessageContext(ctx, root.Channel, root.TS, s.messageOptions(blocks, text)...); err != nil {
		return s.fail(ctx, op, m, err, rec)
	}
	s.log.DebugContext(ctx, "slack: incident message updated", "message", m.ID, "channel", root.Channel, "ts", root.TS)
	return nil
}

func (s *Slack) postWebhook(ctx context.Context, m Message, blocks []slack.Block, text string) error {
	const op = "webhook"
	no := false
	msg := &slack.WebhookMessage{
		Text:        mrkdwnEscaper.Replace(s.scrub.scrub(truncate(text, maxTextChars))),
		Blocks:      &slack.Blocks{BlockSet: s.redact(blocks)},
		UnfurlLinks: &no,
		UnfurlMedia: &no,
	}
	ctx, rec := withAnswer(ctx)
	if err := slack.PostWebhookCustomHTTPContext(ctx, s.webhook, s.client, msg); err != nil {
		return s.fail(ctx, op, m, err, rec)
	}
	s.log.DebugContext(ctx, "slack: webhook posted", "message", m.ID, "kind", m.Kind)
	return nil
}

func (s *Slack) fail(ctx context.Context, op string, m Message, err error, rec *answer) error {
	e := classify(op, err, rec, s.scrub)
	s.log.DebugContext(ctx, "slack: request failed", "op", op, "message", m.ID, "kind", m.Kind,
		"status", e.HTTPStatus, "code", e.Code, "permanent", e.permanent, "retry_after", e.RetryAfter, "error", e.Error())
	return e
}

// messageOptions are the chat.postMessage / chat.update options shared by
// every message: blocks, the escaped plain-text fallback, no unfurling (the
// trace link would otherwise grow a preview).
func (s *Slack) messageOptions(blocks []slack.Block, text string) []slack.MsgOption {
	return []slack.MsgOption{
		slack.MsgOptionText(fallbackEscaper.Replace(s.scrub.scrub(truncate(text, maxTextChars))), true),
		slack.MsgOptionBlocks(s.redact(blocks)...),
		slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionDisableMediaUnfurl(),
	}
}

// redact is the last line of defence for message content. Events arrive
// redacted, but should one still carry a Slack token or this notifier's
// webhook URL (a server echoing it in a body, say), it is replaced before the
// message leaves.
func (s *Slack) redact(blocks []slack.Block) []slack.Block {
	raw, err := json.Marshal(blocks)
	if err != nil {
		return blocks
	}
	clean := s.scrub.scrub(string(raw))
	if clean == string(raw) {
		return blocks
	}
	var bs slack.Blocks
	if err := json.Unmarshal([]byte(clean), &bs); err != nil {
		return []slack.Block{section("The message was withheld: it contained a secret.")}
	}
	return bs.BlockSet
}

// ---- what the transport saw ----

type answerKey struct{}

func withAnswer(ctx context.Context) (context.Context, *answer) {
	rec := &answer{}
	return context.WithValue(ctx, answerKey{}, rec), rec
}

// recordingTransport notes the status, Retry-After and the start of a
// non-200 body of each answer in the request's *answer, if it has one.
type recordingTransport struct {
	base http.RoundTripper
}

const answerBodyLimit = 256

func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	rec, _ := req.Context().Value(answerKey{}).(*answer)
	if err != nil || rec == nil {
		return resp, err
	}
	rec.status = resp.StatusCode
	rec.retryAfter = 0
	rec.body = ""
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		rec.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	if resp.StatusCode != http.StatusOK && resp.Body != nil {
		head, _ := io.ReadAll(io.LimitReader(resp.Body, answerBodyLimit))
		rec.body = string(head)
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// wrapped transport.
func (t *recordingTransport) CloseIdleConnections() {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	if c, ok := base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
