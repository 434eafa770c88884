package main

import (
	"errors"
	"net"
	"strconv"
)

func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", 0, errors.New("port must be a number from 1 to 65535")
	}
	if host == "" {
		return "", 0, errors.New("host is empty")
	}
	return host, p, nil
}
