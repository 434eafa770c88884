package testbed

// FireGuard does what the guardian does when this process dies: it closes
// the pipe, and the guardian kills nginx's process group.
func (n *Nginx) FireGuard() { n.proc.guardW.Close() }
