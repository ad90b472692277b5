// Package slapdtest runs a real OpenLDAP slapd 2.5 for tests, with its own
// cn=config (slapadd -n 0 -F DIR/slapd.d), the memberof, refint and ppolicy
// overlays, TLS from internal/testpki, and the fixture loaded online.
//
// # Usage
//
//	s := slapdtest.Start(t)             // ~0.1–0.3 s; killed and removed at the test's end
//	s.URL, s.LDAPSURL                   // "ldap://127.0.0.1:PORT" (StartTLS), "ldaps://127.0.0.1:PORT2"
//	s.CAFile, s.TLSConfig()             // fixture CA; s.PKI.Other() is an unrelated CA
//	s.ServiceDN, s.ServicePassword      // search-bind account
//	slapdtest.Alice.DN, slapdtest.Alice.Password
//	s.Stop(); s.Restart(t)              // a dead server, and back (same ports and data)
//
// Start skips the test when slapd is not installed (fails with
// ADAUTH_REQUIRE_SERVERS=1). Every Start gets a fresh directory, so tests may
// change it (bind as AdminDN, the rootdn, which bypasses ACLs and ppolicy).
//
// # Fixture (BaseDN dc=hospital,dc=test)
//
// Users are inetOrgPerson entries uid=NAME,ou=people,dc=hospital,dc=test
// (the service account is uid=svc-qa,ou=services,…) with cn, sn, givenName,
// mail; groups are groupOfNames cn=NAME,ou=groups,… and memberOf is
// maintained by the memberof overlay.
//
//	var      uid      password              direct groups (memberOf)                          bind with right password
//	Alice    alice    Alice.Pass.2026       QA-Physicists, QA-Staff, QA-Radiology\, Nuclear   ok (Alice Andersen, alice@hospital.test)
//	Bob      bob      Bob.Pass.2026         QA-Therapists-Nested (member of QA-Therapists)    ok; nested: QA-Therapists
//	Carol    carol    Carol.Pass.2026       QA-Admins                                         ok
//	Dave     dave     Dave.Pass.2026        QA-Staff                                          49, ppolicy accountLocked (pwdAccountLockedTime 000001010000Z)
//	Erin     erin     Erin.Pass.2026        QA-Staff                                          succeeds, ppolicy changeAfterReset; later searches fail with 50
//	Frank    frank    Frank.Pass.2026       QA-Staff                                          49, ppolicy passwordExpired (pwdMaxAge 30 d, changed 2020)
//	Heidi    heidi    Heidi.Pass.2026       QA-Staff                                          ok; after 3 wrong passwords 49 accountLocked (30 min)
//	Juergen  jürgen   Juergen.Pass.2026     QA-Physicists                                     ok (cn Jürgen Müller)
//	Mallory  mallory  p*)(|(uid=*)\00"'$;&  QA-Staff                                          ok (\00 is backslash, zero, zero)
//	Oscar    oscar    Oscar.Pass.2026       (none)                                            ok
//	Service  svc-qa   Svc.Qa.Pass.2026      (none)                                            ok
//	(rootdn) cn=admin,dc=hospital,dc=test   Admin.Pass.2026
//
// Differences from AD that the fixture shows (see TESTING.md): every failed
// bind is a plain 49 (the reason is only in the ppolicy response control,
// sent because olcPPolicyUseLockout is TRUE); an empty password
// (unauthenticated bind) is 53; the 1.2.840.113556.1.4.1941 rule matches
// nothing (resolve nesting by recursive (member=<DN>) searches); DNs come
// back as cn=QA-Radiology\2C Nuclear,… (compare parsed DNs); anonymous
// searches see nothing (32 on the base); passwords are stored hashed
// (olcPPolicyHashCleartext). There is no disabled or account-expired state.
package slapdtest
