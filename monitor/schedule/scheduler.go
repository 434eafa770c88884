// Package schedule fires the daemon's checks on time: one timer over a heap
// of next fire times (Plan) and a bounded pool of workers that run them.
// robfig/cron stays the parser and the meaning of a schedule
// (cron.Schedule.Next); its runner, which sorts every entry at every
// wake-up and starts a goroutine per fire, is not used. See
// docs/architecture.md, "Scheduling".
package schedule

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// HeartbeatEvery is the longest the loop sleeps: it calls Options.Beat at
// least this often, so a daemon whose checks all run hourly still proves
// it is alive (/healthz, the watchdog).
const HeartbeatEvery = time.Second

// Options are a Scheduler's dependencies.
type Options struct {
	// Workers bounds the runs in progress; fires wait in a queue for a
	// worker (late, and measured as late) rather than pile up goroutines.
	Workers int
	// Run runs one fire on a worker.
	Run func(Fire)
	// Skipped is told, on the loop, of a fire dropped because the entry's
	// previous run was still in progress.
	Skipped func(Fire)
	// Beat is called at every wake-up of the loop, at least every
	// HeartbeatEvery, with the time.
	Beat func(time.Time)
	// Panicked is told of a run that panicked; the worker goes on.
	Panicked func(key string, v any)
}

// Scheduler owns the plan and the loop that fires it.
type Scheduler struct {
	opts Options

	mu      sync.Mutex
	plan    *Plan
	stopped bool

	wake    chan struct{} // the plan changed: look at its head again
	quit    chan struct{}
	work    chan Fire
	loop    sync.WaitGroup
	workers sync.WaitGroup
	idle    chan struct{} // closed once every worker ended (after Stop)
}

// New is a Scheduler with an empty plan; Start starts it.
func New(opts Options) *Scheduler {
	if opts.Workers <= 0 {
		opts.Workers = 1
	}
	if opts.Beat == nil {
		opts.Beat = func(time.Time) {}
	}
	return &Scheduler{opts: opts, plan: NewPlan(), wake: make(chan struct{}, 1), quit: make(chan struct{}), idle: make(chan struct{}),
		// A queue of a few fires per worker: deep enough that a burst due
		// in the same millisecond does not stall the loop, short enough
		// that a stop drops little.
		work: make(chan Fire, 4*opts.Workers)}
}

// Sync makes the plan hold exactly want (see Plan.Sync); entries that did
// not change keep their next fire time.
func (s *Scheduler) Sync(want []Entry) Diff {
	s.mu.Lock()
	d := s.plan.Sync(want, time.Now())
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return d
}

// NextOf is key's next fire time (zero: never or unknown).
func (s *Scheduler) NextOf(key string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.plan.NextOf(key)
}

// Begin starts a run of key outside its schedule, unless one is in
// progress: false then. The caller calls Done when it ends.
func (s *Scheduler) Begin(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.plan.Begin(key)
}

// Done ends a run that Begin started.
func (s *Scheduler) Done(key string) {
	s.mu.Lock()
	s.plan.Done(key)
	s.mu.Unlock()
}

// Start starts the loop and the workers.
func (s *Scheduler) Start() {
	for range s.opts.Workers {
		s.workers.Add(1)
		go s.worker()
	}
	s.loop.Add(1)
	go s.run()
}

// Stop stops firing: fires queued and not yet started are dropped. Runs in
// progress go on; Wait waits for them.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	s.mu.Unlock()
	close(s.quit)
	s.loop.Wait()
	close(s.work) // the loop was its only sender
	// One goroutine closes idle, however many Waits give up before it.
	go func() { s.workers.Wait(); close(s.idle) }()
}

// Wait reports whether every worker ended (after Stop) before ctx did.
func (s *Scheduler) Wait(ctx context.Context) bool {
	select {
	case <-s.idle:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Scheduler) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

func (s *Scheduler) worker() {
	defer s.workers.Done()
	for f := range s.work {
		if !s.isStopped() { // else dropped: the daemon is stopping
			s.runOne(f)
		}
		s.Done(f.Key)
	}
}

func (s *Scheduler) runOne(f Fire) {
	defer func() {
		if v := recover(); v != nil && s.opts.Panicked != nil {
			s.opts.Panicked(f.Key, v)
		} else if v != nil {
			panic(fmt.Sprintf("schedule: run of %s: %v", f.Key, v))
		}
	}()
	s.opts.Run(f)
}

// dropFrom ends the running mark of the fires from due[i] on, which a stop
// keeps from reaching a worker.
func (s *Scheduler) dropFrom(i int, due []Fire) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range due[i:] {
		if !g.Skipped {
			s.plan.Done(g.Key)
		}
	}
}

// run is the loop: sleep until the plan's head is due (or a heartbeat, or
// a change of the plan), take what is due, hand it to the workers.
func (s *Scheduler) run() {
	defer s.loop.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var due []Fire
	for {
		select {
		case <-s.quit:
			return
		case <-s.wake:
		case <-timer.C:
		}
		now := time.Now()
		s.opts.Beat(now)
		s.mu.Lock()
		due = s.plan.Due(now, due[:0])
		next, ok := s.plan.Next()
		s.mu.Unlock()
		for i, f := range due {
			if f.Skipped {
				if s.opts.Skipped != nil {
					s.opts.Skipped(f)
				}
				continue
			}
			select {
			case s.work <- f:
			case <-s.quit:
				s.dropFrom(i, due)
				return
			}
		}
		sleep := HeartbeatEvery
		if ok {
			sleep = min(sleep, time.Until(next))
		}
		timer.Reset(max(sleep, 0))
	}
}
