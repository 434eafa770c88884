package monitor

// deliverDue delivers what is due now and waits for it: the simulated
// tests step delivery with their clock.
func (d *Daemon) deliverDue() { d.delivery.Drain() }
