package sambadc

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/caddy-adauth/adauth/internal/serverproc"
	"github.com/caddy-adauth/adauth/internal/testenv"
	"github.com/caddy-adauth/adauth/internal/testpki"
)

//go:embed populate.py
var populateScript []byte

// python is Debian's interpreter, the one with the samba module (a pyenv
// python3 earlier on PATH lacks it).
const python = "/usr/bin/python3"

// First and last loopback addresses a DC may take (the fixture certificate
// covers them all). 127.0.0.1 is left to other servers.
const (
	firstIP = 2
	lastIP  = 40
)

// startTimeout bounds how long Start waits for the rootDSE to answer.
const startTimeout = 30 * time.Second

// DC is a running Samba AD domain controller on its own loopback address.
type DC struct {
	IP       string       // 127.0.0.N
	LDAPURL  string       // ldap://127.0.0.N (port 389; StartTLS available)
	LDAPSURL string       // ldaps://127.0.0.N (port 636)
	CAFile   string       // PEM CA that signed the DC's certificate (SANs: 127.0.0.1–40, localhost, dc1.hospital.test)
	PKI      *testpki.PKI // the same CA parsed; PKI.Other() is an unrelated CA that must be refused

	Realm, Domain, BaseDN, UPNSuffix string // HOSPITAL.TEST, HOSPITAL, DC=hospital,DC=test, hospital.test

	ServiceDN       string // CN=svc-qa,CN=Users,DC=hospital,DC=test
	ServicePassword string
	AdminDN         string // CN=Administrator,CN=Users,DC=hospital,DC=test
	AdminPassword   string

	Dir string // this DC's private copy of the database, config and logs

	proc serverproc.Proc // samba itself
	lock *os.File        // flock on the IP, held until the test's cleanup
}

// Start returns a running AD DC on a free loopback address (127.0.0.2 when
// nothing else uses it), stopped and removed at the test's end. It skips the
// test when Samba is not installed (fails instead with
// ADAUTH_REQUIRE_SERVERS=1).
func Start(t testing.TB) *DC {
	t.Helper()
	return StartN(t, 1)[0]
}

// StartN starts n DCs on n loopback addresses, each from an independent copy
// of the same provisioned database (no replication between them: a change
// made on one is not seen by the others).
func StartN(t testing.TB, n int) []*DC {
	t.Helper()
	need(t)
	c := loadCache(t)
	dcs := make([]*DC, 0, n)
	for i := 0; i < n; i++ {
		dcs = append(dcs, startOne(t, c))
	}
	return dcs
}

func need(t testing.TB) {
	t.Helper()
	testenv.NeedCommand(t, "samba")
	testenv.NeedCommand(t, "samba-tool")
	testenv.NeedCommand(t, "faketime")
	if _, err := os.Stat(python); err != nil {
		if testenv.RequireServers() {
			t.Fatalf("sambadc: %s is required: %v", python, err)
		}
		t.Skipf("sambadc: %s missing: %v", python, err)
	}
}

// cache is the provisioned, populated, never started directory shared by
// every DC (copied per DC).
type cache struct {
	dir     string // .../db is the provisioned target dir, .../tls the PKI
	pki     *testpki.PKI
	timings Timings
}

// Timings are measured while building the cache (zero when it was reused).
type Timings struct {
	Provision time.Duration `json:"provision"`
	Populate  time.Duration `json:"populate"`
	Reused    bool          `json:"-"`
}

var (
	cacheOnce sync.Once
	cacheVal  *cache
	cacheErr  error
)

func loadCache(t testing.TB) *cache {
	t.Helper()
	cacheOnce.Do(func() { cacheVal, cacheErr = buildCache() })
	if cacheErr != nil {
		t.Fatalf("sambadc: preparing the fixture directory: %v", cacheErr)
	}
	return cacheVal
}

// CacheTimings reports how long provisioning and populating took in this
// process (Reused when an earlier run's cache was found).
func CacheTimings() Timings {
	if cacheVal == nil {
		return Timings{}
	}
	return cacheVal.timings
}

