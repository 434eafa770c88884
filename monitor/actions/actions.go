// Package actions carries out the clicks on an incident message's buttons
// (Acknowledge, Silence 1h, Run again), after checking where a click came
// from and who made it. A decision it causes is the engine's.
package actions

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/engine"
	"github.com/wscanary/wscanary/monitor/incident"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/notifier"
)

// silenceFromSlack is how long the Silence button silences a check.
const silenceFromSlack = time.Hour

// runAgainCooldown is the least time between two runs of a check asked for
// from Slack: forty clicks are one run, not forty handshakes.
const runAgainCooldown = 10 * time.Second

// groupsFresh is how long a user group's members are taken as read.
const groupsFresh = 5 * time.Minute

// Options are what a click acts on.
type Options struct {
	Store  *store.Store
	Engine *engine.Engine
	// Config is the configuration in force.
	Config func() *config.Config
	// Primary is the primary notifier in force: it lists Slack's user
	// groups.
	Primary func() notifier.Notifier
	// Run starts a run of c at once unless one of its runs is in flight
	// (the scheduler's overlap guard); false when one is.
	Run    func(c *config.Check) bool
	Logger *slog.Logger
	Now    func() time.Time
}

// Handler is what Act keeps between clicks: the last Run again of each
// check and the members of the allowed user groups.
type Handler struct {
	opts    Options
	log     *slog.Logger
	mu      sync.Mutex
	lastRun map[string]time.Time
	groups  map[string][]string // group -> user ids
	read    time.Time
}

// New is a handler of clicks.
func New(opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{opts: opts, log: opts.Logger, lastRun: map[string]time.Time{}}
}

func (h *Handler) now() time.Time {
	if h.opts.Now != nil {
		return h.opts.Now()
	}
	return time.Now()
}

// runAgain starts a run of c at once (Run again), bounded like a scheduled
// run: never while one of the check's runs is in flight, and at most once
// per runAgainCooldown. It says how long the cooldown still holds when it
// does not start one (0: one is running).
func (h *Handler) runAgain(c *config.Check) (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	if left := runAgainCooldown - now.Sub(h.lastRun[c.Name]); left > 0 {
		return left, false
	}
	if !h.opts.Run(c) {
		return 0, false
	}
	h.lastRun[c.Name] = now
	return 0, true
}

// groupLister lists a Slack user group (notifier.Slack does).
type groupLister interface {
	GroupMembers(ctx context.Context, group string) ([]string, error)
}

