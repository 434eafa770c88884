package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Mosquitto is Debian's MQTT broker with a WebSocket listener and a
// password file, allow_anonymous false. Mosquitto 2.0 binds its
// WebSocket listener through libwebsockets, to an interface and not an
// address (so: lo), and starts it only beside a plain MQTT listener
// (eclipse-mosquitto/mosquitto#2284), here on 127.0.0.1.
type Mosquitto struct {
	// WSAddr is the WebSocket listener's 127.0.0.1:port.
	WSAddr string
	dir    string
	proc   *process
}

// LookMosquitto finds the broker and its password tool.
func LookMosquitto() error {
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/bin/mosquitto_passwd"} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("testbed: %w", err)
		}
	}
	return nil
}

// StartMosquitto starts one in dir whose users are user -> password.
func StartMosquitto(dir string, users map[string]string) (*Mosquitto, error) {
	if err := LookMosquitto(); err != nil {
		return nil, err
	}
	pw := filepath.Join(dir, "passwd")
	for u, p := range users {
		args := []string{"-b", pw, u, p}
		if _, err := os.Stat(pw); err != nil {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command("/usr/bin/mosquitto_passwd", args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("testbed: mosquitto_passwd: %v: %s", err, out)
		}
	}
	mqttPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	wsPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`user root
allow_anonymous false
password_file %s
listener %d 127.0.0.1
listener %d
bind_interface lo
protocol websockets
`, pw, mqttPort, wsPort)), 0o600)
	cmd := exec.Command("/usr/sbin/mosquitto", "-c", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	m := &Mosquitto{WSAddr: fmt.Sprintf("127.0.0.1:%d", wsPort), dir: dir}
	log := filepath.Join(dir, "mosquitto.log")
	// The wait bounds a start, however busy the machine.
	if m.proc, err = startServing("mosquitto", log, cmd, m.WSAddr, time.Minute); err != nil {
		return nil, err
	}
	return m, nil
}

// Close stops it.
func (m *Mosquitto) Close() { m.proc.stop(syscall.SIGTERM, 5*time.Second) }
