package adauth

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

const testKey = "0123456789abcdef0123456789abcdef-test-key"

func testSession(now time.Time) *session {
	return &session{
		ID: "alice", Email: "alice@hospital.example", Name: "Alice Andersen",
		GivenName: "Alice", FamilyName: "Andersen", Backend: "local",
		Groups: []string{"admin", "physics"}, Issued: now.Unix(), Seen: now.Unix(), Checked: now.Unix(),
	}
}

func mustSealer(t testing.TB, keys ...string) *sealer {
	t.Helper()
	s, err := newSealer(keys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSessionRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	in := testSession(now)
	in.DN = "CN=Alice,OU=Staff,DC=hospital,DC=test"
	in.Refresh = "refresh-token"
	s := mustSealer(t, testKey)
	v := s.seal(in.marshal(), purposeSessionTLS)
	p, err := s.open(v, purposeSessionTLS)
	if err != nil {
		t.Fatal(err)
	}
	var out session
	if err := out.unmarshal(p); err != nil {
		t.Fatal(err)
	}
	if out.ID != in.ID || out.Email != in.Email || out.Name != in.Name || out.GivenName != in.GivenName ||
		out.FamilyName != in.FamilyName || out.Backend != in.Backend || out.DN != in.DN || out.Refresh != in.Refresh ||
		out.Issued != in.Issued || out.Seen != in.Seen || out.Checked != in.Checked ||
		strings.Join(out.Groups, ",") != strings.Join(in.Groups, ",") {
		t.Fatalf("round trip changed the session:\n in  %+v\n out %+v", in, out)
	}
	if bytes.Contains([]byte(v), []byte("alice")) {
		t.Fatal("sealed cookie shows the username in clear")
	}
}

func TestSessionOpenRefuses(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := mustSealer(t, testKey)
	good := s.seal(testSession(now).marshal(), purposeSessionTLS)
	flip := []byte(good)
	flip[len(flip)/2] ^= 'A' ^ 'B'
	if flip[len(flip)/2] == good[len(good)/2] {
		flip[len(flip)/2] = 'x'
	}
	other := mustSealer(t, "another-key-another-key-another-key-000")
	cases := []struct {
		name, value string
		purpose     []byte
		s           *sealer
	}{
		{"empty", "", purposeSessionTLS, s},
		{"not base64", "!!!!", purposeSessionTLS, s},
		{"tampered", string(flip), purposeSessionTLS, s},
		{"truncated", good[:len(good)-4], purposeSessionTLS, s},
		{"too short for a nonce", good[:10], purposeSessionTLS, s},
		{"wrong key", good, purposeSessionTLS, other},
		{"plain-HTTP cookie on HTTPS", s.seal(testSession(now).marshal(), purposeSessionPlain), purposeSessionTLS, s},
		{"flow cookie as session", s.seal(testSession(now).marshal(), purposeFlowTLS), purposeSessionTLS, s},
		{"huge", strings.Repeat("A", 3*maxCookieBytes), purposeSessionTLS, s},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := c.s.open(c.value, c.purpose); err == nil {
				t.Fatal("opened a cookie it must refuse")
			}
		})
	}
}

func TestSessionKeyRotation(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	oldKey, newKey := testKey, "the-new-key-the-new-key-the-new-key-1234"
	old := mustSealer(t, oldKey)
	rotated := mustSealer(t, newKey, oldKey)
	v := old.seal(testSession(now).marshal(), purposeSessionTLS)
	if _, err := rotated.open(v, purposeSessionTLS); err != nil {
		t.Fatalf("a cookie sealed with the old key must open after rotation: %v", err)
	}
	v2 := rotated.seal(testSession(now).marshal(), purposeSessionTLS)
	if _, err := mustSealer(t, newKey).open(v2, purposeSessionTLS); err != nil {
		t.Fatalf("the first key must seal: %v", err)
	}
	if _, err := old.open(v2, purposeSessionTLS); err == nil {
		t.Fatal("the old key alone opened a cookie sealed with the new key")
	}
}

func TestSealerRefusesShortKeys(t *testing.T) {
	if _, err := newSealer([]string{"short"}); err == nil {
		t.Fatal("accepted a 5-byte session key")
	}
	if _, err := newSealer(nil); err == nil {
		t.Fatal("accepted no key")
	}
}