func cacheKey() string {
	h := sha256.New()
	h.Write(populateScript)
	h.Write(fixtureSpec())
	fmt.Fprint(h, provisionArgs("X"), Realm, Domain, AdminPassword, testpki.DefaultHosts(), "v3")
	if out, err := exec.Command("samba", "-V").Output(); err == nil {
		h.Write(out)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func provisionArgs(target string) []string {
	return []string{"/usr/bin/samba-tool", "domain", "provision",
		"--targetdir=" + target, "--realm=" + Realm, "--domain=" + Domain,
		"--server-role=dc", "--dns-backend=NONE", "--use-rfc2307", "--host-name=dc1",
		"--adminpass=" + AdminPassword,
		"--option=interfaces=127.0.0.1/8", "--option=bind interfaces only=yes"}
}

// buildCache provisions and populates the fixture once per machine (per
// fixture definition and Samba version): under os.TempDir()/adauth-samba-cache-<hash>,
// guarded by a lock file so parallel test processes build it only once.
func buildCache() (*cache, error) {
	dir := filepath.Join(os.TempDir(), "adauth-samba-cache-"+cacheKey())
	lf, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return nil, err
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)

	c := &cache{dir: dir}
	if b, err := os.ReadFile(filepath.Join(dir, "ready")); err == nil {
		c.pki, err = testpki.Load(filepath.Join(dir, "tls"))
		if err == nil {
			_ = json.Unmarshal(b, &c.timings)
			c.timings.Reused = true
			return c, nil
		}
	}
	_ = os.RemoveAll(dir)
	build := dir + ".build"
	_ = os.RemoveAll(build)
	if err := os.MkdirAll(build, 0o700); err != nil {
		return nil, err
	}
	db := filepath.Join(build, "db")

	t0 := time.Now()
	if out, err := run(python, provisionArgs(db)...); err != nil {
		return nil, fmt.Errorf("provision: %v\n%s", err, serverproc.Tail(out, 40))
	}
	c.timings.Provision = time.Since(t0)

	t0 = time.Now()
	specFile := filepath.Join(build, "spec.json")
	scriptFile := filepath.Join(build, "populate.py")
	if err := os.WriteFile(specFile, fixtureSpec(), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(scriptFile, populateScript, 0o600); err != nil {
		return nil, err
	}
	conf := filepath.Join(db, "etc", "smb.conf")
	if out, err := run(python, scriptFile, conf, specFile, "main"); err != nil {
		return nil, fmt.Errorf("populate: %v\n%s", err, serverproc.Tail(out, 40))
	}
	// Passwords that must look old are set with the clock turned back.
	if out, err := run("faketime", "-f", "-50d", python, scriptFile, conf, specFile, "aged"); err != nil {
		return nil, fmt.Errorf("populate (aged passwords, faketime): %v\n%s", err, serverproc.Tail(out, 40))
	}
	c.timings.Populate = time.Since(t0)
	_ = os.Remove(specFile) // holds the passwords; the script is kept for reference

	p, err := testpki.Generate(filepath.Join(build, "tls"))
	if err != nil {
		return nil, err
	}
	p.Other()
	b, _ := json.Marshal(c.timings)
	if err := os.WriteFile(filepath.Join(build, "ready"), b, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(build, dir); err != nil {
		return nil, err
	}
	sweepOldCaches(dir)
	c.pki, err = testpki.Load(filepath.Join(dir, "tls"))
	return c, err
}

// sweepOldCaches removes caches of other fixture definitions (or Samba
// versions) not used for a day, so a developer's /tmp does not fill up with
// 35 MB copies.
func sweepOldCaches(keep string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "adauth-samba-cache-*"))
	for _, d := range dirs {
		if d == keep || strings.HasSuffix(d, ".lock") || strings.HasSuffix(d, ".build") {
			continue
		}
		st, err := os.Stat(filepath.Join(d, "ready"))
		if err != nil || time.Since(st.ModTime()) < 24*time.Hour {
			continue
		}
		lf, err := os.OpenFile(d+".lock", os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			continue
		}
		if syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			_ = os.RemoveAll(d)
		}
		lf.Close()
	}
}

// command is exec.Command with the system directories first on PATH, so that
// samba and its helpers are Debian's, not whatever a developer's PATH holds.
func command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin:"+os.Getenv("PATH"))
	return cmd
}

