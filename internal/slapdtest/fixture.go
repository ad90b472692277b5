package slapdtest

// The fixture directory.
const (
	BaseDN        = "dc=hospital,dc=test"
	PeopleOU      = "ou=people," + BaseDN
	GroupsOU      = "ou=groups," + BaseDN
	ServicesOU    = "ou=services," + BaseDN
	PoliciesOU    = "ou=policies," + BaseDN
	AdminDN       = "cn=admin," + BaseDN // the database's rootdn
	AdminPassword = "Admin.Pass.2026"

	// DefaultPolicyDN is the ppolicy default (no lockout, pwdMustChange so
	// that pwdReset is honoured); LockoutPolicyDN locks after LockoutThreshold
	// failures and applies to Heidi only.
	DefaultPolicyDN = "cn=default," + PoliciesOU
	LockoutPolicyDN = "cn=lockout," + PoliciesOU
	// ExpiryPolicyDN has a 30-day pwdMaxAge and no grace logins; Frank's
	// pwdChangedTime is in 2020 (set with the Relax control).
	ExpiryPolicyDN = "cn=expiry," + PoliciesOU
)

// LockoutThreshold is the number of wrong passwords after which Heidi is locked.
const LockoutThreshold = 3

// Group DNs (groupOfNames in ou=groups).
const (
	GroupPhysicists       = "cn=QA-Physicists," + GroupsOU
	GroupStaff            = "cn=QA-Staff," + GroupsOU
	GroupTherapists       = "cn=QA-Therapists," + GroupsOU        // member: GroupTherapistsNested
	GroupTherapistsNested = "cn=QA-Therapists-Nested," + GroupsOU // member: bob
	GroupAdmins           = "cn=QA-Admins," + GroupsOU
	GroupRadiology        = `cn=QA-Radiology\, Nuclear,` + GroupsOU // slapd may spell it cn=QA-Radiology\2C Nuclear
)

// MalloryPassword is full of LDAP-filter, DN and shell metacharacters (the
// \00 is a backslash and two zeros, not a NUL).
const MalloryPassword = `p*)(|(uid=*)\00"'$;&`

// State is what a bind with the right password does.
type State string

const (
	StateOK         State = ""
	StateLocked     State = "locked"      // bind fails 49 (ppolicy: accountLocked)
	StateMustChange State = "must-change" // bind succeeds (ppolicy: changeAfterReset); searches then fail with 50
	StateExpired    State = "expired"     // password expired: bind fails 49 (ppolicy: passwordExpired)
)

// User is one fixture account (inetOrgPerson uid=…,ou=people).
type User struct {
	UID       string
	Password  string
	DN        string
	CN        string
	GivenName string
	Surname   string
	Mail      string
	Groups    []string // CNs of the direct groups (memberOf)
	Nested    []string // CNs reached only through nested groups
	State     State
	// Heidi: LockoutThreshold wrong passwords lock the account.
	lockoutPolicy bool
	ou            string
}

// The fixture users. There is no "disabled" or "account expired" in plain
// OpenLDAP; Dave is locked with ppolicy's pwdAccountLockedTime instead, Erin
// has pwdReset, Frank's password is older than his policy's pwdMaxAge.
var (
	Alice = User{UID: "alice", Password: "Alice.Pass.2026", CN: "Alice Andersen", GivenName: "Alice", Surname: "Andersen",
		Mail: "alice@hospital.test", Groups: []string{"QA-Physicists", "QA-Staff", "QA-Radiology, Nuclear"}}
	Bob = User{UID: "bob", Password: "Bob.Pass.2026", CN: "Bob Brown", GivenName: "Bob", Surname: "Brown",
		Mail: "bob@hospital.test", Groups: []string{"QA-Therapists-Nested"}, Nested: []string{"QA-Therapists"}}
	Carol = User{UID: "carol", Password: "Carol.Pass.2026", CN: "Carol Clark", GivenName: "Carol", Surname: "Clark",
		Mail: "carol@hospital.test", Groups: []string{"QA-Admins"}}
	Dave = User{UID: "dave", Password: "Dave.Pass.2026", CN: "Dave Davis", GivenName: "Dave", Surname: "Davis",
		Groups: []string{"QA-Staff"}, State: StateLocked}
	Erin = User{UID: "erin", Password: "Erin.Pass.2026", CN: "Erin Evans", GivenName: "Erin", Surname: "Evans",
		Groups: []string{"QA-Staff"}, State: StateMustChange}
	Frank = User{UID: "frank", Password: "Frank.Pass.2026", CN: "Frank Fischer", GivenName: "Frank", Surname: "Fischer",
		Groups: []string{"QA-Staff"}, State: StateExpired}
	Heidi = User{UID: "heidi", Password: "Heidi.Pass.2026", CN: "Heidi Hansen", GivenName: "Heidi", Surname: "Hansen",
		Groups: []string{"QA-Staff"}, lockoutPolicy: true}
	Juergen = User{UID: "jürgen", Password: "Juergen.Pass.2026", CN: "Jürgen Müller", GivenName: "Jürgen", Surname: "Müller",
		Mail: "juergen@hospital.test", Groups: []string{"QA-Physicists"}}
	Mallory = User{UID: "mallory", Password: MalloryPassword, CN: "Mallory Moriarty", GivenName: "Mallory", Surname: "Moriarty",
		Mail: "mallory@hospital.test", Groups: []string{"QA-Staff"}}
	Oscar = User{UID: "oscar", Password: "Oscar.Pass.2026", CN: "Oscar Olsen", GivenName: "Oscar", Surname: "Olsen",
		Mail: "oscar@hospital.test"}
	// Service is the search-bind account, uid=svc-qa,ou=services.
	Service = User{UID: "svc-qa", Password: "Svc.Qa.Pass.2026", CN: "svc-qa", Surname: "service", ou: ServicesOU}
)

func init() {
	for _, u := range []*User{&Alice, &Bob, &Carol, &Dave, &Erin, &Frank, &Heidi, &Juergen, &Mallory, &Oscar, &Service} {
		if u.ou == "" {
			u.ou = PeopleOU
		}
		u.DN = "uid=" + u.UID + "," + u.ou
	}
}

// Users returns every fixture user.
func Users() []User {
	return []User{Alice, Bob, Carol, Dave, Erin, Frank, Heidi, Juergen, Mallory, Oscar, Service}
}
