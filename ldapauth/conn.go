package ldapauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Conn is the part of *ldap.Conn the backend uses, so tests can fake a
// directory.
type Conn interface {
	SimpleBind(*ldap.SimpleBindRequest) (*ldap.SimpleBindResult, error)
	Search(*ldap.SearchRequest) (*ldap.SearchResult, error)
	Close() error
}

// dialFunc opens a connection to one DC, TLS included, ready for a bind.
type dialFunc func(ctx context.Context, d *dc) (Conn, error)

// Back-off for a DC that failed: 30s, doubling to 5m.
const (
	backoffMin = 30 * time.Second
	backoffMax = 5 * time.Minute
	// idleMax: pooled connections idle longer are closed rather than
	// reused (AD drops idle connections after 15 minutes by default).
	idleMax = 5 * time.Minute
)

// dc is one domain controller: its address, pools and health memory.
type dc struct {
	url      string // as configured (or built from SRV)
	hostport string
	tls      bool // ldaps://
	startTLS bool
	tlsConf  *tls.Config

	// Idle connections. svc ones are bound as the service account; bind
	// ones are used only to check user passwords (each use starts with a
	// bind, so whoever they were last bound as does not matter).
	svc  chan pooled
	bind chan pooled

	// refusal is how long this DC takes to refuse a user's password; an
	// unknown username is answered no sooner (see authService).
	refusal latency

	mu        sync.Mutex
	downUntil time.Time // skipped until then
	backoff   time.Duration
	lastFail  time.Time
	lastErr   string
}

type pooled struct {
	c     Conn
	since time.Time
}

func newDC(raw string, startTLS bool, base *tls.Config, pool int) (*dc, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	d := &dc{url: raw, tls: u.Scheme == "ldaps", startTLS: startTLS && u.Scheme == "ldap"}
	port := u.Port()
	if port == "" {
		port = "389"
		if d.tls {
			port = "636"
		}
	}
	d.hostport = net.JoinHostPort(u.Hostname(), port)
	d.tlsConf = base.Clone()
	if d.tlsConf.ServerName == "" {
		d.tlsConf.ServerName = u.Hostname()
	}
	d.svc = make(chan pooled, pool)
	d.bind = make(chan pooled, pool)
	return d, nil
}

// get returns an idle connection from p, or nil.
func (d *dc) get(p chan pooled, now time.Time) Conn {
	for {
		select {
		case pc := <-p:
			if now.Sub(pc.since) > idleMax {
				_ = pc.c.Close()
				continue
			}
			return pc.c
		default:
			return nil
		}
	}
}

// put returns c to p, or closes it when p is full.
func (d *dc) put(p chan pooled, c Conn, now time.Time) {
	select {
	case p <- pooled{c: c, since: now}:
	default:
		_ = c.Close()
	}
}

func (d *dc) drain() {
	for _, p := range []chan pooled{d.svc, d.bind} {
		for {
			select {
			case pc := <-p:
				_ = pc.c.Close()
				continue
			default:
			}
			break
		}
	}
}

func (d *dc) markDown(err error, now time.Time) {
	d.mu.Lock()
	if d.backoff == 0 {
		d.backoff = backoffMin
	} else if !now.Before(d.downUntil) {
		// Failed again after its back-off ran out: wait longer.
		d.backoff = min(d.backoff*2, backoffMax)
	}
	d.downUntil = now.Add(d.backoff)
	d.lastFail = now
	d.lastErr = err.Error()
	d.mu.Unlock()
	d.drain() // a DC that failed keeps no connections that may be dead
}

func (d *dc) markUp() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.backoff = 0
	d.downUntil = time.Time{}
	d.lastErr = ""
}

func (d *dc) isDown(now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return now.Before(d.downUntil)
}

// DCStatus is what the backend knows about one domain controller.
type DCStatus struct {
	URL       string
	Up        bool   // not in a back-off after a failure
	LastError string // the last failure, "" once it answered again
}

