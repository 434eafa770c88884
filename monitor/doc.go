// Package monitor is the daemon of `wscanary run`: it wires the engine,
// delivery, the fleet, the web listener and the buttons, schedules the
// checks' runs and owns the lifecycle (docs/architecture.md).
package monitor
