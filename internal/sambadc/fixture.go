package sambadc

import "encoding/json"

// The fixture domain.
const (
	Realm         = "HOSPITAL.TEST"
	Domain        = "HOSPITAL" // NetBIOS domain: HOSPITAL\alice
	BaseDN        = "DC=hospital,DC=test"
	UPNSuffix     = "hospital.test" // alice@hospital.test
	AdminPassword = "Adm1n.Pass.2026!"
	AdminDN       = "CN=Administrator,CN=Users," + BaseDN

	StaffOU  = "OU=Staff," + BaseDN
	GroupsOU = "OU=Groups," + BaseDN
	UsersCN  = "CN=Users," + BaseDN
)

// Group DNs (all in OU=Groups).
const (
	GroupPhysicists       = "CN=QA-Physicists," + GroupsOU
	GroupStaff            = "CN=QA-Staff," + GroupsOU
	GroupTherapists       = "CN=QA-Therapists," + GroupsOU        // contains GroupTherapistsNested
	GroupTherapistsNested = "CN=QA-Therapists-Nested," + GroupsOU // contains bob
	GroupAdmins           = "CN=QA-Admins," + GroupsOU
	GroupRadiology        = `CN=QA-Radiology\, Nuclear,` + GroupsOU // CN "QA-Radiology, Nuclear", sAMAccountName QA-Radiology-Nuclear
)

// User is one fixture account.
type User struct {
	SAM       string // sAMAccountName (also the CN)
	Password  string
	DN        string
	GivenName string
	Surname   string
	Mail      string
	Groups    []string // CNs of the direct groups (memberOf)
	Nested    []string // CNs of groups reached only through nesting
	// Code is the AD sub-code a simple bind with the right Password fails
	// with ("" when the bind succeeds): 533 disabled, 773 must change,
	// 532 password expired, 701 account expired. Heidi binds fine until
	// LockoutThreshold wrong passwords, then fails with 775.
	Code string

	ou           string
	disabled     bool
	mustChange   bool
	aged         bool // password set 50 days ago under a 30-day PSO
	expired      bool // accountExpires in the past
	neverExpires bool
}

// UPN returns the user's userPrincipalName (alice@hospital.test).
func (u User) UPN() string { return u.SAM + "@" + UPNSuffix }

