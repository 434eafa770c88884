package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Centrifugo is the real-time messaging server, built from its Go module
// by scripts/test (go install github.com/centrifugal/centrifugo/v6), on
// 127.0.0.1 with HMAC connection tokens signed by Secret.
type Centrifugo struct {
	Addr   string
	Secret string
	proc   *process
}

// LookCentrifugo finds the binary go install put in GOBIN or ~/go/bin.
func LookCentrifugo() (string, error) {
	return lookGoBin("centrifugo", "github.com/centrifugal/centrifugo/v6@v6.9.1")
}

// lookGoBin finds a server scripts/test builds from its Go module (pkg):
// on PATH, in GOBIN or in ~/go/bin.
func lookGoBin(name, pkg string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{os.Getenv("GOBIN"), filepath.Join(os.Getenv("HOME"), "go", "bin")} {
		if p := filepath.Join(dir, name); dir != "" {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("testbed: %s not found (scripts/test runs go install %s)", name, pkg)
}

// StartCentrifugo starts one in dir.
func StartCentrifugo(dir, secret string) (*Centrifugo, error) {
	bin, err := LookCentrifugo()
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "config.json")
	os.WriteFile(conf, []byte(fmt.Sprintf(`{"http_server": {"address": "127.0.0.1", "port": %d},
 "client": {"token": {"hmac_secret_key": %q}, "allowed_origins": ["*"]},
 "log": {"level": "info"}}`, port, secret)), 0o600)
	cmd := exec.Command(bin, "--config", conf)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	c := &Centrifugo{Addr: fmt.Sprintf("127.0.0.1:%d", port), Secret: secret}
	log := filepath.Join(dir, "centrifugo.log")
	// The wait bounds a start, however busy the machine.
	if c.proc, err = startServing("centrifugo", log, cmd, c.Addr, time.Minute); err != nil {
		return nil, err
	}
	return c, nil
}

// Close stops it.
func (c *Centrifugo) Close() { c.proc.stop(syscall.SIGTERM, 5*time.Second) }
