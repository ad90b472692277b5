// Package sambadc runs real Samba 4.17 Active Directory domain controllers
// for tests: a provisioned HOSPITAL.TEST domain with fixture users, served
// over LDAP (389, StartTLS) and LDAPS (636) on a loopback address.
//
// # Usage
//
//	dc := sambadc.Start(t)              // one DC, e.g. on 127.0.0.2; killed at the test's end
//	dcs := sambadc.StartN(t, 2)         // two independent DCs (copies, no replication)
//	dc.LDAPURL, dc.LDAPSURL             // "ldap://127.0.0.2", "ldaps://127.0.0.2"
//	dc.CAFile                           // CA PEM for both; dc.PKI.Other().CAFile is a wrong CA
//	dc.ServiceDN, dc.ServicePassword    // search-bind account svc-qa
//	sambadc.Alice.UPN(), sambadc.Alice.Password, sambadc.Alice.DN, sambadc.Alice.NetBIOS()
//	dc.SambaTool(t, "user", "disable", "alice")            // change the directory mid-test
//	dc.SambaTool(t, "group", "removemembers", "QA-Staff", "alice")
//	dc.Stop()                           // a dead DC (connections refused); dc.Restart(t) revives it
//	dc.TLSConfig()                      // *tls.Config trusting the CA, ServerName = dc.IP (go-ldap's
//	                                    // StartTLS needs ServerName; ldaps:// URLs fill it in themselves)
//	dc.Conn(t, sambadc.Alice.UPN(), sambadc.Alice.Password) // a bound *ldap.Conn, closed at the end
//	dc.LogTail(50)                      // Samba's log, for failure messages
//
// Start skips the test when samba is not installed (fails with
// ADAUTH_REQUIRE_SERVERS=1); install with .ci/install-servers.sh. The domain
// is provisioned and populated once per machine and cached under
// os.TempDir()/adauth-samba-cache-<hash>; each DC gets its own copy of it, so
// tests may change users freely. Each DC takes a loopback address 127.0.0.2
// to 127.0.0.40 under a lock file (os.TempDir()/adauth-samba-127.0.0.N.lock),
// so test binaries running in parallel never collide on the fixed ports.
// Bind as HOSPITAL\user, user@hospital.test or the full DN (not a bare name).
//
// # Fixture (BaseDN DC=hospital,DC=test; groups in OU=Groups)
//
//	var      sAMAccountName  password           DN container  direct groups (memberOf)                  bind with right password
//	Alice    alice           Alice.Pass.2026    OU=Staff      QA-Physicists, QA-Staff, QA-Radiology\, Nuclear  ok (mail alice@hospital.test, Alice Andersen)
//	Bob      bob             Bob.Pass.2026      OU=Staff      QA-Therapists-Nested (⊂ QA-Therapists)     ok; nested: QA-Therapists
//	Carol    carol           Carol.Pass.2026    OU=Staff      QA-Admins                                 ok
//	Dave     dave            Dave.Pass.2026     OU=Staff      QA-Staff                                  533 disabled
//	Erin     erin            Erin.Pass.2026     OU=Staff      QA-Staff                                  773 must change password (pwdLastSet=0)
//	Frank    frank           Frank.Pass.2026    OU=Staff      QA-Staff                                  532 password expired (PSO max age 30 d, set 50 d ago)
//	Grace    grace           Grace.Pass.2026    OU=Staff      QA-Staff                                  701 account expired (accountExpires 2020-01-01)
//	Heidi    heidi           Heidi.Pass.2026    OU=Staff      QA-Staff                                  ok; 775 after 3 wrong passwords (PSO, 30 min)
//	Juergen  jürgen          Juergen.Pass.2026  OU=Staff      QA-Physicists                             ok (given name Jürgen, surname Müller)
//	Mallory  mallory         p*)(|(uid=*)\00"'$;&  OU=Staff   QA-Staff                                  ok (\00 is backslash, zero, zero)
//	Oscar    oscar           Oscar.Pass.2026    CN=Users      (none)                                    ok, qualifies for nothing
//	Service  svc-qa          Svc.Qa.Pass.2026   CN=Users      (none)                                    ok, password never expires
//	(admin)  Administrator   Adm1n.Pass.2026!   CN=Users      Domain Admins …                           ok
//
// Wrong passwords (and unknown users) fail with 52e. The CN of each user is
// its sAMAccountName; UPN is sAMAccountName@hospital.test. The group
// "QA-Radiology, Nuclear" (sAMAccountName QA-Radiology-Nuclear) has DN
// CN=QA-Radiology\, Nuclear,OU=Groups,DC=hospital,DC=test. The domain-wide
// policy has no complexity, history, age limit or lockout; only Frank and
// Heidi have password settings objects.
package sambadc
