package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// MinInterval is the shortest interval a schedule may have. cron/v3 would
// silently run "@every 1ns" every second and "@every 1500ms" every second
// too; a monitor should run at the pace that is written or refuse.
const MinInterval = time.Second

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ErrNeverFires is returned for a schedule that no date matches.
var ErrNeverFires = errors.New("never fires: no date in the next five years matches it")

// SyntaxError is a schedule that cron cannot parse at all.
type SyntaxError struct{ Err error }

func (e SyntaxError) Error() string { return e.Err.Error() }
func (e SyntaxError) Unwrap() error { return e.Err }

// ParseSchedule parses a check's schedule: five cron fields or a
// descriptor ("@hourly", "@every 30s"). It refuses what would run at
// another pace than written and what never fires ("0 0 30 2 *"), judged
// from now.
func ParseSchedule(spec string, now time.Time) (cron.Schedule, error) {
	sched, err := parseCron(spec)
	if err != nil {
		return nil, SyntaxError{err}
	}
	if every, ok := strings.CutPrefix(strings.TrimSpace(spec), "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(every))
		switch {
		case err != nil:
			return nil, SyntaxError{err}
		case d < MinInterval:
			return nil, fmt.Errorf("the interval must be at least %s", MinInterval)
		case d%time.Second != 0:
			return nil, errors.New("the interval must be a whole number of seconds")
		}
		return sched, nil
	}
	if sched.Next(now).IsZero() {
		return nil, ErrNeverFires
	}
	return sched, nil
}

// parseCron is cron/v3's parser without its panics (an empty "TZ=" slices
// out of range).
func parseCron(spec string) (s cron.Schedule, err error) {
	defer func() {
		if recover() != nil {
			s, err = nil, errors.New("not a valid schedule")
		}
	}()
	return cronParser.Parse(spec)
}
