package testbed

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS is a tiny authoritative DNS server on 127.0.0.1 (UDP): names in
// Records get an A record, every other name NXDOMAIN. Point a
// net.Resolver at it with Resolver, so tests exercise real DNS failures
// without a query leaving the machine.
type DNS struct {
	conn    net.PacketConn
	mu      sync.Mutex
	records map[string]net.IP
	wg      sync.WaitGroup
}

// NewDNS starts a DNS server; records maps names ("chat.test") to IPv4s.
func NewDNS(records map[string]string) (*DNS, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &DNS{conn: c, records: map[string]net.IP{}}
	for n, ip := range records {
		d.records[strings.TrimSuffix(strings.ToLower(n), ".")] = net.ParseIP(ip).To4()
	}
	d.wg.Add(1)
	go d.serve()
	return d, nil
}

// Addr is the server's UDP address.
func (d *DNS) Addr() string { return d.conn.LocalAddr().String() }

// Resolver returns a Go resolver that asks only this server.
func (d *DNS) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "udp", d.Addr())
	}}
}

// Close stops the server.
func (d *DNS) Close() error {
	err := d.conn.Close()
	d.wg.Wait()
	return err
}

func (d *DNS) serve() {
	defer d.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, addr, err := d.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if out, err := d.answer(buf[:n]); err == nil {
			d.conn.WriteTo(out, addr)
		}
	}
}

func (d *DNS) answer(req []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	name := strings.TrimSuffix(strings.ToLower(q.Name.String()), ".")
	d.mu.Lock()
	ip, ok := d.records[name]
	d.mu.Unlock()
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !ok {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if ok && q.Type == dnsmessage.TypeA {
		if err := b.StartAnswers(); err != nil {
			return nil, err
		}
		var a [4]byte
		copy(a[:], ip)
		if err := b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: a}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}
