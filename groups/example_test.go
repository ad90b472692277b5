package groups_test

import (
	"errors"
	"fmt"

	"github.com/caddy-adauth/adauth/groups"
)

// The QATrack+ recipe: physicists and admins get their QATrack+ groups,
// only QA staff and physicists may sign in, and everyone who does gets
// "everyone".
func Example() {
	m, err := groups.Rules{
		Maps: []groups.Map{
			{From: "QA-Physicists", To: []string{"physics"}},
			{From: "QA-Admins", To: []string{"admin", "physics"}},
		},
		Qualify: []string{"QA-Staff", "QA-Physicists"},
		Default: []string{"everyone"},
	}.Compile()
	if err != nil {
		fmt.Println(err)
		return
	}

	// An LDAP user: Name is the CN, DN the group's full DN.
	admin, err := m.Directory([]groups.Group{
		{Name: "QA-Staff", DN: "CN=QA-Staff,OU=Groups,DC=hospital,DC=example"},
		{Name: "QA-Admins", DN: "CN=QA-Admins,OU=Groups,DC=hospital,DC=example"},
	})
	fmt.Println(admin, err)

	// An AD FS user: Name is the claim value; case does not matter.
	physicist, err := m.Directory([]groups.Group{{Name: "qa-physicists"}})
	fmt.Println(physicist, err)

	// Not in a qualifying group: refused.
	_, err = m.Directory([]groups.Group{{Name: "Cardiology"}})
	var refused *groups.NotQualifiedError
	if errors.As(err, &refused) {
		fmt.Println(errors.Is(err, groups.ErrNotQualified), refused.UserMessage())
	}

	// A local user keeps the users file's groups and gets the defaults.
	fmt.Println(m.Local([]string{"physics"}))
	// Output:
	// [admin everyone physics] <nil>
	// [everyone physics] <nil>
	// true Your account is not in a group that is allowed to use this service. Ask IT to add your account to one of this service's groups.
	// [everyone physics]
}
