package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// ActionCable is Debian's ruby-actioncable under puma, serving
// ruby/cable.ru: a connection admitted with ?token=TOKEN, and a
// ChatChannel that rejects every room but "lobby".
type ActionCable struct {
	Addr string
	proc *process
}

// LookActionCable finds puma and Action Cable.
func LookActionCable() error {
	if _, err := exec.LookPath("puma"); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	if out, err := exec.Command("ruby", "-e", `require "action_cable"`).CombinedOutput(); err != nil {
		return fmt.Errorf("testbed: ruby cannot load action_cable: %v %s", err, out)
	}
	return nil
}

// StartActionCable starts it in dir.
func StartActionCable(dir, token string) (*ActionCable, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	_, file, _, _ := runtime.Caller(0)
	ru := filepath.Join(filepath.Dir(file), "ruby", "cable.ru")
	cmd := exec.Command("puma", "-b", fmt.Sprintf("tcp://127.0.0.1:%d", port), "--environment", "production", ru)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CABLE_TOKEN="+token)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	a := &ActionCable{Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	log := filepath.Join(dir, "puma.log")
	// The wait bounds a start, however busy the machine.
	if a.proc, err = startServing("puma", log, cmd, a.Addr, time.Minute); err != nil {
		return nil, err
	}
	return a, nil
}

// Close stops it.
func (a *ActionCable) Close() { a.proc.stop(syscall.SIGTERM, 5*time.Second) }