// groupsOf are the allowed groups user is in, read from Slack at most
// every groupsFresh.
func (h *Handler) groupsOf(ctx context.Context, allowed []string, user string) []string {
	lister, ok := h.opts.Primary().(groupLister)
	if len(allowed) == 0 || !ok {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.groups == nil || h.now().Sub(h.read) > groupsFresh {
		h.groups = map[string][]string{}
		for _, g := range allowed {
			ids, err := lister.GroupMembers(ctx, g)
			if err != nil {
				h.log.Warn("slack: cannot read a user group of allowed_groups; its members' clicks are refused", "group", g, "err", err)
				continue
			}
			h.groups[g] = ids
		}
		h.read = h.now()
	}
	var out []string
	for g, ids := range h.groups {
		if slices.Contains(ids, user) {
			out = append(out, g)
		}
	}
	return out
}

// respond tells who clicked why nothing happened, or what will.
func (h *Handler) respond(ctx context.Context, a notifier.Action, text string) {
	if err := notifier.Respond(ctx, &http.Client{Timeout: 10 * time.Second}, a, text); err != nil {
		h.log.Warn("slack: could not answer a click", "err", err)
	}
}

// Act carries out a click on an incident message's button: Acknowledge
// stops the reminders and says who is on it, Silence 1h stores a silence
// (every member of a fleet honours it), Run again runs the check at once.
// Each ends in an update of the message. A click on an incident or check
// this daemon does not know changes nothing and is logged: Slack delivers
// a click to any one member, and buttons can outlive their check.
func (h *Handler) Act(ctx context.Context, a notifier.Action) {
	ctx, cancel := context.WithTimeout(ctx, engine.StoreTimeout)
	defer cancel()
	log := h.log.With("action", a.ID, "incident", truncate(a.IncidentID, 120), "user", a.Who())
	// A click comes from outside: whatever goes wrong with it must not
	// take the monitor down.
	defer func() {
		if r := recover(); r != nil {
			log.Error("slack action failed unexpectedly and was not carried out to the end", "panic", fmt.Sprint(r))
		}
	}()
	rec, err := h.opts.Store.IncidentByID(ctx, a.IncidentID)
	if err != nil {
		log.Error("slack action not carried out: the store cannot be read", "err", err)
		return
	}
	if rec == nil {
		log.Warn("slack action ignored: no such incident")
		return
	}
	// The click must come from the incident's own message: a payload that
	// names an incident from another message (another channel, a forged
	// value) changes nothing.
	if !rec.Posted || rec.Root.TS == "" || a.Channel != rec.Root.Channel || a.TS != rec.Root.TS {
		log.Warn("slack action ignored: the click did not come from the incident's message",
			"channel", truncate(a.Channel, 40), "ts", truncate(a.TS, 40), "message_channel", rec.Root.Channel, "message_ts", rec.Root.TS)
		return
	}
	cfg := h.opts.Config()
	c := cfg.Check(rec.Decision.Check)
	if !cfg.Slack.Allows(a.User, a.UserName, h.groupsOf(ctx, cfg.Slack.AllowedGroups, a.User)) {
		log.Warn("slack action refused: the user is not in slack.allowed_users or allowed_groups")
		h.respond(ctx, a, "You are not allowed to act on wscanary's incidents (slack.allowed_users / allowed_groups).")
		return
	}
	if rec.View.Group != nil {
		h.actGroup(ctx, a, rec, log)
		return
	}
	if c == nil {
		log.Warn("slack action ignored: the check is no longer configured", "check", rec.Decision.Check)
		return
	}
	log = log.With("check", c.Name)
	now := h.now()
	switch a.ID {
	case notifier.ActionAck:
		err = h.opts.Engine.Refresh(ctx, c, func(ctx context.Context, tx *store.Tx, cur *store.Record) (bool, error) {
			if cur.Decision.Acked != nil {
				return false, nil
			}
			inc := cur.Decision
			inc.Acked = &incident.Ack{By: a.Who(), At: now}
			return true, tx.PutIncident(ctx, inc, cur.View, now)
		}, a.IncidentID)
	case notifier.ActionSilence:
		var sl store.Silence
		sl, err = h.opts.Store.AddSilence(ctx, store.Silence{Check: c.Name, Starts: now, Ends: now.Add(silenceFromSlack),
			Reason: "from Slack", By: a.Who(), Created: now})
		if err == nil {
			log = log.With("silence", sl.ID)
			err = h.opts.Engine.Refresh(ctx, c, nil, a.IncidentID)
		}
	case notifier.ActionRun:
		if wait, ok := h.runAgain(c); !ok {
			if wait > 0 {
				h.respond(ctx, a, fmt.Sprintf("%s ran a moment ago; Run again works again in %ds.", c.Name, int(wait.Seconds()+0.999)))
			} else {
				h.respond(ctx, a, c.Name+" is already running; its result will update the message.")
			}
			log.Info("slack action coalesced: the check is running or ran a moment ago")
			return
		}
	}
	if err != nil {
		log.Error("slack action not carried out", "err", err)
		h.opts.Engine.StoreFails("action", err)
		return
	}
	log.Info("slack action carried out")
}

// actGroup carries out a click on a group's message for every member
// still failing: Acknowledge stops their reminders and says who is on it,
// Silence 1h silences each member's check, Run again runs each of them
// (each bounded like a click on its own message).
func (h *Handler) actGroup(ctx context.Context, a notifier.Action, rec *store.Record, log *slog.Logger) {
	cfg := h.opts.Config()
	now := h.now()
	gid := rec.Decision.ID
	log = log.With("group", gid)
	var members []store.GroupMember
	err := h.opts.Store.Update(ctx, func(tx *store.Tx) error {
		var err error
		members, err = tx.GroupMembers(ctx, gid)
		return err
	})
	if err != nil {
		log.Error("slack action not carried out: the store cannot be read", "err", err)
		return
	}
	members = slices.DeleteFunc(members, func(m store.GroupMember) bool { return !m.Open || cfg.Check(m.Check) == nil })
	switch a.ID {
	case notifier.ActionAck:
		err = h.opts.Engine.RefreshGroup(ctx, gid, func(ctx context.Context, tx *store.Tx, cur *store.Record) (bool, error) {
			if cur.Decision.Acked != nil {
				return false, nil
			}
			ack := &incident.Ack{By: a.Who(), At: now}
			g := cur.Decision
			g.Acked = ack
			if err := tx.PutIncident(ctx, g, cur.View, now); err != nil {
				return false, err
			}
			for _, m := range members {
				r, err := tx.IncidentByID(ctx, m.Incident)
				if err != nil {
					return false, err
				}
				if r == nil || r.Decision.State != incident.Open || r.Decision.Acked != nil {
					continue
				}
				inc := r.Decision
				inc.Acked = ack
				if err := tx.PutIncident(ctx, inc, r.View, now); err != nil {
					return false, err
				}
			}
			return true, nil
		})
	case notifier.ActionSilence:
		for _, m := range members {
			if _, err = h.opts.Store.AddSilence(ctx, store.Silence{Check: m.Check, Starts: now, Ends: now.Add(silenceFromSlack),
				Reason: "from Slack, on group " + gid, By: a.Who(), Created: now}); err != nil {
				break
			}
		}
		if err == nil {
			note := fmt.Sprintf("%d checks silenced until %s by %s (from Slack): their incidents stay open and open no more.",
				len(members), now.Add(silenceFromSlack).UTC().Format("15:04 UTC"), a.Who())
			err = h.opts.Engine.RefreshGroup(ctx, gid, func(ctx context.Context, tx *store.Tx, cur *store.Record) (bool, error) {
				v := cur.View
				v.Notes = append(slices.Clone(v.Notes), note)
				return true, tx.PutIncident(ctx, cur.Decision, v, now)
			})
		}
	case notifier.ActionRun:
		started := 0
		for _, m := range members {
			if _, ok := h.runAgain(cfg.Check(m.Check)); ok {
				started++
			}
		}
		h.respond(ctx, a, fmt.Sprintf("Running %d of the group's %d failing checks again; the others ran a moment ago or are running.", started, len(members)))
		log = log.With("runs", started)
	}
	if err != nil {
		log.Error("slack action not carried out", "err", err)
		h.opts.Engine.StoreFails("action", err)
		return
	}
	log.Info("slack action carried out", "members", len(members))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
