package notifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// Error is a failed delivery attempt to Slack. Its text, and the text of every
// error it wraps, never contains the bot token or the webhook URL.
type Error struct {
	// Op is what failed: "chat.postMessage", "chat.update" or "webhook".
	Op string
	// Code is Slack's error code ("invalid_auth", "channel_not_found"), or a
	// webhook's one-word answer ("no_service", "invalid_token"); "" if none.
	Code string
	// HTTPStatus is the status of Slack's answer; 0 when none came back.
	HTTPStatus int
	// RetryAfter is the delay the server asked for (Retry-After), 0 if none.
	RetryAfter time.Duration

	permanent bool
	msg       string // already scrubbed
	err       error  // safe to print: scrubbed or a type without URLs
	// service names the destination in the text; "" is Slack.
	service string
}

func (e *Error) Error() string {
	svc := e.service
	if svc == "" {
		svc = "slack"
	}
	return svc + " " + e.Op + ": " + e.msg
}

// Unwrap returns the cause, with secrets scrubbed from it as well. Context
// errors stay matchable with errors.Is.
func (e *Error) Unwrap() error { return e.err }

// RetryAfter returns the delay a server asked for before the next attempt
// (Retry-After on a 429 or 503), and whether there was one. A delay of zero
// counts as none.
func RetryAfter(err error) (time.Duration, bool) {
	if e, ok := errors.AsType[*Error](err); ok && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	if e, ok := errors.AsType[*slack.RateLimitedError](err); ok && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}

// Permanent reports whether retrying err cannot help: Slack refused the
// request itself (invalid_auth, channel_not_found, invalid_blocks, ...) or
// answered with a 4xx other than 408 and 429. Rate limits, 5xx, transport
// failures, timeouts and cancellations are not permanent.
func Permanent(err error) bool {
	if err == nil {
		return false
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.permanent
	}
	// Raw slack-go errors, for callers that use slack-go directly.
	return classify("", err, nil, nil).permanent
}

// Broken reports whether err says the notifier itself is misconfigured, a
// thing only a person can fix (a revoked token, a channel the bot is not
// in, a webhook URL that is gone): retrying the same message alone cannot
// help, but it will go through once the person has fixed it, so nothing is
// to be dropped. It returns the error's code (or HTTP status) to show.
func Broken(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	e, ok := errors.AsType[*Error](err)
	if !ok {
		e = classify("", err, nil, nil)
	}
	switch {
	case brokenCodes[e.Code]:
		return e.Code, true
	case e.service != "" && (e.HTTPStatus == http.StatusUnauthorized || e.HTTPStatus == http.StatusForbidden ||
		e.HTTPStatus == http.StatusNotFound || e.HTTPStatus == http.StatusProxyAuthRequired):
		return strconv.Itoa(e.HTTPStatus), true
	}
	return "", false
}

// brokenCodes are Slack's answers about the token, the app or the channel,
// not about the message: the notifier is broken until a person acts.
var brokenCodes = map[string]bool{
	"invalid_auth":            true,
	"token_revoked":           true,
	"token_expired":           true,
	"account_inactive":        true,
	"not_authed":              true,
	"missing_scope":           true,
	"no_permission":           true,
	"channel_not_found":       true,
	"not_in_channel":          true,
	"is_archived":             true,
	"ekm_access_denied":       true,
	"team_access_not_granted": true,
	// An incoming webhook's answers (docs.slack.dev, "Handling errors").
	"invalid_token":                     true,
	"no_service":                        true,
	"no_team":                           true,
	"team_disabled":                     true,
	"channel_is_archived":               true,
	"action_prohibited":                 true,
	"posting_to_general_channel_denied": true,
}

// TooLarge reports whether Slack refused the message for its size or its
// blocks (msg_too_long, invalid_blocks): a smaller rendering of the same
// message may pass.
func TooLarge(err error) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && (e.Code == "msg_too_long" || e.Code == "invalid_blocks" || e.Code == "invalid_blocks_format")
}

// transientCodes are Slack error codes that mean "try again later". Every
// other code describes the request, the token or the channel, which a retry
// does not change.
var transientCodes = map[string]bool{
	"ratelimited":            true,
	"rate_limited":           true,
	"internal_error":         true,
	"fatal_error":            true,
	"service_unavailable":    true,
	"request_timeout":        true,
	"message_limit_exceeded": true,
	"team_added_to_org":      true,
}

func permanentStatus(code int) bool {
	return code >= 400 && code < 500 && code != http.StatusTooManyRequests && code != http.StatusRequestTimeout
}

// answer is what the transport saw of Slack's reply to one request. slack-go
// drops the body of a non-200 answer and cannot parse a Retry-After that is
// an HTTP date; the recording transport keeps both for classify.
type answer struct {
	status     int
	retryAfter time.Duration
	body       string // the start of a non-200 body
}

