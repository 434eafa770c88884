package monitor_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when goroutines outlive the tests: a daemon that
// was stopped must leave no scheduler, delivery loop, run or connection
// behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
