package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// RabbitMQ is Debian's rabbitmq-server, a node of its own in a
// directory, with the rabbitmq_web_stomp plugin: STOMP over WebSocket at
// ws://WSAddr/ws. Every listener is on 127.0.0.1; its users are RabbitMQ's
// default guest/guest (admitted from the loopback only).
type RabbitMQ struct {
	WSAddr string
	proc   *process
}

const rabbitmqServer = "/usr/lib/rabbitmq/bin/rabbitmq-server"

// LookRabbitMQ finds the server.
func LookRabbitMQ() error {
	if _, err := os.Stat(rabbitmqServer); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	return nil
}

// StartRabbitMQ starts a node in dir and waits for its web-stomp listener.
func StartRabbitMQ(dir string) (*RabbitMQ, error) {
	if err := LookRabbitMQ(); err != nil {
		return nil, err
	}
	var ports [4]int
	for i := range ports {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	amqp, dist, ws, stomp := ports[0], ports[1], ports[2], ports[3]
	os.WriteFile(filepath.Join(dir, "enabled_plugins"), []byte("[rabbitmq_web_stomp].\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "rabbitmq.conf"), []byte(fmt.Sprintf(
		"listeners.tcp.default = 127.0.0.1:%d\nweb_stomp.tcp.ip = 127.0.0.1\nweb_stomp.tcp.port = %d\nstomp.listeners.tcp.1 = 127.0.0.1:%d\n",
		amqp, ws, stomp)), 0o600)
	cmd := exec.Command(rabbitmqServer)
	cmd.Env = append(os.Environ(), "HOME="+dir, fmt.Sprintf("RABBITMQ_NODENAME=wscanary%d@localhost", amqp),
		fmt.Sprintf("RABBITMQ_DIST_PORT=%d", dist), "RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"), "RABBITMQ_LOGS=-",
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq"), "RABBITMQ_PID_FILE="+filepath.Join(dir, "pid"),
		"ERL_EPMD_ADDRESS=127.0.0.1", "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}")
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	r := &RabbitMQ{WSAddr: fmt.Sprintf("127.0.0.1:%d", ws)}
	log := filepath.Join(dir, "rabbitmq.log")
	var err error
	// Erlang and the plugins take seconds; a busy machine, more.
	if r.proc, err = startServing("rabbitmq", log, cmd, r.WSAddr, 3*time.Minute); err != nil {
		return nil, err
	}
	return r, nil
}

// Close stops the node.
func (r *RabbitMQ) Close() { r.proc.stop(syscall.SIGTERM, 15*time.Second) }