// classify turns one failed call into an *Error. rec may be nil.
func classify(op string, err error, rec *answer, s *scrubber) *Error {
	e := &Error{Op: op}
	if rec != nil {
		e.HTTPStatus = rec.status
		e.RetryAfter = rec.retryAfter
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The caller's deadline, not Slack's verdict.
	case isRateLimited(err):
		rl, _ := errors.AsType[*slack.RateLimitedError](err)
		e.HTTPStatus = http.StatusTooManyRequests
		if rl.RetryAfter > 0 {
			e.RetryAfter = rl.RetryAfter
		}
	case isSlackError(err):
		r, _ := errors.AsType[slack.SlackErrorResponse](err)
		e.Code = r.Err
		e.permanent = !transientCodes[r.Err]
	case isStatusError(err):
		sc, _ := errors.AsType[slack.StatusCodeError](err)
		e.HTTPStatus = sc.Code
		e.permanent = permanentStatus(sc.Code)
		if rec != nil {
			e.Code = answerCode(rec.body)
		}
	case rec != nil && rec.status != 0 && rec.status != http.StatusOK:
		// slack-go failed on the answer itself (a Retry-After it could not
		// parse, say): judge by the status.
		e.permanent = permanentStatus(rec.status)
		e.Code = answerCode(rec.body)
	}
	if e.HTTPStatus == http.StatusTooManyRequests && e.Code == "" {
		e.Code = "rate_limited"
	}
	e.err = s.sanitize(err)
	e.msg = s.scrub(describe(e, err))
	return e
}

func isRateLimited(err error) bool {
	_, ok := errors.AsType[*slack.RateLimitedError](err)
	return ok
}

func isSlackError(err error) bool {
	_, ok := errors.AsType[slack.SlackErrorResponse](err)
	return ok
}

func isStatusError(err error) bool {
	_, ok := errors.AsType[slack.StatusCodeError](err)
	return ok
}

// describe is the message of e, before scrubbing.
func describe(e *Error, err error) string {
	var b strings.Builder
	if ue, ok := errors.AsType[*url.Error](err); ok {
		// slack-go's own wrapping repeats the URL; the op says enough.
		b.WriteString(ue.Op + " request failed: " + ue.Err.Error())
	} else if r, ok := errors.AsType[slack.SlackErrorResponse](err); ok {
		b.WriteString(r.Err)
		for _, m := range r.ResponseMetadata.Messages {
			b.WriteString("; " + m)
		}
		if r.Needed != "" {
			b.WriteString("; needed scope " + r.Needed)
		}
	} else {
		b.WriteString(err.Error())
	}
	if e.Code != "" && !strings.Contains(b.String(), e.Code) {
		b.WriteString(" (" + e.Code + ")")
	}
	if e.RetryAfter > 0 && !isRateLimited(err) {
		b.WriteString(", retry after " + e.RetryAfter.String())
	}
	return b.String()
}

var codeRE = regexp.MustCompile(`^[a-z][a-z0-9_]{1,63}$`)

// answerCode extracts a Slack-style error code ("no_service") from the body
// of a webhook's error answer, "" when the body is something else.
func answerCode(body string) string {
	body = strings.TrimSpace(body)
	if codeRE.MatchString(body) {
		return body
	}
	return ""
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now).Round(time.Second)
	}
	return 0
}

// scrubber removes the notifier's own secrets from error text.
type scrubber struct {
	secrets []string // longest first
}

// slackSecretRE matches Slack tokens and webhook paths that did not come from
// this notifier's configuration (a token inside a URL slack-go printed, say).
var slackSecretRE = regexp.MustCompile(`xox[a-z]-[0-9A-Za-z-]+|xapp-[0-9A-Za-z-]+|/services/T[0-9A-Z]+/B[0-9A-Z]+/[0-9A-Za-z]+|/(?:workflows|triggers)/T[0-9A-Z]+/[0-9A-Za-z/]+`)

func newScrubber(token, webhookURL string) *scrubber {
	s := &scrubber{}
	add := func(v string) {
		if len(v) >= 4 {
			s.secrets = append(s.secrets, v, url.QueryEscape(v), strconv.Quote(v))
		}
	}
	add(webhookURL)
	if u, err := url.Parse(webhookURL); err == nil && u.Path != "" && u.Path != "/" {
		add(u.Path)
		add(u.EscapedPath())
	}
	add(token)
	return s
}

func (s *scrubber) scrub(msg string) string {
	if s != nil {
		for _, v := range s.secrets {
			msg = strings.ReplaceAll(msg, v, "REDACTED")
		}
	}
	return slackSecretRE.ReplaceAllString(msg, "REDACTED")
}

// sanitize returns err if its text is free of secrets, else an error with the
// scrubbed text that still matches context errors with errors.Is.
func (s *scrubber) sanitize(err error) error {
	if err == nil {
		return nil
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return &url.Error{Op: ue.Op, URL: s.scrub(ue.URL), Err: s.sanitize(ue.Err)}
	}
	msg := err.Error()
	if clean := s.scrub(msg); clean != msg {
		return &scrubbedError{msg: clean, canceled: errors.Is(err, context.Canceled), deadline: errors.Is(err, context.DeadlineExceeded)}
	}
	return err
}

type scrubbedError struct {
	msg                string
	canceled, deadline bool
}

func (e *scrubbedError) Error() string { return e.msg }

func (e *scrubbedError) Is(target error) bool {
	return (e.canceled && target == context.Canceled) || (e.deadline && target == context.DeadlineExceeded)
}

// errorf builds a local (non-Slack) error for op; these are permanent: the
// event or the configuration is wrong, and retrying sends the same thing.
func errorf(op, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Op: op, msg: msg, permanent: true, err: errors.New(msg)}
}