func TestSessionPolicy(t *testing.T) {
	p := sessionPolicy{lifetime: 10 * time.Hour, idle: time.Hour}
	t0 := time.Unix(1_800_000_000, 0)
	cases := []struct {
		name         string
		issued, seen time.Duration // before now
		ok           bool
	}{
		{"fresh", 0, 0, true},
		{"active", 5 * time.Hour, 10 * time.Minute, true},
		{"idle expired", 2 * time.Hour, 61 * time.Minute, false},
		{"absolute expired though active", 10*time.Hour + time.Second, time.Minute, false},
		{"issued in the future", -time.Hour, 0, false},
	}
	for _, c := range cases {
		ss := &session{ID: "a", Issued: t0.Add(-c.issued).Unix(), Seen: t0.Add(-c.seen).Unix()}
		if got := p.valid(ss, t0); got != c.ok {
			t.Errorf("%s: valid=%v, want %v", c.name, got, c.ok)
		}
	}
}

func TestUnmarshalRefusesMalformed(t *testing.T) {
	good := testSession(time.Unix(1_800_000_000, 0)).marshal()
	for _, p := range [][]byte{nil, {}, {9}, good[:len(good)-1], append(append([]byte{}, good...), 0)} {
		var ss session
		if ss.unmarshal(p) == nil {
			t.Errorf("unmarshal accepted %x", p)
		}
	}
	// A varint padded with a zero byte, or a tenth byte that overflows 64
	// bits, decodes to some number but is not what marshal writes.
	minimal := (&session{ID: "a"}).marshal() // 01 00 00 00 01 'a' ...
	padded := append([]byte{1, 0x80, 0x00}, minimal[2:]...)
	overflow := append([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, minimal[2:]...)
	for _, p := range [][]byte{padded, overflow} {
		var ss session
		if ss.unmarshal(p) == nil {
			t.Errorf("unmarshal accepted the non-minimal varint in %x", p)
		}
	}
	var ss session
	if err := ss.unmarshal(minimal); err != nil {
		t.Errorf("the minimal session %x was refused: %v", minimal, err)
	}
	noID := testSession(time.Unix(1_800_000_000, 0))
	noID.ID = ""
	if ss.unmarshal(noID.marshal()) == nil {
		t.Error("a session without an id was accepted")
	}
}

func FuzzSessionOpen(f *testing.F) {
	s := mustSealer(f, testKey)
	now := time.Unix(1_800_000_000, 0)
	f.Add(s.seal(testSession(now).marshal(), purposeSessionTLS))
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, v string) {
		p, err := s.open(v, purposeSessionTLS)
		if err != nil {
			return
		}
		var ss session
		_ = ss.unmarshal(p)
	})
}

func FuzzSessionUnmarshal(f *testing.F) {
	f.Add(testSession(time.Unix(1_800_000_000, 0)).marshal())
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		var ss session
		if ss.unmarshal(p) == nil {
			// Whatever decodes must encode back to the same bytes.
			if !bytes.Equal(ss.marshal(), p) {
				t.Fatalf("decode/encode mismatch for %x", p)
			}
		}
	})
}

func TestSafeNext(t *testing.T) {
	cases := map[string]string{
		"":                              "/",
		"/":                             "/",
		"/admin/?x=1":                   "/admin/?x=1",
		"/qa/units/1#top":               "/qa/units/1#top",
		"//evil.example":                "/",
		"/\\evil.example":               "/",
		"https://evil.example/":         "/",
		"http:/evil":                    "/",
		"javascript:alert(1)":           "/",
		"%2F%2Fevil":                    "/",
		"/\t/evil.example":              "/",
		"/\n/evil.example":              "/",
		"/a\\b":                         "/",
		"evil.example":                  "/",
		"/%2F%2Fevil.example":           "/%2F%2Fevil.example", // a local path: the browser stays here
		"/" + strings.Repeat("a", 3000): "/",
	}
	for in, want := range cases {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "//evil", "/\\evil", "https://x", "/a?b#c", "/%2F%2F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got == "/" {
			return
		}
		if got != next {
			t.Fatalf("safeNext changed %q to %q", next, got)
		}
		if got[0] != '/' || (len(got) > 1 && (got[1] == '/' || got[1] == '\\')) || strings.ContainsAny(got, "\\\t\r\n") {
			t.Fatalf("safeNext let %q through", got)
		}
	})
}