// run runs command(name, args...) and returns its combined output.
func run(name string, args ...string) ([]byte, error) {
	return command(name, args...).CombinedOutput()
}

// lockIP takes the first loopback address no other DC (in any process) holds
// and whose fixed Samba ports are free.
func lockIP() (string, *os.File, error) {
	for i := firstIP; i <= lastIP; i++ {
		ip := fmt.Sprintf("127.0.0.%d", i)
		f, err := os.OpenFile(filepath.Join(os.TempDir(), "adauth-samba-"+ip+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return "", nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		if portsFree(ip) {
			return ip, f, nil
		}
		f.Close() // a stray server (not ours) holds the ports
	}
	return "", nil, fmt.Errorf("no free loopback address in 127.0.0.%d–127.0.0.%d", firstIP, lastIP)
}

func portsFree(ip string) bool {
	for _, port := range []string{"389", "636", "3268", "3269"} {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, port))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

func startOne(t testing.TB, c *cache) *DC {
	t.Helper()
	ip, lock, err := lockIP()
	if err != nil {
		t.Fatalf("sambadc: %v", err)
	}
	// A short path: Samba's unix sockets live under it (108-byte limit).
	dir, err := serverproc.TempDir("adauth-dc-")
	if err != nil {
		lock.Close()
		t.Fatalf("sambadc: %v", err)
	}
	dc := &DC{
		IP: ip, LDAPURL: "ldap://" + ip, LDAPSURL: "ldaps://" + ip,
		CAFile: c.pki.CAFile, PKI: c.pki,
		Realm: Realm, Domain: Domain, BaseDN: BaseDN, UPNSuffix: UPNSuffix,
		ServiceDN: Service.DN, ServicePassword: Service.Password,
		AdminDN: AdminDN, AdminPassword: AdminPassword,
		Dir: dir, lock: lock,
	}
	dc.proc = serverproc.Proc{Name: "samba on " + ip, LogFile: filepath.Join(dir, "log", "stdout.log"),
		Timeout: startTimeout, Poll: 50 * time.Millisecond, Tail: func() string { return dc.logTail(40) }}
	t.Cleanup(func() {
		dc.Stop()
		dc.lock.Close()
		_ = os.RemoveAll(dir)
	})
	t0 := time.Now()
	if err := copyTree(filepath.Join(c.dir, "db"), dir); err != nil {
		t.Fatalf("sambadc: copying the database: %v", err)
	}
	for _, d := range []string{"log", "cache", "state", "bind-dns"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(dc.conf(), []byte(dc.smbConf()), 0o644); err != nil {
		t.Fatal(err)
	}
	copied := time.Since(t0)
	if err := dc.start(); err != nil {
		t.Fatalf("sambadc: %v", err)
	}
	t.Logf("sambadc: DC on %s up in %v (copy %v; cache: %s)", ip, time.Since(t0).Round(time.Millisecond),
		copied.Round(time.Millisecond), c.describe())
	return dc
}

func (c *cache) describe() string {
	if c.timings.Reused {
		return "reused " + c.dir
	}
	return fmt.Sprintf("provisioned in %v, populated in %v", c.timings.Provision.Round(time.Millisecond),
		c.timings.Populate.Round(time.Millisecond))
}

func (dc *DC) conf() string { return filepath.Join(dc.Dir, "etc", "smb.conf") }

func (dc *DC) smbConf() string {
	d := dc.Dir
	return fmt.Sprintf(`# written by internal/sambadc
[global]
	netbios name = DC1
	realm = %s
	workgroup = %s
	server role = active directory domain controller
	server services = ldap
	interfaces = %s/8
	bind interfaces only = yes
	ldap server require strong auth = no
	tls enabled = yes
	tls keyfile = %s
	tls certfile = %s
	tls cafile = %s
	private dir = %s/private
	lock directory = %s
	pid directory = %s
	state directory = %s/state
	cache directory = %s/cache
	binddns dir = %s/bind-dns
	log file = %s/log/samba.log
	logging = file
	log level = 1
	max log size = 0
	idmap_ldb:use rfc2307 = yes
`, Realm, Domain, dc.IP, dc.PKI.KeyFile, dc.PKI.CertFile, dc.PKI.CAFile, d, d, d, d, d, d, d)
}

// start launches samba in the foreground as our child and waits for the
// rootDSE to answer over LDAP and LDAPS.
func (dc *DC) start() error {
	return dc.proc.Start(func() (*exec.Cmd, error) {
		return command("samba", "-s", dc.conf(), "-M", "single", "--foreground", "--no-process-group",
			"--maximum-runtime=7200"), nil
	}, func() error {
		if err := rootDSE(dc.LDAPURL, nil); err != nil {
			return err
		}
		return rootDSE(dc.LDAPSURL, &tls.Config{RootCAs: dc.PKI.CAPool})
	})
}

// rootDSE checks that url answers as this domain's DC (not a stray server on
// the address).
func rootDSE(url string, tc *tls.Config) error {
	e, err := serverproc.RootDSE(url, tc, "defaultNamingContext")
	if err != nil {
		return err
	}
	if !strings.EqualFold(e.GetAttributeValue("defaultNamingContext"), BaseDN) {
		return errors.New("unexpected rootDSE")
	}
	return nil
}

// logTail returns the end of the DC's logs, for failure messages.
func (dc *DC) logTail(n int) string {
	var b bytes.Buffer
	for _, f := range []string{"samba.log", "stdout.log"} {
		data, err := os.ReadFile(filepath.Join(dc.Dir, "log", f))
		if err == nil && len(data) > 0 {
			fmt.Fprintf(&b, "--- %s ---\n%s\n", f, serverproc.Tail(data, n))
		}
	}
	return b.String()
}

// LogTail returns the last n lines of the DC's logs.
func (dc *DC) LogTail(n int) string { return dc.logTail(n) }

// Stop kills the DC (to test a dead DC): its address then refuses
// connections. The address stays reserved for this test until it ends.
// Stop is idempotent; Restart starts it again with the same database.
func (dc *DC) Stop() { dc.proc.Stop() }

// Restart starts a stopped DC again (same address, same database, state kept).
func (dc *DC) Restart(t testing.TB) {
	t.Helper()
	if err := dc.start(); err != nil {
		t.Fatalf("sambadc: %v", err)
	}
}

// Running reports whether the DC's process is alive.
func (dc *DC) Running() bool { return dc.proc.Running() }

// SambaTool runs samba-tool against this DC's own database (local sam.ldb,
// which the running DC serves at once) and returns its output, failing t on
// error. Example: dc.SambaTool(t, "user", "disable", "alice");
// dc.SambaTool(t, "group", "removemembers", "QA-Staff", "alice").
func (dc *DC) SambaTool(t testing.TB, args ...string) string {
	t.Helper()
	out, err := dc.SambaToolErr(args...)
	if err != nil {
		t.Fatalf("samba-tool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// SambaToolErr is SambaTool returning the error instead of failing a test.
func (dc *DC) SambaToolErr(args ...string) (string, error) {
	full := append([]string{"/usr/bin/samba-tool"}, args...)
	full = append(full, "-s", dc.conf(), "-H", "tdb://"+filepath.Join(dc.Dir, "private", "sam.ldb"))
	out, err := run(python, full...)
	return string(out), err
}

// TLSConfig returns a client TLS configuration trusting the fixture CA and
// verifying the DC's address. go-ldap's StartTLS needs ServerName set (its
// LDAPS dial fills it in from the URL; StartTLS does not).
func (dc *DC) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: dc.PKI.CAPool, ServerName: dc.IP, MinVersion: tls.VersionTLS12}
}

// Conn dials the DC over plain LDAP and binds as bindDN/password (go-ldap),
// closing the connection at the test's end.
func (dc *DC) Conn(t testing.TB, bindDN, password string) *ldap.Conn {
	t.Helper()
	return serverproc.Bind(t, dc.LDAPURL, nil, bindDN, password)
}

// copyTree copies src into dst (created), keeping file modes.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm())
		case info.Mode().IsRegular():
			return copyFile(p, target, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		}
		return nil // sockets and the like: not wanted in a copy
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
