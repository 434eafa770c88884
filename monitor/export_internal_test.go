package monitor

// deliverDue runs every sender until nothing more is due now and waits for
// what it started: the simulated tests step delivery with their clock.
func (d *Daemon) deliverDue() {
	for {
		started := false
		for _, s := range d.senders {
			before := s.launched.Load()
			d.sendDue(s)
			s.flights.Wait()
			if s.launched.Load() != before {
				started = true
			}
		}
		if !started {
			return
		}
	}
}
