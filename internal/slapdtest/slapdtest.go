package slapdtest

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/caddy-adauth/adauth/internal/serverproc"
	"github.com/caddy-adauth/adauth/internal/testenv"
	"github.com/caddy-adauth/adauth/internal/testpki"
)

// Server is a running slapd with the fixture directory loaded.
type Server struct {
	URL      string // ldap://127.0.0.1:PORT (StartTLS available)
	LDAPSURL string // ldaps://127.0.0.1:PORT2
	Host     string // 127.0.0.1
	Port     int
	TLSPort  int
	CAFile   string       // CA PEM that signed the server certificate
	PKI      *testpki.PKI // the same, parsed; PKI.Other() is an unrelated CA

	BaseDN          string // dc=hospital,dc=test
	ServiceDN       string // uid=svc-qa,ou=services,dc=hospital,dc=test
	ServicePassword string
	AdminDN         string // cn=admin,dc=hospital,dc=test (rootdn: bypasses ppolicy and ACLs)
	AdminPassword   string

	Dir string // config, data and log

	proc serverproc.Proc // slapd itself
}

// Start returns a running slapd on free 127.0.0.1 ports with the fixture
// users loaded, stopped and removed at the test's end. It skips the test when
// slapd is not installed (fails with ADAUTH_REQUIRE_SERVERS=1).
func Start(t testing.TB) *Server {
	t.Helper()
	testenv.NeedCommand(t, "slapd")
	testenv.NeedCommand(t, "slapadd")
	t0 := time.Now()
	dir, err := serverproc.TempDir("adauth-slapd-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		Host: "127.0.0.1", BaseDN: BaseDN,
		ServiceDN: Service.DN, ServicePassword: Service.Password,
		AdminDN: AdminDN, AdminPassword: AdminPassword, Dir: dir,
	}
	s.proc = serverproc.Proc{Name: "slapd", LogFile: filepath.Join(dir, "slapd.log"),
		Timeout: 10 * time.Second, Poll: 20 * time.Millisecond}
	t.Cleanup(func() {
		s.Stop()
		_ = os.RemoveAll(dir)
	})
	s.PKI = testpki.New(t, filepath.Join(dir, "tls"))
	s.PKI.Other()
	s.CAFile = s.PKI.CAFile
	if err := s.configure(); err != nil {
		t.Fatalf("slapdtest: %v", err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ { // free ports can be taken in between
		if lastErr = s.start(); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("slapdtest: %v", lastErr)
	}
	started := time.Since(t0)
	if err := s.load(); err != nil {
		t.Fatalf("slapdtest: loading the fixture: %v\n%s", err, s.LogTail(30))
	}
	t.Logf("slapdtest: slapd on %s up in %v, fixture loaded in %v", s.URL, started.Round(time.Millisecond),
		(time.Since(t0) - started).Round(time.Millisecond))
	return s
}

func (s *Server) configure() error {
	for _, d := range []string{"slapd.d", "data"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o700); err != nil {
			return err
		}
	}
	ldif := filepath.Join(s.Dir, "config.ldif")
	if err := os.WriteFile(ldif, []byte(s.configLDIF()), 0o600); err != nil {
		return err
	}
	out, err := exec.Command("slapadd", "-n", "0", "-F", filepath.Join(s.Dir, "slapd.d"), "-l", ldif).CombinedOutput()
	if err != nil {
		return fmt.Errorf("slapadd -n 0: %v\n%s", err, out)
	}
	return nil
}

func (s *Server) configLDIF() string {
	return fmt.Sprintf(`dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: %[1]s/slapd.pid
olcArgsFile: %[1]s/slapd.args
olcTLSCACertificateFile: %[2]s
olcTLSCertificateFile: %[3]s
olcTLSCertificateKeyFile: %[4]s

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: memberof
olcModuleLoad: refint
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

include: file:///etc/ldap/schema/nis.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcAccess: {0}to dn.base="" by * read
olcAccess: {1}to dn.base="cn=Subschema" by * read

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: %[5]s
olcRootDN: %[6]s
olcRootPW: %[7]s
olcDbDirectory: %[1]s/data
olcDbMaxSize: 67108864
olcDbIndex: objectClass eq
olcDbIndex: uid,cn,mail eq,sub
olcDbIndex: member,memberOf eq
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by users read by * none

dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={1}refint,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {1}refint
olcRefintAttribute: member

dn: olcOverlay={2}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {2}ppolicy
olcPPolicyDefault: %[8]s
olcPPolicyHashCleartext: TRUE
olcPPolicyUseLockout: TRUE
`, s.Dir, s.PKI.CAFile, s.PKI.CertFile, s.PKI.KeyFile, BaseDN, AdminDN, AdminPassword, DefaultPolicyDN)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start launches slapd, on new free ports unless it has run before (a
// restart keeps the ports), and waits until both ports answer.
func (s *Server) start() error {
	err := s.proc.Start(func() (*exec.Cmd, error) {
		if s.Port == 0 {
			p1, err := freePort()
			if err != nil {
				return nil, err
			}
			p2, err := freePort()
			if err != nil {
				return nil, err
			}
			s.Port, s.TLSPort = p1, p2
			s.URL = "ldap://127.0.0.1:" + strconv.Itoa(p1)
			s.LDAPSURL = "ldaps://127.0.0.1:" + strconv.Itoa(p2)
		}
		// -d keeps slapd in the foreground as our child; "none" logs nothing but
		// errors that slapd prints regardless (stats would log every operation).
		return exec.Command("slapd", "-d", "none", "-F", filepath.Join(s.Dir, "slapd.d"),
			"-h", s.URL+"/ "+s.LDAPSURL+"/"), nil
	}, s.ping)
	if err != nil {
		s.Port = 0 // the ports may have been taken in between: try others
	}
	return err
}

func (s *Server) ping() error {
	for _, u := range []string{s.URL, s.LDAPSURL} {
		if _, err := serverproc.RootDSE(u, &tls.Config{RootCAs: s.PKI.CAPool}, "namingContexts"); err != nil {
			return err
		}
	}
	return nil
}

// load adds the fixture online (the memberOf overlay ignores offline loads).
func (s *Server) load() error {
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Bind(AdminDN, AdminPassword); err != nil {
		return err
	}
	add := func(dn string, attrs map[string][]string, controls ...ldap.Control) error {
		r := ldap.NewAddRequest(dn, controls)
		for _, k := range sortedKeys(attrs) {
			r.Attribute(k, attrs[k])
		}
		if err := c.Add(r); err != nil {
			return fmt.Errorf("add %s: %w", dn, err)
		}
		return nil
	}
	entries := []struct {
		dn    string
		attrs map[string][]string
	}{
		{BaseDN, map[string][]string{"objectClass": {"dcObject", "organization"}, "dc": {"hospital"}, "o": {"Hospital"}}},
		{PeopleOU, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"people"}}},
		{GroupsOU, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"groups"}}},
		{ServicesOU, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"services"}}},
		{PoliciesOU, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"policies"}}},
		{DefaultPolicyDN, map[string][]string{"objectClass": {"organizationalRole", "pwdPolicy"}, "cn": {"default"},
			"pwdAttribute": {"userPassword"}, "pwdMustChange": {"TRUE"}, "pwdLockout": {"TRUE"}, "pwdMaxFailure": {"0"}, "pwdAllowUserChange": {"TRUE"}}},
		{LockoutPolicyDN, map[string][]string{"objectClass": {"organizationalRole", "pwdPolicy"}, "cn": {"lockout"},
			"pwdAttribute": {"userPassword"}, "pwdMustChange": {"TRUE"}, "pwdLockout": {"TRUE"},
			"pwdMaxFailure": {strconv.Itoa(LockoutThreshold)}, "pwdLockoutDuration": {"1800"}, "pwdFailureCountInterval": {"1800"}}},
	}
	entries = append(entries, struct {
		dn    string
		attrs map[string][]string
	}{ExpiryPolicyDN, map[string][]string{"objectClass": {"organizationalRole", "pwdPolicy"}, "cn": {"expiry"},
		"pwdAttribute": {"userPassword"}, "pwdMaxAge": {"2592000"}, "pwdGraceAuthNLimit": {"0"}, "pwdLockout": {"TRUE"}}})
	for _, e := range entries {
		if err := add(e.dn, e.attrs); err != nil {
			return err
		}
	}
	for _, u := range Users() {
		attrs := map[string][]string{
			"objectClass":  {"inetOrgPerson"},
			"uid":          {u.UID},
			"cn":           {u.CN},
			"sn":           {u.Surname},
			"userPassword": {u.Password},
		}
		if u.GivenName != "" {
			attrs["givenName"] = []string{u.GivenName}
		}
		if u.Mail != "" {
			attrs["mail"] = []string{u.Mail}
		}
		if u.lockoutPolicy {
			attrs["pwdPolicySubentry"] = []string{LockoutPolicyDN}
		}
		var controls []ldap.Control
		if u.State == StateExpired {
			attrs["pwdPolicySubentry"] = []string{ExpiryPolicyDN}
			attrs["pwdChangedTime"] = []string{"20200101000000Z"}
			controls = append(controls, ldap.NewControlString(relaxOID, true, ""))
		}
		if err := add(u.DN, attrs, controls...); err != nil {
			return err
		}
		switch u.State {
		case StateLocked:
			// 000001010000Z: locked until an administrator unlocks.
			if err := c.Modify(modify(u.DN, "pwdAccountLockedTime", "000001010000Z")); err != nil {
				return fmt.Errorf("lock %s: %w", u.UID, err)
			}
		case StateMustChange:
			if err := c.Modify(modify(u.DN, "pwdReset", "TRUE")); err != nil {
				return fmt.Errorf("pwdReset %s: %w", u.UID, err)
			}
		}
	}
	members := map[string][]string{}
	for _, u := range Users() {
		for _, g := range u.Groups {
			members[g] = append(members[g], u.DN)
		}
	}
	members["QA-Therapists"] = append(members["QA-Therapists"], GroupTherapistsNested)
	for _, g := range []struct{ cn, dn string }{
		{"QA-Physicists", GroupPhysicists}, {"QA-Staff", GroupStaff}, {"QA-Therapists-Nested", GroupTherapistsNested},
		{"QA-Therapists", GroupTherapists}, {"QA-Admins", GroupAdmins}, {"QA-Radiology, Nuclear", GroupRadiology},
	} {
		if err := add(g.dn, map[string][]string{"objectClass": {"groupOfNames"}, "cn": {g.cn}, "member": members[g.cn],
			"description": {"adauth test fixture group"}}); err != nil {
			return err
		}
	}
	return nil
}

