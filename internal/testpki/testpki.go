// Package testpki generates a throw-away certificate authority and a server
// certificate for test fixtures (Samba, slapd, HTTPS test servers).
//
//	p := testpki.New(t, t.TempDir())          // default SANs, see DefaultHosts
//	p := testpki.New(t, dir, "127.0.0.9", "ldap.example.test")
//	tls.Config{RootCAs: p.CAPool}              // trusts the server certificate
//	tls.Config{RootCAs: p.Other().CAPool}      // an unrelated CA: must be refused
//
// Keys are ECDSA P-256 (fast to generate); the key file is written with mode
// 0600 because Samba refuses TLS keys readable by others.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// PKI is a CA and one server certificate signed by it, as PEM files in Dir
// and as parsed values.
type PKI struct {
	Dir      string // directory holding the files below
	CAFile   string // ca.pem: the CA certificate
	CAKey    string // ca-key.pem (0600)
	CertFile string // server.pem: the server certificate (leaf only)
	KeyFile  string // server-key.pem (0600)

	CA     *x509.Certificate
	CAPool *x509.CertPool  // contains only CA
	Cert   tls.Certificate // the server certificate and key, for crypto/tls servers
	Hosts  []string        // the server certificate's SANs (IPs and DNS names)

	otherOnce sync.Once
	other     *PKI
}

// DefaultHosts are the SANs used when New gets none: the loopback addresses
// 127.0.0.1–127.0.0.40 (one Samba DC per address), ::1, localhost and the
// fixture domain's DC names.
func DefaultHosts() []string {
	h := []string{"localhost", "dc1.hospital.test", "hospital.test", "ldap.hospital.test", "::1"}
	for i := 1; i <= 40; i++ {
		h = append(h, fmt.Sprintf("127.0.0.%d", i))
	}
	for i := 1; i <= 9; i++ {
		h = append(h, fmt.Sprintf("dc%d.hospital.test", i+1))
	}
	return h
}

// New creates a CA and a server certificate for hosts (DefaultHosts if none)
// and writes them under dir (created if needed). It fails t on any error; t
// may be nil, in which case New panics on error.
func New(t testing.TB, dir string, hosts ...string) *PKI {
	if t != nil {
		t.Helper()
	}
	p, err := Generate(dir, hosts...)
	if err != nil {
		if t != nil {
			t.Fatalf("testpki: %v", err)
		}
		panic(err)
	}
	return p
}

// Generate is New without a testing.TB.
func Generate(dir string, hosts ...string) (*PKI, error) {
	if len(hosts) == 0 {
		hosts = DefaultHosts()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "adauth test CA " + filepath.Base(dir), Organization: []string{"adauth tests"}},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)

	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"adauth tests"}},
		NotBefore:    now.Add(-24 * time.Hour),
		NotAfter:     now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			srvTmpl.IPAddresses = append(srvTmpl.IPAddresses, ip)
		} else {
			srvTmpl.DNSNames = append(srvTmpl.DNSNames, h)
		}
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}

	p := at(dir)
	p.CA, p.Hosts = ca, append([]string(nil), hosts...)
	p.CAPool.AddCert(ca)
	caKeyDER, err := x509.MarshalPKCS8PrivateKey(caKey)
	if err != nil {
		return nil, err
	}
	srvKeyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		return nil, err
	}
	files := []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{
		{p.CAFile, "CERTIFICATE", caDER, 0o644},
		{p.CAKey, "PRIVATE KEY", caKeyDER, 0o600},
		{p.CertFile, "CERTIFICATE", srvDER, 0o644},
		{p.KeyFile, "PRIVATE KEY", srvKeyDER, 0o600},
	}
	for _, f := range files {
		data := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
		if err := os.WriteFile(f.path, data, f.mode); err != nil {
			return nil, err
		}
		if err := os.Chmod(f.path, f.mode); err != nil { // WriteFile keeps an existing file's mode
			return nil, err
		}
	}
	p.Cert, err = tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: srvKeyDER}))
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Other returns a second, unrelated CA (with its own server certificate, in
// Dir/other), created on first use: a client trusting only Other().CAPool
// must refuse this PKI's server certificate.
func (p *PKI) Other() *PKI {
	p.otherOnce.Do(func() {
		o, err := Generate(filepath.Join(p.Dir, "other"), p.Hosts...)
		if err != nil {
			panic(fmt.Sprintf("testpki: other CA: %v", err))
		}
		p.other = o
	})
	return p.other
}

// ClientTLS returns a tls.Config trusting only this CA, for serverName ("" to
// verify by the address dialled, as go-ldap and net/http do when the
// ServerName is left empty).
func (p *PKI) ClientTLS(serverName string) *tls.Config {
	return &tls.Config{RootCAs: p.CAPool, ServerName: serverName, MinVersion: tls.VersionTLS12}
}

// ServerTLS returns a tls.Config serving the server certificate.
func (p *PKI) ServerTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.Cert}, MinVersion: tls.VersionTLS12}
}

// at returns a PKI with the file names in dir (the one layout Generate
// writes and Load reads) and an empty CAPool.
func at(dir string) *PKI {
	return &PKI{
		Dir:      dir,
		CAFile:   filepath.Join(dir, "ca.pem"),
		CAKey:    filepath.Join(dir, "ca-key.pem"),
		CertFile: filepath.Join(dir, "server.pem"),
		KeyFile:  filepath.Join(dir, "server-key.pem"),
		CAPool:   x509.NewCertPool(),
	}
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

// Load reads a PKI written earlier by New or Generate (for fixtures that cache
// their CA on disk). Dir/other, when present, becomes Other().
func Load(dir string) (*PKI, error) {
	p := at(dir)
	caPEM, err := os.ReadFile(p.CAFile)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(caPEM)
	if blk == nil {
		return nil, fmt.Errorf("testpki: %s: no PEM", p.CAFile)
	}
	if p.CA, err = x509.ParseCertificate(blk.Bytes); err != nil {
		return nil, err
	}
	p.CAPool.AddCert(p.CA)
	if p.Cert, err = tls.LoadX509KeyPair(p.CertFile, p.KeyFile); err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(p.Cert.Certificate[0])
	if err != nil {
		return nil, err
	}
	for _, ip := range leaf.IPAddresses {
		p.Hosts = append(p.Hosts, ip.String())
	}
	p.Hosts = append(p.Hosts, leaf.DNSNames...)
	if _, err := os.Stat(filepath.Join(dir, "other", "ca.pem")); err == nil {
		o, err := Load(filepath.Join(dir, "other"))
		if err != nil {
			return nil, err
		}
		p.otherOnce.Do(func() { p.other = o })
	}
	return p, nil
}