// order returns the DCs to try: those not in back-off, in configured
// order, then, so a sign-in is never refused without trying, the down one
// that failed longest ago.
func order(dcs []*dc, now time.Time) []*dc {
	var up, down []*dc
	for _, d := range dcs {
		if d.isDown(now) {
			down = append(down, d)
		} else {
			up = append(up, d)
		}
	}
	if len(down) > 0 {
		sort.SliceStable(down, func(i, j int) bool {
			down[i].mu.Lock()
			a := down[i].lastFail
			down[i].mu.Unlock()
			down[j].mu.Lock()
			b := down[j].lastFail
			down[j].mu.Unlock()
			return a.Before(b)
		})
		up = append(up, down[0])
	}
	return up
}

// dialLDAP is the real dialFunc: TCP with the timeout, then TLS (LDAPS) or
// StartTLS, all bounded by ctx.
func dialLDAP(timeout time.Duration, trace func(string, ...any)) dialFunc {
	return func(ctx context.Context, d *dc) (Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		start := time.Now()
		nd := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
		raw, err := nd.DialContext(ctx, "tcp", d.hostport)
		if err != nil {
			return nil, fmt.Errorf("connect %s: %w", d.url, err)
		}
		var conn *ldap.Conn
		switch {
		case d.tls:
			tc := tls.Client(raw, d.tlsConf)
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = raw.Close()
				return nil, fmt.Errorf("TLS with %s: %s: %w", d.url, tlsAdvice(err), err)
			}
			conn = ldap.NewConn(tc, true)
			conn.Start()
		default:
			conn = ldap.NewConn(raw, false)
			conn.Start()
			if d.startTLS {
				// go-ldap's StartTLS waits for the answer without a
				// timeout: a deadline on the socket bounds it.
				dl, _ := ctx.Deadline()
				_ = raw.SetDeadline(dl)
				err := conn.StartTLS(d.tlsConf)
				_ = raw.SetDeadline(time.Time{})
				if err != nil {
					_ = conn.Close()
					return nil, fmt.Errorf("StartTLS with %s: %s: %w", d.url, tlsAdvice(err), err)
				}
			}
		}
		conn.SetTimeout(timeout)
		if trace != nil {
			trace("ldap: connected to %s (%s) in %s", d.url, connKind(d), time.Since(start).Round(time.Millisecond))
		}
		return conn, nil
	}
}

func connKind(d *dc) string {
	switch {
	case d.tls:
		return "ldaps"
	case d.startTLS:
		return "starttls"
	}
	return "plaintext"
}

// ExplainTLS puts a TLS or certificate verification failure in plain
// words for an administrator.
func ExplainTLS(err error) string { return tlsAdvice(err) }

func tlsAdvice(err error) string {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var ve *tls.CertificateVerificationError
	switch {
	case errors.As(err, &ua):
		return "the DC's certificate is signed by an authority not in ca_file (or the system roots)"
	case errors.As(err, &hn):
		return "the DC's certificate is not valid for this host name: use the name the certificate carries in url"
	case errors.As(err, &ci):
		if ci.Reason == x509.Expired {
			return "the DC's certificate has expired or is not yet valid (check the clocks)"
		}
		return "the DC's certificate is not valid"
	case errors.As(err, &ve):
		return "the DC's certificate could not be verified"
	}
	// go-ldap's StartTLS flattens the handshake error to text.
	switch msg := err.Error(); {
	case strings.Contains(msg, "unknown authority"):
		return "the DC's certificate is signed by an authority not in ca_file (or the system roots)"
	case strings.Contains(msg, "is valid for"), strings.Contains(msg, "doesn't contain any IP SANs"), strings.Contains(msg, "not valid for"):
		return "the DC's certificate is not valid for this host name: use the name the certificate carries in url"
	case strings.Contains(msg, "expired or is not yet valid"):
		return "the DC's certificate has expired or is not yet valid (check the clocks)"
	case strings.Contains(msg, "certificate"):
		return "the DC's certificate was refused"
	}
	return "handshake failed"
}
