package adauth

// Attacks on the directory through adauth, measured on a real Samba AD DC:
// what reaches the DC is read from the DC itself (badPwdCount), and what an
// attacker can learn is read from the response times.

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/caddyserver/caddy/v2"
	"github.com/go-ldap/ldap/v3"

	"github.com/caddy-adauth/adauth/internal/sambadc"
	"github.com/caddy-adauth/adauth/internal/serverproc"
)

// loginFrom is lh.login from client address ip. serve prepares requests
// without a Caddy server, so there is no client_ip variable and the
// handler keys its per-IP throttle on RemoteAddr.
func (lh *ldapHandler) loginFrom(ip, username, password string) *httptest.ResponseRecorder {
	form := url.Values{"username": {username}, "password": {password}, "next": {"/qa/"}}
	r := httptest.NewRequest("POST", "/adauth/login", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = ip + ":40000"
	w, _ := serve(lh.h, r)
	return w
}

// recordBadPasswords gives the fixture domain a lockout policy. Samba,
// like Windows, keeps badPwdCount only for accounts under one (the fixture
// has only Heidi's PSO, which still takes precedence); 999, the highest AD
// allows, locks nobody in these tests.
func recordBadPasswords(t *testing.T, dc *sambadc.DC) {
	t.Helper()
	dc.SambaTool(t, "domain", "passwordsettings", "set", "--account-lockout-threshold=999")
}

// badPwdCount reads an account's bad-password count on the DC.
func badPwdCount(t *testing.T, admin *ldap.Conn, dn string) int {
	t.Helper()
	e := serverproc.Search(t, admin, dn, "(objectClass=user)", "badPwdCount", "lockoutTime")
	if len(e) != 1 {
		t.Fatalf("%s: %d entries", dn, len(e))
	}
	n, err := strconv.Atoi(e[0].GetAttributeValue("badPwdCount"))
	if err != nil {
		t.Fatalf("%s: badPwdCount %q", dn, e[0].GetAttributeValue("badPwdCount"))
	}
	return n
}

// addUsers creates n enabled accounts prefix00, prefix01, ... in OU=Staff
// (over LDAPS, as AD sets unicodePwd only on an encrypted connection) and
// returns their DNs.
func addUsers(t *testing.T, dc *sambadc.DC, prefix string, n int) []string {
	t.Helper()
	c := serverproc.Dial(t, dc.LDAPSURL, dc.TLSConfig())
	if err := c.Bind(dc.AdminDN, dc.AdminPassword); err != nil {
		t.Fatal(err)
	}
	pw := utf16.Encode([]rune(`"Spray.Target.2026"`))
	quoted := make([]byte, 2*len(pw))
	for i, u := range pw {
		binary.LittleEndian.PutUint16(quoted[2*i:], u)
	}
	var dns []string
	for i := range n {
		name := fmt.Sprintf("%s%02d", prefix, i)
		req := ldap.NewAddRequest("CN="+name+","+sambadc.StaffOU, nil)
		req.Attribute("objectClass", []string{"user"})
		req.Attribute("sAMAccountName", []string{name})
		req.Attribute("userAccountControl", []string{"512"}) // a normal, enabled account
		req.Attribute("unicodePwd", []string{string(quoted)})
		if err := c.Add(req); err != nil {
			t.Fatalf("add %s: %v", name, err)
		}
		dns = append(dns, req.DN)
	}
	return dns
}

// attack sends one sign-in per username from ip, workers at a time, and
// returns the responses in order.
func (lh *ldapHandler) attack(ip string, usernames []string, workers int) []*httptest.ResponseRecorder {
	out := make([]*httptest.ResponseRecorder, len(usernames))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				out[i] = lh.loginFrom(ip, usernames[i], fmt.Sprintf("Guess.%d!", i))
			}
		})
	}
	for i := range usernames {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// tally counts the responses by status and checks every 429 carries a
// Retry-After within the window.
func tally(t *testing.T, who string, ws []*httptest.ResponseRecorder, window time.Duration) map[int]int {
	t.Helper()
	codes := map[int]int{}
	for _, w := range ws {
		codes[w.Code]++
		if w.Code != http.StatusTooManyRequests {
			continue
		}
		s, err := strconv.Atoi(w.Header().Get("Retry-After"))
		if err != nil || s <= 0 || time.Duration(s)*time.Second > window+time.Second {
			t.Errorf("%s: 429 with Retry-After %q", who, w.Header().Get("Retry-After"))
		}
	}
	return codes
}

// TestThrottleShieldsDirectory: a scripted attacker, sending in parallel,
// guesses one staff member's password hundreds of times and sprays a
// password across many accounts from another address, while a real user
// signs in from a third. On the DC, badPwdCount shows how many guesses
// reached the directory: exactly the throttle's limits, no more. And an
// account with an AD lockout policy cannot be locked out through adauth
// when the throttle is set below the AD threshold.
func TestThrottleShieldsDirectory(t *testing.T) {
	dc := sambadc.Start(t)
	t.Setenv("ADAUTH_TEST_LDAP_PASSWORD", dc.ServicePassword)
	recordBadPasswords(t, dc)
	admin := dc.Conn(t, dc.AdminDN, dc.AdminPassword)
	sprayed := addUsers(t, dc, "spray", 40)

	t.Run("guessing and spraying", func(t *testing.T) {
		start := time.Now()
		// The default throttle: 5 failures per username, 20 per client
		// address, 15 minutes.
		const userLimit, ipLimit, window = 5, 20, 15 * time.Minute
		lh := newLDAPHandler(t, sambaLDAPConfig(dc), func(h *Handler) { h.Throttle = nil })
		if h := lh.h.Throttle; h.Failures != userLimit || time.Duration(h.Window) != window {
			t.Fatalf("default throttle: %+v", h)
		}
		const attackerA, attackerB, realUser = "198.51.100.66", "203.0.113.99", "192.0.2.10"

		guesses := make([]string, 200)
		for i := range guesses {
			guesses[i] = []string{"alice", "ALICE", `HOSPITAL\alice`, "alice@hospital.test"}[i%4]
		}
		spray := make([]string, len(sprayed))
		for i := range spray {
			spray[i] = fmt.Sprintf("spray%02d", i)
		}
		var guessed, sprayedRes []*httptest.ResponseRecorder
		var attacks sync.WaitGroup
		attacks.Go(func() { guessed = lh.attack(attackerA, guesses, 32) })
		attacks.Go(func() { sprayedRes = lh.attack(attackerB, spray, 16) })
		over := make(chan struct{})
		realCodes := make(chan []int)
		go func() {
			// The real user signs in again and again while the attacks run.
			var codes []int
			for {
				codes = append(codes, lh.loginFrom(realUser, "bob", sambadc.Bob.Password).Code)
				select {
				case <-over:
					realCodes <- codes
					return
				default:
				}
			}
		}()
		attacks.Wait()
		close(over)
		real := <-realCodes
		t.Logf("attacks done in %v", time.Since(start).Round(time.Millisecond))

		// (a) 200 guesses at alice's password from one address.
		codes := tally(t, "guessing", guessed, window)
		alice := badPwdCount(t, admin, sambadc.Alice.DN)
		t.Logf("guessing: 200 wrong passwords for alice in four spellings: %v; alice's badPwdCount on the DC: %d", codes, alice)
		if alice != userLimit || codes[http.StatusUnauthorized] != userLimit || codes[http.StatusTooManyRequests] != 200-userLimit {
			t.Errorf("guessing: badPwdCount %d, responses %v; want %d wrong passwords reaching the DC, the rest 429",
				alice, codes, userLimit)
		}

		// (b) one guess for each of 40 accounts from another address.
		codes = tally(t, "spraying", sprayedRes, window)
		sum, most := 0, 0
		for _, dn := range sprayed {
			n := badPwdCount(t, admin, dn)
			sum, most = sum+n, max(most, n)
		}
		t.Logf("spraying: one wrong password for each of %d accounts: %v; badPwdCount summed over them: %d (at most %d per account)",
			len(sprayed), codes, sum, most)
		if sum != ipLimit || most > 1 || codes[http.StatusUnauthorized] != ipLimit ||
			codes[http.StatusTooManyRequests] != len(sprayed)-ipLimit {
			t.Errorf("spraying: badPwdCount sum %d (max %d), responses %v; want %d wrong passwords reaching the DC, the rest 429",
				sum, most, codes, ipLimit)
		}

		// (c) the real user was never held up by either, during the
		// attacks nor after them.
		real = append(real, lh.loginFrom(realUser, "bob", sambadc.Bob.Password).Code)
		ok := 0
		for _, c := range real {
			if c == http.StatusSeeOther {
				ok++
			}
		}
		t.Logf("real user from a third address: %d sign-ins, %d succeeded", len(real), ok)
		if ok != len(real) {
			t.Errorf("real user: statuses %v", real)
		}
		if n := badPwdCount(t, admin, sambadc.Bob.DN); n != 0 {
			t.Errorf("bob's badPwdCount %d", n)
		}

		// Past the limits nothing more reaches the DC, and the throttled
		// username stays throttled from a fresh address too.
		for range 20 {
			if w := lh.loginFrom(attackerA, "alice", "Again.1"); w.Code != http.StatusTooManyRequests {
				t.Fatalf("guessing resumed: %d", w.Code)
			}
			if w := lh.loginFrom(attackerB, "bob", "Again.1"); w.Code != http.StatusTooManyRequests {
				t.Fatalf("spraying resumed: %d", w.Code)
			}
		}
		if w := lh.loginFrom("198.51.100.67", "alice", "Again.2"); w.Code != http.StatusTooManyRequests {
			t.Errorf("alice from a fresh address: %d", w.Code)
		}
		if n := badPwdCount(t, admin, sambadc.Alice.DN); n != userLimit {
			t.Errorf("alice's badPwdCount %d after the limit", n)
		}
		t.Logf("guessing and spraying: %v", time.Since(start).Round(time.Millisecond))
	})

	t.Run("no lockout through adauth", func(t *testing.T) {
		start := time.Now()
		// Heidi's PSO locks her after 3 wrong passwords; the throttle is
		// set below that, as the documentation asks.
		const throttleAt = 2
		if throttleAt >= sambadc.LockoutThreshold {
			t.Fatal("the throttle must be below the AD threshold for this test")
		}
		lh := newLDAPHandler(t, sambaLDAPConfig(dc), func(h *Handler) {
			h.Throttle = &ThrottleConfig{Failures: throttleAt, Window: caddy.Duration(15 * time.Minute)}
		})
		guesses := make([]string, 300)
		for i := range guesses {
			guesses[i] = "heidi"
		}
		codes := tally(t, "heidi", lh.attack("198.51.100.77", guesses, 32), 15*time.Minute)
		// Heidi herself, right password, another address: the per-user
		// throttle refuses her too for the window, by design; what must
		// hold is that AD never locked her.
		w := lh.loginFrom("192.0.2.20", "heidi", sambadc.Heidi.Password)
		n := badPwdCount(t, admin, sambadc.Heidi.DN)
		t.Logf("300 wrong passwords for heidi (AD lockout threshold %d, throttle %d): %v; badPwdCount %d; heidi herself then: %d",
			sambadc.LockoutThreshold, throttleAt, codes, n, w.Code)
		if n != throttleAt || codes[http.StatusUnauthorized] != throttleAt {
			t.Errorf("badPwdCount %d, responses %v; want %d wrong passwords reaching the DC", n, codes, throttleAt)
		}
		if w.Code != http.StatusTooManyRequests {
			t.Errorf("heidi right after the attack: %d, want 429 (the per-user throttle)", w.Code)
		}
		// She is not locked in AD: a direct bind with her password works
		// (and clears the count).
		if err := serverproc.Dial(t, dc.LDAPURL, nil).Bind(sambadc.Heidi.DN, sambadc.Heidi.Password); err != nil {
			t.Errorf("heidi's own bind after the attack: %v", err)
		}
		t.Logf("no lockout: %v", time.Since(start).Round(time.Millisecond))
	})
}

// median returns the middle of ds (sorted in place).
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// TestLDAPUserEnumerationTiming: an attacker who times the sign-in form
// must not learn which usernames exist. With a service account, a known
// name with a wrong password costs the DC a search and a refused bind (the
// hash check and the badPwdCount update); an unknown name only the search.
// The median response times of the two, over interleaved tries through the
// handler against a real DC, must differ by less than half what the DC
// takes to refuse a password: an implementation that skips the bind for an
// unknown name (as this one did: about 3.8 ms against 0.3 ms) fails.
func TestLDAPUserEnumerationTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing: not in -short")
	}
	if raceEnabled {
		t.Skip("timing: the race detector distorts it")
	}
	dc := sambadc.Start(t)
	t.Setenv("ADAUTH_TEST_LDAP_PASSWORD", dc.ServicePassword)
	// A domain with a lockout policy, as in production: the DC then also
	// records each bad password, which is part of what a refusal costs.
	recordBadPasswords(t, dc)
	// newLDAPHandler's throttle (1000 per user, 4000 per address) stays out
	// of the way: every try below must be a 401.
	lh := newLDAPHandler(t, sambaLDAPConfig(dc), nil)

	// What the DC takes to refuse a password, timed on a bare connection.
	c := dc.Conn(t, dc.ServiceDN, dc.ServicePassword)
	var refusals []time.Duration
	for range 15 {
		start := time.Now()
		if err := c.Bind(sambadc.Carol.DN, "Not.Her.Password"); err == nil {
			t.Fatal("carol bound with a wrong password")
		}
		refusals = append(refusals, time.Since(start))
	}
	refusal := median(refusals)
	tolerance := refusal / 2

	try := func(username string) time.Duration {
		start := time.Now()
		w := lh.login(username, "Wrong.Pass.1")
		took := time.Since(start)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("%s: status %d", username, w.Code)
		}
		return took
	}
	for i := range 5 { // warm the pools
		try("bob")
		try(fmt.Sprintf("warm-ghost%d", i))
	}
	const tries = 40
	// A noisy machine gets three rounds; a real leak fails every one.
	for round := 1; ; round++ {
		var known, unknown []time.Duration
		for i := range tries {
			ghost := fmt.Sprintf("ghost%d-%02d", round, i) // never the same unknown name twice
			if rand.IntN(2) == 0 {
				known = append(known, try("bob"))
				unknown = append(unknown, try(ghost))
			} else {
				unknown = append(unknown, try(ghost))
				known = append(known, try("bob"))
			}
		}
		mk, mu := median(known), median(unknown)
		diff := mk - mu
		t.Logf("round %d: median over %d tries each: known user, wrong password %v; unknown user %v; difference %v "+
			"(tolerance %v: half the DC's median refusal of a password, %v)", round, tries, mk, mu, diff, tolerance, refusal)
		if diff.Abs() < tolerance {
			return
		}
		if round == 3 {
			t.Fatalf("known and unknown usernames are answered %v apart (known minus unknown): user enumeration by timing", diff)
		}
	}
}