// NetBIOS returns the down-level logon name (HOSPITAL\alice).
func (u User) NetBIOS() string { return Domain + `\` + u.SAM }

// LockoutThreshold is the number of wrong passwords after which Heidi is
// locked out (775) for 30 minutes. Only Heidi has a lockout policy.
const LockoutThreshold = 3

// MalloryPassword is a password full of LDAP-filter, DN and shell
// metacharacters: p*)(|(uid=*)\00"'$;& — the \00 is a literal backslash
// followed by two zeros, not a NUL.
const MalloryPassword = `p*)(|(uid=*)\00"'$;&`

// The fixture users.
var (
	Alice = User{SAM: "alice", Password: "Alice.Pass.2026", GivenName: "Alice", Surname: "Andersen", Mail: "alice@hospital.test",
		Groups: []string{"QA-Physicists", "QA-Staff", "QA-Radiology, Nuclear"}, ou: "OU=Staff"}
	Bob = User{SAM: "bob", Password: "Bob.Pass.2026", GivenName: "Bob", Surname: "Brown", Mail: "bob@hospital.test",
		Groups: []string{"QA-Therapists-Nested"}, Nested: []string{"QA-Therapists"}, ou: "OU=Staff"}
	Carol = User{SAM: "carol", Password: "Carol.Pass.2026", GivenName: "Carol", Surname: "Clark", Mail: "carol@hospital.test",
		Groups: []string{"QA-Admins"}, ou: "OU=Staff"}
	Dave = User{SAM: "dave", Password: "Dave.Pass.2026", GivenName: "Dave", Surname: "Davis",
		Groups: []string{"QA-Staff"}, Code: "533", ou: "OU=Staff", disabled: true}
	Erin = User{SAM: "erin", Password: "Erin.Pass.2026", GivenName: "Erin", Surname: "Evans",
		Groups: []string{"QA-Staff"}, Code: "773", ou: "OU=Staff", mustChange: true}
	Frank = User{SAM: "frank", Password: "Frank.Pass.2026", GivenName: "Frank", Surname: "Fischer",
		Groups: []string{"QA-Staff"}, Code: "532", ou: "OU=Staff", aged: true}
	Grace = User{SAM: "grace", Password: "Grace.Pass.2026", GivenName: "Grace", Surname: "Green",
		Groups: []string{"QA-Staff"}, Code: "701", ou: "OU=Staff", expired: true}
	Heidi = User{SAM: "heidi", Password: "Heidi.Pass.2026", GivenName: "Heidi", Surname: "Hansen",
		Groups: []string{"QA-Staff"}, ou: "OU=Staff"}
	Juergen = User{SAM: "jürgen", Password: "Juergen.Pass.2026", GivenName: "Jürgen", Surname: "Müller", Mail: "juergen@hospital.test",
		Groups: []string{"QA-Physicists"}, ou: "OU=Staff"}
	Mallory = User{SAM: "mallory", Password: MalloryPassword, GivenName: "Mallory", Surname: "Moriarty", Mail: "mallory@hospital.test",
		Groups: []string{"QA-Staff"}, ou: "OU=Staff"}
	Oscar = User{SAM: "oscar", Password: "Oscar.Pass.2026", GivenName: "Oscar", Surname: "Olsen", Mail: "oscar@hospital.test"} // in CN=Users, no QA group
	// Service is the search-bind account (password never expires), in CN=Users.
	Service = User{SAM: "svc-qa", Password: "Svc.Qa.Pass.2026", neverExpires: true}
)

func init() {
	for _, u := range []*User{&Alice, &Bob, &Carol, &Dave, &Erin, &Frank, &Grace, &Heidi, &Juergen, &Mallory, &Oscar, &Service} {
		if u.ou == "" {
			u.DN = "CN=" + u.SAM + "," + UsersCN
		} else {
			u.DN = "CN=" + u.SAM + "," + u.ou + "," + BaseDN
		}
	}
}

// Users returns every fixture user.
func Users() []User {
	return []User{Alice, Bob, Carol, Dave, Erin, Frank, Grace, Heidi, Juergen, Mallory, Oscar, Service}
}

type specGroup struct {
	RDN     string   `json:"rdn"`
	OU      string   `json:"ou"`
	SAM     string   `json:"sam"`
	Members []string `json:"members"` // sAMAccountNames of users or groups
}

type specUser struct {
	Name           string `json:"name"`
	Password       string `json:"password"`
	OU             string `json:"ou,omitempty"`
	Given          string `json:"given,omitempty"`
	Surname        string `json:"surname,omitempty"`
	Mail           string `json:"mail,omitempty"`
	Disabled       bool   `json:"disabled,omitempty"`
	MustChange     bool   `json:"must_change,omitempty"`
	Aged           bool   `json:"aged,omitempty"`
	AccountExpired bool   `json:"account_expired,omitempty"`
	NeverExpires   bool   `json:"never_expires,omitempty"`
}

type specPSO struct {
	Name             string   `json:"name"`
	Precedence       int      `json:"precedence"`
	MaxAgeDays       int      `json:"max_age_days"`
	LockoutThreshold int      `json:"lockout_threshold"`
	AppliesTo        []string `json:"applies_to"`
}

type spec struct {
	OUs    []string    `json:"ous"`
	Groups []specGroup `json:"groups"`
	Users  []specUser  `json:"users"`
	PSOs   []specPSO   `json:"psos"`
}

// fixtureSpec is the JSON populate.py reads; its hash names the cache.
func fixtureSpec() []byte {
	s := spec{OUs: []string{"OU=Staff", "OU=Groups"}}
	groups := []struct{ rdn, sam string }{
		{"CN=QA-Physicists", "QA-Physicists"},
		{"CN=QA-Staff", "QA-Staff"},
		{"CN=QA-Therapists-Nested", "QA-Therapists-Nested"},
		{"CN=QA-Therapists", "QA-Therapists"},
		{"CN=QA-Admins", "QA-Admins"},
		{`CN=QA-Radiology\, Nuclear`, "QA-Radiology-Nuclear"},
	}
	byCN := map[string]*specGroup{}
	for _, g := range groups {
		s.Groups = append(s.Groups, specGroup{RDN: g.rdn, OU: "OU=Groups", SAM: g.sam})
	}
	for i := range s.Groups {
		cn := s.Groups[i].SAM
		if cn == "QA-Radiology-Nuclear" {
			cn = "QA-Radiology, Nuclear"
		}
		byCN[cn] = &s.Groups[i]
	}
	byCN["QA-Therapists"].Members = append(byCN["QA-Therapists"].Members, "QA-Therapists-Nested")
	for _, u := range Users() {
		s.Users = append(s.Users, specUser{Name: u.SAM, Password: u.Password, OU: u.ou, Given: u.GivenName,
			Surname: u.Surname, Mail: u.Mail, Disabled: u.disabled, MustChange: u.mustChange, Aged: u.aged,
			AccountExpired: u.expired, NeverExpires: u.neverExpires})
		for _, g := range u.Groups {
			byCN[g].Members = append(byCN[g].Members, u.SAM)
		}
	}
	s.PSOs = []specPSO{
		{Name: "adauth-password-expiry", Precedence: 10, MaxAgeDays: 30, AppliesTo: []string{Frank.SAM}},
		{Name: "adauth-lockout", Precedence: 20, LockoutThreshold: LockoutThreshold, AppliesTo: []string{Heidi.SAM}},
	}
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		panic(err)
	}
	return b
}
