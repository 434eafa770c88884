package testbed_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/testbed"
)

func TestCALeafVerifiesAgainstPool(t *testing.T) {
	t.Parallel()
	ca := testbed.NewCAT(t)
	now := time.Now()
	leaf, err := ca.Leaf([]string{"chat.test", "127.0.0.1"}, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.Leaf.DNSNames) != 1 || leaf.Leaf.DNSNames[0] != "chat.test" ||
		len(leaf.Leaf.IPAddresses) != 1 || !leaf.Leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Fatalf("SANs: %v %v", leaf.Leaf.DNSNames, leaf.Leaf.IPAddresses)
	}
	for _, name := range []string{"chat.test", "127.0.0.1"} {
		if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: ca.Pool()}); err != nil {
			t.Errorf("verify %s: %v", name, err)
		}
	}
	var hostErr x509.HostnameError
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: "other.test", Roots: ca.Pool()}); !errors.As(err, &hostErr) {
		t.Errorf("other.test: %v, want a HostnameError", err)
	}
	var unknown x509.UnknownAuthorityError
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: "chat.test", Roots: testbed.NewCAT(t).Pool()}); !errors.As(err, &unknown) {
		t.Errorf("another CA: %v, want UnknownAuthorityError", err)
	}
}

func TestCAExpiredLeaf(t *testing.T) {
	t.Parallel()
	ca := testbed.NewCAT(t)
	now := time.Now()
	expired, err := ca.Leaf([]string{"chat.test"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var invalid x509.CertificateInvalidError
	if _, err := expired.Leaf.Verify(x509.VerifyOptions{DNSName: "chat.test", Roots: ca.Pool()}); !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
		t.Fatalf("verify: %v, want an Expired CertificateInvalidError", err)
	}
	// The same through a TLS handshake, as a prober sees it.
	o := testbed.NewOriginT(t, testbed.OriginOptions{TLS: &tls.Config{Certificates: []tls.Certificate{expired}}})
	c, err := tls.Dial("tcp", o.Addr(), &tls.Config{ServerName: "chat.test", RootCAs: ca.Pool()})
	if err == nil {
		c.Close()
		t.Fatal("handshake with an expired certificate succeeded")
	}
	if !errors.As(err, &invalid) || invalid.Reason != x509.Expired || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("handshake: %v", err)
	}
}

func TestCAPEM(t *testing.T) {
	t.Parallel()
	ca := testbed.NewCAT(t)
	block, rest := pem.Decode(ca.PEM())
	if block == nil || block.Type != "CERTIFICATE" || len(rest) != 0 {
		t.Fatalf("PEM: %q", ca.PEM())
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.PEM()) || !ca.Cert.IsCA {
		t.Fatal("CA PEM does not load as a CA")
	}
	leaf, err := ca.Leaf([]string{"chat.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := testbed.EncodePEM(leaf)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil || len(pair.Certificate) != 2 {
		t.Fatalf("key pair: %v (%d certs)", err, len(pair.Certificate))
	}
	certFile, keyFile, err := testbed.WriteCertFiles(t.TempDir(), "chat", leaf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
}
