package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// NodeServer is one of the application servers in ./js (Socket.IO,
// graphql-ws: the real npm packages, installed by scripts/test with npm
// ci), run with Node.js on 127.0.0.1.
type NodeServer struct {
	Addr string
	dir  string
	proc *process
}

// JSDir is where the npm servers and their node_modules are.
func JSDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "js")
}

// LookNode finds node and the installed npm packages, or says what is
// missing.
func LookNode() (string, error) {
	bin, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("testbed: node: %w", err)
	}
	if _, err := os.Stat(filepath.Join(JSDir(), "node_modules", ".installed-lock.json")); err != nil {
		return "", fmt.Errorf("testbed: the npm servers are not installed (scripts/test runs npm ci in %s)", JSDir())
	}
	return bin, nil
}

// StartNode runs script (a file in JSDir) with a free port and args, and
// waits until it listens. dir holds its log.
func StartNode(dir, script string, args ...string) (*NodeServer, error) {
	bin, err := LookNode()
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{filepath.Join(JSDir(), script), strconv.Itoa(port)}, args...)...)
	cmd.Dir = JSDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	s := &NodeServer{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir}
	log := filepath.Join(dir, script+".log")
	// The wait bounds a start, however busy the machine.
	if s.proc, err = startServing(script, log, cmd, s.Addr, time.Minute); err != nil {
		return nil, err
	}
	return s, nil
}

// Close stops it.
func (s *NodeServer) Close() { s.proc.stop(syscall.SIGTERM, 5*time.Second) }
