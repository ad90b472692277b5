package groups

import (
	"errors"
	"slices"
	"testing"
)

const (
	staffDN   = "CN=QA-Staff,OU=Groups,DC=hospital,DC=test"
	adminsDN  = "CN=QA-Admins,OU=Groups,DC=hospital,DC=test"
	nuclearDN = `CN=QA-Radiology\, Nuclear,OU=Groups,DC=hospital,DC=test`
)

var (
	staff   = Group{Name: "QA-Staff", DN: staffDN}
	admins  = Group{Name: "QA-Admins", DN: adminsDN}
	physics = Group{Name: "QA-Physicists", DN: "CN=QA-Physicists,OU=Groups,DC=hospital,DC=test"}
	nuclear = Group{Name: "QA-Radiology, Nuclear", DN: nuclearDN}
)

func TestDirectory(t *testing.T) {
	qatrack := Rules{
		Maps: []Map{
			{From: "QA-Physicists", To: []string{"physics"}},
			{From: "QA-Admins", To: []string{"admin", "physics"}},
		},
		Qualify: []string{"QA-Staff", "QA-Physicists"},
		Default: []string{"everyone"},
	}
	tests := []struct {
		name    string
		rules   *Rules // nil: PassThrough
		dir     []Group
		want    []string
		refused bool
	}{
		// Pass-through.
		{name: "pass-through", dir: []Group{staff, admins}, want: []string{"QA-Admins", "QA-Staff"}},
		{name: "pass-through nil groups", dir: nil, want: []string{}},
		{name: "pass-through dedups case-insensitively", dir: []Group{{Name: "qa-staff"}, staff},
			want: []string{"qa-staff"}},
		{name: "pass-through skips names that cannot be application groups",
			dir: []Group{nuclear, {Name: ""}, {Name: "tab\there"}, staff}, want: []string{"QA-Staff"}},

		// No rules at all: nothing passes through.
		{name: "empty rules", rules: &Rules{}, dir: []Group{staff}, want: []string{}},
		{name: "empty rules nil groups", rules: &Rules{}, want: []string{}},

		// CN rules.
		{name: "CN map", rules: &Rules{Maps: []Map{{From: "QA-Staff", To: []string{"staff"}}}},
			dir: []Group{staff, admins}, want: []string{"staff"}},
		{name: "CN map case-insensitive", rules: &Rules{Maps: []Map{{From: "qa-STAFF", To: []string{"staff"}}}},
			dir: []Group{staff}, want: []string{"staff"}},
		{name: "CN map Unicode case", rules: &Rules{Maps: []Map{{From: "QA-Physiker-Ärzte", To: []string{"physics"}}}},
			dir: []Group{{Name: "qa-physiker-ärzte"}}, want: []string{"physics"}},
		{name: "CN map Kelvin sign folds to k", rules: &Rules{Maps: []Map{{From: "Kardiologie", To: []string{"cardio"}}}},
			dir: []Group{{Name: "\u212Aardiologie"}}, want: []string{"cardio"}},
		{name: "CN map does not match a DN", rules: &Rules{Maps: []Map{{From: "QA-Staff", To: []string{"staff"}}}},
			dir: []Group{{Name: staffDN}}, want: []string{}},
		{name: "CN rule with a comma matches the CN", rules: &Rules{Maps: []Map{{From: "QA-Radiology, Nuclear", To: []string{"nuclear"}}}},
			dir: []Group{nuclear}, want: []string{"nuclear"}},
		{name: "CN rule with a comma, AD FS claim", rules: &Rules{Maps: []Map{{From: "qa-radiology, nuclear", To: []string{"nuclear"}}}},
			dir: []Group{{Name: "QA-Radiology, Nuclear"}}, want: []string{"nuclear"}},

		// DN rules.
		{name: "DN map", rules: &Rules{Maps: []Map{{From: adminsDN, To: []string{"admin"}}}},
			dir: []Group{staff, admins}, want: []string{"admin"}},
		{name: "DN map other OU does not match", rules: &Rules{Maps: []Map{{From: "CN=QA-Admins,OU=Other,DC=hospital,DC=test", To: []string{"admin"}}}},
			dir: []Group{admins}, want: []string{}},
		{name: "DN map does not match the CN alone", rules: &Rules{Maps: []Map{{From: adminsDN, To: []string{"admin"}}}},
			dir: []Group{{Name: "QA-Admins"}}, want: []string{}},
		{name: "DN map compared parsed: case and spaces", rules: &Rules{Maps: []Map{{From: "cn=qa-admins, ou=groups, dc=HOSPITAL, dc=test", To: []string{"admin"}}}},
			dir: []Group{admins}, want: []string{"admin"}},
		{name: `DN escaped comma: \, rule, \2C directory`, rules: &Rules{Maps: []Map{{From: nuclearDN, To: []string{"nuclear"}}}},
			dir: []Group{{Name: "QA-Radiology, Nuclear", DN: `cn=QA-Radiology\2C Nuclear,ou=groups,dc=hospital,dc=test`}}, want: []string{"nuclear"}},
		{name: `DN escaped comma: \2C rule, \, directory`, rules: &Rules{Maps: []Map{{From: `cn=qa-radiology\2c nuclear,ou=groups,dc=hospital,dc=test`, To: []string{"nuclear"}}}},
			dir: []Group{nuclear}, want: []string{"nuclear"}},
		{name: "DN hex-escaped Unicode", rules: &Rules{Maps: []Map{{From: "CN=QA-Ärzte,OU=Groups,DC=hospital,DC=test", To: []string{"doctors"}}}},
			dir: []Group{{Name: "QA-Ärzte", DN: `cn=qa-\c3\a4rzte,ou=groups,dc=hospital,dc=test`}}, want: []string{"doctors"}},
		{name: "unparseable directory DN matches no DN rule", rules: &Rules{Maps: []Map{{From: adminsDN, To: []string{"admin"}}, {From: "QA-Admins", To: []string{"cn"}}}},
			dir: []Group{{Name: "QA-Admins", DN: "CN=QA-Admins,OU"}}, want: []string{"cn"}},

		// Several maps.
		{name: "several maps to one group", rules: &Rules{Maps: []Map{
			{From: "QA-Physicists", To: []string{"physics"}},
			{From: "QA-Admins", To: []string{"admin", "physics"}},
			{From: staffDN, To: []string{"Physics"}},
		}}, dir: []Group{staff, admins, physics}, want: []string{"admin", "physics"}},
		{name: "same From twice merges", rules: &Rules{Maps: []Map{
			{From: "QA-Staff", To: []string{"a"}},
			{From: "qa-staff", To: []string{"b"}},
		}}, dir: []Group{staff}, want: []string{"a", "b"}},
		{name: "CN and DN of the same group", rules: &Rules{Maps: []Map{
			{From: "QA-Staff", To: []string{"a"}},
			{From: staffDN, To: []string{"b"}},
		}}, dir: []Group{staff}, want: []string{"a", "b"}},

		// Qualify.
		{name: "qualify none matching", rules: &qatrack, dir: []Group{{Name: "Cardiology"}}, refused: true},
		{name: "qualify nil groups", rules: &qatrack, dir: nil, refused: true},
		{name: "qualify one matching", rules: &qatrack, dir: []Group{staff}, want: []string{"everyone"}},
		{name: "qualify all matching", rules: &qatrack, dir: []Group{staff, physics, admins},
			want: []string{"admin", "everyone", "physics"}},
		{name: "qualify by DN", rules: &Rules{Qualify: []string{staffDN}, Default: []string{"everyone"}},
			dir: []Group{staff}, want: []string{"everyone"}},
		{name: "qualify by DN: the CN alone is not enough", rules: &Rules{Qualify: []string{staffDN}},
			dir: []Group{{Name: "QA-Staff"}}, refused: true},
		{name: "qualify by DN: other OU", rules: &Rules{Qualify: []string{staffDN}},
			dir: []Group{{Name: "QA-Staff", DN: "CN=QA-Staff,OU=Retired,DC=hospital,DC=test"}}, refused: true},
		{name: "qualify without maps grants nothing but defaults", rules: &Rules{Qualify: []string{"QA-Staff"}},
			dir: []Group{staff, admins}, want: []string{}},

		// Defaults.
		{name: "default without groups", rules: &Rules{Default: []string{"everyone", "Everyone", "readers"}},
			want: []string{"everyone", "readers"}},
		{name: "default plus map, dedup keeps first rule spelling", rules: &Rules{
			Maps: []Map{{From: "QA-Staff", To: []string{"Everyone"}}}, Default: []string{"everyone"}},
			dir: []Group{staff}, want: []string{"Everyone"}},

		// same_name.
		{name: "same_name", rules: &Rules{SameName: true}, dir: []Group{staff, admins},
			want: []string{"QA-Admins", "QA-Staff"}},
		{name: "same_name nil groups", rules: &Rules{SameName: true}, want: []string{}},
		{name: "same_name with maps", rules: &Rules{SameName: true, Maps: []Map{{From: "QA-Admins", To: []string{"admin"}}}},
			dir: []Group{staff, admins}, want: []string{"QA-Admins", "QA-Staff", "admin"}},
		{name: "same_name dedups against a map, keeping the rule's spelling", rules: &Rules{SameName: true,
			Maps: []Map{{From: "QA-Admins", To: []string{"qa-staff"}}}},
			dir: []Group{staff, admins, {Name: "QA-STAFF"}}, want: []string{"QA-Admins", "qa-staff"}},
		{name: "same_name skips a CN with a comma", rules: &Rules{SameName: true}, dir: []Group{nuclear, staff},
			want: []string{"QA-Staff"}},
		{name: "same_name with qualify and default", rules: &Rules{SameName: true, Qualify: []string{"QA-Staff"}, Default: []string{"everyone"}},
			dir: []Group{staff}, want: []string{"QA-Staff", "everyone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := compile(t, tt.rules)
			got, err := m.Directory(tt.dir)
			if tt.refused {
				if !errors.Is(err, ErrNotQualified) {
					t.Fatalf("Directory = %q, %v; want ErrNotQualified", got, err)
				}
				var um interface{ UserMessage() string }
				if !errors.As(err, &um) || um.UserMessage() == "" {
					t.Fatalf("%v has no UserMessage", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || !slices.Equal(got, tt.want) {
				t.Fatalf("Directory = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestNotQualifiedError(t *testing.T) {
	m, err := Rules{Qualify: []string{"QA-Staff", staffDN}}.Compile()
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Directory([]Group{{Name: "Other"}})
	var nq *NotQualifiedError
	if !errors.As(err, &nq) {
		t.Fatalf("err = %v, want *NotQualifiedError", err)
	}
	want := "not in a qualifying group (qualify: QA-Staff, " + staffDN + ")"
	if err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err, want)
	}
	const msg = "Your account is not in a group that is allowed to use this service. Ask IT"
	if got := nq.UserMessage(); len(got) < len(msg) || got[:len(msg)] != msg {
		t.Fatalf("UserMessage() = %q", got)
	}
	// The error does not share the Mapper's state.
	nq.Qualify[0] = "changed"
	if _, err := m.Directory([]Group{staff}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Directory(nil); err.Error() != want {
		t.Fatalf("a refusal's Qualify changed the Mapper: %v", err)
	}
}

func TestLocal(t *testing.T) {
	tests := []struct {
		name  string
		rules *Rules
		in    []string
		want  []string
	}{
		{name: "pass-through", in: []string{"physics", "admin"}, want: []string{"admin", "physics"}},
		{name: "pass-through nil", want: []string{}},
		{name: "default", rules: &Rules{Default: []string{"everyone"}}, in: []string{"physics"},
			want: []string{"everyone", "physics"}},
		{name: "default only", rules: &Rules{Default: []string{"everyone"}}, want: []string{"everyone"}},
		{name: "dedup keeps the default's spelling", rules: &Rules{Default: []string{"Everyone"}},
			in: []string{"everyone", "physics", "PHYSICS"}, want: []string{"Everyone", "physics"}},
		{name: "maps and qualify do not apply", rules: &Rules{
			Maps:    []Map{{From: "physics", To: []string{"admin"}}},
			Qualify: []string{"QA-Staff"},
		}, in: []string{"physics"}, want: []string{"physics"}},
		{name: "invalid names left out", in: []string{"a,b", "", " ", "ok"}, want: []string{"ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := compile(t, tt.rules)
			if got := m.Local(tt.in); got == nil || !slices.Equal(got, tt.want) {
				t.Fatalf("Local(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestNilMapperPassesThrough(t *testing.T) {
	var m *Mapper
	got, err := m.Directory([]Group{staff})
	if err != nil || !slices.Equal(got, []string{"QA-Staff"}) {
		t.Fatalf("Directory = %q, %v", got, err)
	}
	if got := m.Local([]string{"b", "a"}); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Local = %q", got)
	}
}

func TestDirectoryDoesNotAliasRules(t *testing.T) {
	m, err := Rules{Maps: []Map{{From: "QA-Staff", To: []string{"b", "a"}}}, Default: []string{"z"}}.Compile()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := m.Directory([]Group{staff})
	got[0] = "changed"
	again, _ := m.Directory([]Group{staff})
	if !slices.Equal(again, []string{"a", "b", "z"}) {
		t.Fatalf("second Directory = %q", again)
	}
}

func TestFold(t *testing.T) {
	pairs := [][2]string{
		{"QA-Physiker-Ärzte", "qa-physiker-ärzte"},
		{"STRASSE", "strasse"},
		{"\u212A", "k"}, // Kelvin sign
		{"ΣΊΣΥΦΟΣ", "σίσυφος"},
		{"ſ", "S"},
	}
	for _, p := range pairs {
		if fold(p[0]) != fold(p[1]) {
			t.Errorf("fold(%q) != fold(%q)", p[0], p[1])
		}
	}
	if fold("straße") == fold("strasse") {
		t.Error("fold matched ß and ss, which strings.EqualFold does not")
	}
}

// compile gives the mapper of rules; nil rules pass groups through.
func compile(t *testing.T, rules *Rules) *Mapper {
	t.Helper()
	if rules == nil {
		return PassThrough()
	}
	m, err := rules.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return m
}
