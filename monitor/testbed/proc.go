package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. The
// port is released before FreePort returns, so another process can take it
// before the caller binds it: callers that start external servers on it retry
// on "address already in use".
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testbed: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// FreeAddr is FreePort as "127.0.0.1:PORT".
func FreeAddr() (string, error) {
	p, err := FreePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// WaitListening dials addr (host:port) every 20ms until a TCP connection
// succeeds or timeout passes.
func WaitListening(addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return waitListening(ctx, addr, nil)
}

// waitListening is WaitListening that also gives up when exited is closed
// (the process meant to listen died).
func waitListening(ctx context.Context, addr string, exited <-chan struct{}) error {
	var d net.Dialer
	for {
		attempt, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		c, err := d.DialContext(attempt, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testbed: %s not listening: %w (last: %v)", addr, ctx.Err(), err)
		case <-exited:
			return fmt.Errorf("testbed: process exited before %s was listening", addr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// process is an external server (nginx, tinyproxy) in its own process group,
// watched by a guardian: a tiny sh that blocks reading a pipe whose only
// writer is this Go process and kills the whole group on EOF. When the Go
// process dies for any reason (test timeout panic, SIGKILL), the kernel closes
// the pipe and the guardian reaps nginx's master and its workers, which would
// otherwise be orphaned and keep serving.
type process struct {
	name    string
	cmd     *exec.Cmd
	out     *os.File // stdout+stderr of the process, a file (no copy goroutine)
	guard   *exec.Cmd
	guardW  io.WriteCloser // keep referenced: closing it fires the guardian
	exited  chan struct{}  // closed when cmd has been waited for
	waitErr error          // valid after exited is closed
}

func startProcess(name, outPath string, path string, args ...string) (*process, error) {
	return startProcessAs(name, outPath, nil, path, args...)
}

// startProcessAs is startProcess as another user (cred nil: this one).
func startProcessAs(name, outPath string, cred *syscall.Credential, path string, args ...string) (*process, error) {
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return startCmd(name, outPath, cmd)
}

// startServing starts cmd (startCmd) and waits until addr accepts
// connections, for up to within of the server's start; a process that
// dies or never listens is an error that quotes its log.
func startServing(name, outPath string, cmd *exec.Cmd, addr string, within time.Duration) (*process, error) {
	p, err := startCmd(name, outPath, cmd)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := waitListening(ctx, addr, p.exited); err != nil {
		p.stop(syscall.SIGTERM, 5*time.Second)
		return nil, p.errExited(outPath)
	}
	return p, nil
}

// startCmd starts cmd in a process group of its own, its output appended
// to outPath, under the guardian.
func startCmd(name, outPath string, cmd *exec.Cmd) (*process, error) {
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testbed: %s: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("testbed: start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	p.startGuard()
	return p, nil
}

// startGuard starts the guardian. Without /bin/sh the process still works;
// only the cleanup after an abrupt death of this Go process is lost.
func (p *process) startGuard() {
	sh, err := exec.LookPath("sh")
	if err != nil {
		return
	}
	g := exec.Command(sh, "-c", `read -r _; kill -s KILL -- -"$1"`, "testbed-guard", strconv.Itoa(p.cmd.Process.Pid))
	// Its own group: a terminal's ^C must not kill the guardian before the
	// Go process, or nobody is left to clean up.
	g.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	w, err := g.StdinPipe()
	if err != nil {
		return
	}
	if err := g.Start(); err != nil {
		w.Close()
		return
	}
	p.guard, p.guardW = g, w
}

// stopGuard kills the guardian without letting it fire: once the process
// group is gone its id may be reused.
func (p *process) stopGuard() {
	if p.guard == nil {
		return
	}
	_ = p.guard.Process.Kill()
	_ = p.guard.Wait()
	p.guardW.Close()
	p.guard = nil
}

// stop sends sig to the process, waits up to grace for it to exit, then kills
// its whole process group. It returns once the process has been reaped.
func (p *process) stop(sig syscall.Signal, grace time.Duration) {
	p.stopGuard()
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Signal(sig)
		select {
		case <-p.exited:
		case <-time.After(grace):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.exited
		}
	}
	p.out.Close()
}

// running reports whether the process has not exited yet.
func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// tail returns the last n bytes of a log file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return strings.TrimSpace(string(b))
}

// errExited describes a process that died during start.
func (p *process) errExited(logs ...string) error {
	var parts []string
	for _, l := range logs {
		if t := tail(l, 2048); t != "" {
			parts = append(parts, t)
		}
	}
	msg := fmt.Sprintf("testbed: %s exited", p.name)
	if p.waitErr != nil {
		msg += ": " + p.waitErr.Error()
	}
	if len(parts) > 0 {
		msg += "\n" + strings.Join(parts, "\n")
	}
	return errors.New(msg)
}
