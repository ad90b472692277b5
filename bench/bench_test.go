// Package bench measures adauth as users run it: a real Caddy process in
// front of a small upstream, loaded with wrk on loopback, against a real
// Samba AD DC. Run it with bench/run.sh; it writes the tables that
// BENCHMARKS.md quotes.
package bench

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-adauth/adauth/internal/caddyrun"
	"github.com/caddy-adauth/adauth/internal/sambadc"
	"github.com/caddy-adauth/adauth/internal/testenv"
	"golang.org/x/crypto/bcrypt"
)

// config is one site of the benchmark Caddy, measured with the same load.
type config struct {
	name    string
	port    int
	headers []string // for wrk -H
}

func TestBenchmarks(t *testing.T) {
	if os.Getenv("ADAUTH_BENCH") != "1" {
		t.Skip("benchmarks run with bench/run.sh (ADAUTH_BENCH=1)")
	}
	wrk := testenv.NeedCommand(t, "wrk")
	dc := sambadc.Start(t)

	// The upstream: as small as possible, so the gate's cost shows.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = up.Serve(l) }()
	t.Cleanup(func() { _ = up.Close() })

	dir := t.TempDir()
	users := filepath.Join(dir, "users.json")
	bh, _ := bcrypt.GenerateFromPassword([]byte("bench-pass"), bcrypt.DefaultCost)
	if err := os.WriteFile(users, []byte(`{"users":[{"username":"bench","password":"`+string(bh)+`","groups":["physics"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	caddyHash, _ := bcrypt.GenerateFromPassword([]byte("bench-pass"), 14) // caddy hash-password's default cost

	ports := make([]int, 6)
	for i := range ports {
		ports[i] = caddyrun.FreePort(t)
	}
	upstream := l.Addr().String()
	ldapBlock := fmt.Sprintf(`ldap {
			url           %s
			ca_file       %s
			domain        %s
			upn_suffix    %s
			base_dn       "%s"
			bind_dn       "%s"
			bind_password "%s"
			cache         5m
		}`, dc.LDAPSURL, dc.CAFile, dc.Domain, dc.UPNSuffix, dc.BaseDN, dc.ServiceDN, dc.ServicePassword)
	cf := fmt.Sprintf(`{
	admin {ADMIN}
	storage file_system {STORAGE}
	auto_https off
	log {
		level ERROR
	}
}
# bare reverse_proxy
http://127.0.0.1:%[1]d {
	reverse_proxy %[7]s
}
# adauth, signed-in session cookie
http://127.0.0.1:%[2]d {
	adauth {
		local %[8]s
		throttle 1000 1m
	}
	reverse_proxy %[7]s
}
# Caddy's own basic_auth, bcrypt with its hash cache
http://127.0.0.1:%[3]d {
	basic_auth {
		bench %[9]s
	}
	reverse_proxy %[7]s
}
# adauth basic_auth against the local file
http://127.0.0.1:%[4]d {
	adauth {
		local %[8]s
		basic_auth
		throttle 1000 1m
	}
	reverse_proxy %[7]s
}
# adauth basic_auth against Samba AD (credential cache on)
http://127.0.0.1:%[5]d {
	adauth {
		basic_auth
		throttle 1000 1m
		%[10]s
	}
	reverse_proxy %[7]s
}
# adauth sign-in form against Samba AD
http://127.0.0.1:%[6]d {
	adauth {
		throttle 1000 1m
		%[10]s
	}
	reverse_proxy %[7]s
}
`, ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], upstream, users, caddyHash, ldapBlock)
	in := caddyrun.Start(t, cf, caddyrun.Options{})
	rssStart := rss(t, in.PID())

	cookie := signInCookie(t, ports[1], "bench", "bench-pass")
	basicLocal := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("bench:bench-pass"))
	basicAD := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(sambadc.Alice.NetBIOS()+":"+sambadc.Alice.Password))
	configs := []config{
		{"bare reverse_proxy", ports[0], nil},
		{"adauth, signed-in session", ports[1], []string{"Cookie: " + cookie}},
		{"Caddy basic_auth (bcrypt, hash cache)", ports[2], []string{basicLocal}},
		{"adauth basic_auth, local file", ports[3], []string{basicLocal}},
		{"adauth basic_auth, Samba AD (cached)", ports[4], []string{basicAD}},
	}
	// Every configuration must answer 200 before it is measured.
	for _, c := range configs {
		if code := get(t, c.port, c.headers); code != 200 {
			t.Fatalf("%s answers %d", c.name, code)
		}
	}

	const rounds = 3
	rps := map[string][]float64{}
	p99 := map[string][]float64{}
	for r := 0; r < rounds; r++ { // alternate, so drift hits every config alike
		for _, c := range configs {
			q, l := runWrk(t, wrk, c)
			rps[c.name] = append(rps[c.name], q)
			p99[c.name] = append(p99[c.name], l)
		}
	}
	rssAfterLoad := rss(t, in.PID())

	var out bytes.Buffer
	fmt.Fprintf(&out, "Machine: %d cores (%s), Go %s, wrk -t2 -c32 -d5s, median of %d alternating rounds.\n\n", runtime.NumCPU(), cpuModel(), runtime.Version(), rounds)
	fmt.Fprintf(&out, "| configuration | requests/s | vs bare | p99 | vs bare |\n|---|---:|---:|---:|---:|\n")
	bareRPS, bareP99 := median(rps[configs[0].name]), median(p99[configs[0].name])
	for _, c := range configs {
		q, l := median(rps[c.name]), median(p99[c.name])
		fmt.Fprintf(&out, "| %s | %.0f | %.0f%% | %.2f ms | %.2fx |\n", c.name, q, 100*q/bareRPS, l, l/bareP99)
	}

	// Sign-ins per second against Samba, through the form.
	fmt.Fprintf(&out, "\n| concurrent sign-ins (Samba AD, form) | sign-ins | wall time | sign-ins/s |\n|---:|---:|---:|---:|\n")
	var serial32 time.Duration
	for _, conc := range []int{1, 8, 32} {
		n := 32
		wall := signIns(t, ports[5], conc, n)
		if conc == 1 {
			serial32 = wall
		}
		fmt.Fprintf(&out, "| %d | %d | %s | %.1f |\n", conc, n, wall.Round(time.Millisecond), float64(n)/wall.Seconds())
		if conc == 32 {
			fmt.Fprintf(&out, "\n32 concurrent sign-ins finished %.1fx faster than 32 serial ones.\n", serial32.Seconds()/wall.Seconds())
		}
	}
	rssEnd := rss(t, in.PID())
	fmt.Fprintf(&out, "\nCaddy RSS: %d MiB at start, %d MiB after the wrk runs, %d MiB after the sign-ins.\n", rssStart>>10, rssAfterLoad>>10, rssEnd>>10)

	t.Log("\n" + out.String())
	if p := os.Getenv("ADAUTH_BENCH_OUT"); p != "" {
		if err := os.WriteFile(p, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	reRPS = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reP99 = regexp.MustCompile(`\n\s+99%\s+([0-9.]+)(us|ms|s)`)
)

func runWrk(t *testing.T, wrk string, c config) (rps, p99ms float64) {
	t.Helper()
	args := []string{"-t2", "-c32", "-d5s", "--latency"}
	for _, h := range c.headers {
		args = append(args, "-H", h)
	}
	args = append(args, fmt.Sprintf("http://127.0.0.1:%d/", c.port))
	out, err := exec.Command(wrk, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("wrk %s: %v\n%s", c.name, err, out)
	}
	if strings.Contains(string(out), "Non-2xx") {
		t.Fatalf("%s: wrk saw non-2xx answers:\n%s", c.name, out)
	}
	m := reRPS.FindSubmatch(out)
	l := reP99.FindSubmatch(out)
	if m == nil || l == nil {
		t.Fatalf("cannot read wrk output:\n%s", out)
	}
	rps, _ = strconv.ParseFloat(string(m[1]), 64)
	p99ms, _ = strconv.ParseFloat(string(l[1]), 64)
	switch string(l[2]) {
	case "us":
		p99ms /= 1000
	case "s":
		p99ms *= 1000
	}
	return rps, p99ms
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func get(t *testing.T, port int, headers []string) int {
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func signInCookie(t *testing.T, port int, user, pass string) string {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(fmt.Sprintf("http://127.0.0.1:%d/adauth/login", port), url.Values{"username": {user}, "password": {pass}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "adauth" {
			return ck.Name + "=" + ck.Value
		}
	}
	t.Fatalf("sign-in as %s: %d, no cookie", user, resp.StatusCode)
	return ""
}

// signIns runs n form sign-ins as alice against the AD site, conc at a
// time, and returns the wall time. Every one must succeed.
func signIns(t *testing.T, port, conc, n int) time.Duration {
	t.Helper()
	var wg sync.WaitGroup
	work := make(chan int, n)
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	var failMu sync.Mutex
	var fails []string
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			for range work {
				resp, err := c.PostForm(fmt.Sprintf("http://127.0.0.1:%d/adauth/login", port),
					url.Values{"username": {sambadc.Alice.SAM}, "password": {sambadc.Alice.Password}})
				if err != nil || resp.StatusCode != http.StatusSeeOther {
					failMu.Lock()
					fails = append(fails, fmt.Sprint(err, resp))
					failMu.Unlock()
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if len(fails) > 0 {
		t.Fatalf("%d of %d sign-ins failed: %s", len(fails), n, fails[0])
	}
	return wall
}

// rss reads a process's resident set in KiB.
func rss(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			_, v, _ := strings.Cut(line, ":")
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
