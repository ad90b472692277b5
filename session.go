package adauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/hkdf"
)

// session is what the sealed cookie carries. Strings share one backing
// array (see open), so reading a session costs few allocations.
type session struct {
	ID         string
	Email      string
	Name       string
	GivenName  string
	FamilyName string
	Backend    string
	DN         string   // directory DN of the account (LDAP), for recheck
	Groups     []string // application groups, sorted
	Issued     int64    // unix seconds: absolute lifetime counts from here
	Seen       int64    // unix seconds: idle timeout counts from here
	Checked    int64    // unix seconds: last time the directory confirmed the account
	Refresh    string   // AD FS refresh token, when the provider gave one (for recheck)

	groupsJoined string // Groups joined by commas, computed once per request
}

// sessionVersion is the first plaintext byte; a format change bumps it so
// old cookies fail to open instead of being misread.
const sessionVersion = 1

// maxCookieBytes keeps a cookie (name, value and attributes) under the
// 4096-byte limit every browser enforces; a larger one would be dropped
// silently and the user would loop back to the login page.
const maxCookieBytes = 3900

var (
	errCookieMalformed = errors.New("session cookie is malformed")
	errCookieSeal      = errors.New("session cookie does not open under any configured key")
	errCookieTooLarge  = errors.New("session does not fit in a cookie")
)

// sealer seals and opens cookie values with AES-256-GCM. Every configured key
// opens; the first seals, so keys can be rotated by putting the new one first.
// The additional data binds a sealed value to its purpose (session or AD FS
// flow cookie) and to its cookie name, so one cannot stand in for the other.
type sealer struct {
	aeads []cipher.AEAD
}

// newSealer derives one AES-256 key per secret with HKDF-SHA256, so that any
// sufficiently long secret (a `caddy adauth key` output, a passphrase) can be
// used and the raw secret never keys the cipher directly.
func newSealer(secrets []string) (*sealer, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no session key")
	}
	s := &sealer{}
	for i, secret := range secrets {
		if len(secret) < 32 {
			return nil, fmt.Errorf("session_key #%d is %d bytes; it needs at least 32 (make one with `caddy adauth key`)", i+1, len(secret))
		}
		key := make([]byte, 32)
		if _, err := io.ReadFull(hkdf.New(sha256.New, []byte(secret), nil, []byte("adauth cookie key v1")), key); err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

// seal encrypts plaintext under the first key and returns base64url text.
func (s *sealer) seal(plaintext, purpose []byte) string {
	a := s.aeads[0]
	buf := make([]byte, a.NonceSize(), a.NonceSize()+len(plaintext)+a.Overhead())
	if _, err := rand.Read(buf); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	buf = a.Seal(buf, buf, plaintext, purpose)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// open reverses seal. It decodes into one buffer and decrypts in place.
func (s *sealer) open(value string, purpose []byte) ([]byte, error) {
	if len(value) == 0 || len(value) > 2*maxCookieBytes {
		return nil, errCookieMalformed
	}
	buf := make([]byte, base64.RawURLEncoding.DecodedLen(len(value)))
	n, err := base64.RawURLEncoding.Decode(buf, []byte(value))
	if err != nil {
		return nil, errCookieMalformed
	}
	buf = buf[:n]
	for _, a := range s.aeads {
		ns := a.NonceSize()
		if len(buf) < ns+a.Overhead() {
			return nil, errCookieMalformed
		}
		// Open in place would overwrite the ciphertext, which the next key
		// needs; only the last key may do that.
		dst := []byte(nil)
		if a == s.aeads[len(s.aeads)-1] {
			dst = buf[ns:ns]
		}
		pt, err := a.Open(dst, buf[:ns], buf[ns:], purpose)
		if err == nil {
			return pt, nil
		}
	}
	return nil, errCookieSeal
}

// marshal encodes a session compactly: a version byte, four varint times,
// then length-prefixed strings. JSON would double the cookie size and the
// per-request allocations.
func (ss *session) marshal() []byte {
	b := make([]byte, 0, 128)
	b = append(b, sessionVersion)
	b = binary.AppendVarint(b, ss.Issued)
	b = binary.AppendVarint(b, ss.Seen)
	b = binary.AppendVarint(b, ss.Checked)
	for _, s := range [...]string{ss.ID, ss.Email, ss.Name, ss.GivenName, ss.FamilyName, ss.Backend, ss.DN, ss.Refresh} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(ss.Groups)))
	for _, g := range ss.Groups {
		b = appendString(b, g)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// unmarshal decodes what marshal wrote. It converts the plaintext to one
// string and slices every field out of it: one allocation for all strings.
func (ss *session) unmarshal(p []byte) error {
	if len(p) == 0 || p[0] != sessionVersion {
		return errCookieMalformed
	}
	d := decoder{s: string(p), i: 1}
	ss.Issued = d.varint()
	ss.Seen = d.varint()
	ss.Checked = d.varint()
	for _, f := range [...]*string{&ss.ID, &ss.Email, &ss.Name, &ss.GivenName, &ss.FamilyName, &ss.Backend, &ss.DN, &ss.Refresh} {
		*f = d.str()
	}
	n := d.uvarint()
	if n > uint64(len(d.s)) { // each group takes at least one byte
		return errCookieMalformed
	}
	if n > 0 {
		ss.Groups = make([]string, n)
		for i := range ss.Groups {
			ss.Groups[i] = d.str()
		}
	}
	if d.bad || d.i != len(d.s) || ss.ID == "" {
		return errCookieMalformed
	}
	return nil
}

type decoder struct {
	s   string
	i   int
	bad bool
}

func (d *decoder) uvarint() uint64 {
	var x uint64
	var shift uint
	for ; d.i < len(d.s) && shift < 64; shift += 7 {
		c := d.s[d.i]
		d.i++
		if c < 0x80 {
			// Only the shortest encoding is accepted, so one session has
			// exactly one encoding: a zero last byte after the first, or a
			// tenth byte above 1, is what marshal never writes.
			if (c == 0 && shift > 0) || (shift == 63 && c > 1) {
				break
			}
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
	}
	d.bad = true
	return 0
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.s)-d.i) {
		d.bad = true
		return ""
	}
	s := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return s
}

// sessionPolicy holds the lifetimes a session is judged by.
type sessionPolicy struct {
	lifetime time.Duration // absolute, from Issued
	idle     time.Duration // sliding, from Seen
}

// valid reports whether the session is still alive at now.
func (p sessionPolicy) valid(ss *session, now time.Time) bool {
	t := now.Unix()
	// A session from the future (clock moved back, or a forged time) is not
	// trusted either: allow a minute of skew between instances.
	if ss.Issued > t+60 || ss.Seen > t+60 {
		return false
	}
	return t < ss.Issued+int64(p.lifetime/time.Second) && t < ss.Seen+int64(p.idle/time.Second)
}

// expires is when the session ends if it is not used again.
func (p sessionPolicy) expires(ss *session) time.Time {
	abs := ss.Issued + int64(p.lifetime/time.Second)
	idle := ss.Seen + int64(p.idle/time.Second)
	return time.Unix(min(abs, idle), 0)
}

// groupsString is the comma-separated form used by the placeholder and header.
func (ss *session) groupsString() string { return strings.Join(ss.Groups, ",") }
