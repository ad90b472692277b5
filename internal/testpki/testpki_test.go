package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"testing"
)

func TestPKI(t *testing.T) {
	p := New(t, t.TempDir())
	for _, f := range []string{p.KeyFile, p.CAKey} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	data, err := os.ReadFile(p.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(data)
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.40", "localhost", "dc1.hospital.test"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.CAPool, DNSName: h}); err != nil {
			t.Errorf("verify %s: %v", h, err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.Other().CAPool, DNSName: h}); err == nil {
			t.Errorf("other CA accepted the certificate for %s", h)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.CAPool, DNSName: "127.0.0.41"}); err == nil {
		t.Error("127.0.0.41 verified, want SAN mismatch")
	}

	// A real TLS handshake with the files' contents.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", p.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), p.ClientTLS(""))
	if err != nil {
		t.Fatalf("handshake with fixture CA: %v", err)
	}
	c.Close()
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	if c, err := tls.Dial("tcp", ln.Addr().String(), p.Other().ClientTLS(host)); err == nil {
		c.Close()
		t.Fatal("handshake with the other CA succeeded")
	}
}

func TestCustomHosts(t *testing.T) {
	p := New(t, t.TempDir(), "127.0.0.9", "ldap.example.test")
	if len(p.Cert.Certificate) != 1 {
		t.Fatal("want a leaf")
	}
	leaf, _ := x509.ParseCertificate(p.Cert.Certificate[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.CAPool, DNSName: "ldap.example.test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.CAPool, DNSName: "127.0.0.2"}); err == nil {
		t.Fatal("127.0.0.2 should not verify")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := New(t, dir)
	p.Other()
	q, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !q.CA.Equal(p.CA) || !q.Other().CA.Equal(p.Other().CA) {
		t.Fatal("loaded CAs differ")
	}
	leaf, _ := x509.ParseCertificate(q.Cert.Certificate[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: q.CAPool, DNSName: "127.0.0.2"}); err != nil {
		t.Fatal(err)
	}
}