// relaxOID is the Relax Rules control (draft-zeilenga-ldap-relax): lets the
// rootdn write operational attributes such as pwdChangedTime.
const relaxOID = "1.3.6.1.4.1.4203.666.5.12"

func modify(dn, attr, val string) *ldap.ModifyRequest {
	m := ldap.NewModifyRequest(dn, nil)
	m.Replace(attr, []string{val})
	return m
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// objectClass first keeps the request readable in logs; order is otherwise irrelevant.
	for i := range keys {
		if keys[i] == "objectClass" {
			keys[0], keys[i] = keys[i], keys[0]
		}
	}
	return keys
}

// TLSConfig returns a client TLS configuration trusting the fixture CA and
// verifying 127.0.0.1 (go-ldap's StartTLS needs ServerName set).
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.PKI.CAPool, ServerName: s.Host, MinVersion: tls.VersionTLS12}
}

// Conn dials the server and binds as dn/password, closing at the test's end.
func (s *Server) Conn(t testing.TB, dn, password string) *ldap.Conn {
	t.Helper()
	return serverproc.Bind(t, s.URL, nil, dn, password)
}

// Stop kills slapd (to test a dead server); idempotent. Restart revives it
// on the same ports with the same data.
func (s *Server) Stop() { s.proc.Stop() }

// Restart starts a stopped server again on the same ports and data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("slapdtest: %v", err)
	}
}

// LogTail returns the last n lines of slapd's output.
func (s *Server) LogTail(n int) string { return s.proc.LogTail(n) }
