package groups

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name  string
		rules Rules
		want  string // substring of the error
	}{
		{"map empty from", Rules{Maps: []Map{{From: "", To: []string{"a"}}}}, `map "": directory group: empty group name`},
		{"map blank from", Rules{Maps: []Map{{From: "  ", To: []string{"a"}}}}, "empty group name"},
		{"map no to", Rules{Maps: []Map{{From: "QA-Staff"}}}, `map "QA-Staff": no application groups`},
		{"map empty to", Rules{Maps: []Map{{From: "QA-Staff", To: []string{""}}}}, `application group "": empty group name`},
		{"map to with comma", Rules{Maps: []Map{{From: "QA-Staff", To: []string{"a,b"}}}}, "contains a comma"},
		{"map to with control", Rules{Maps: []Map{{From: "QA-Staff", To: []string{"a\nb"}}}}, "control character"},
		{"map to with spaces", Rules{Maps: []Map{{From: "QA-Staff", To: []string{" a"}}}}, "leading or trailing spaces"},
		{"map to invalid UTF-8", Rules{Maps: []Map{{From: "QA-Staff", To: []string{"a\xff"}}}}, "UTF-8"},
		{"map from with control", Rules{Maps: []Map{{From: "QA\x00Staff", To: []string{"a"}}}}, "control character"},
		{"map from with spaces", Rules{Maps: []Map{{From: "QA-Staff ", To: []string{"a"}}}}, "leading or trailing spaces"},
		{"map from bad DN", Rules{Maps: []Map{{From: "CN=QA-Radiology, Nuclear,OU=Groups", To: []string{"a"}}}},
			"looks like a distinguished name but does not parse"},
		{"map from bad DN escape", Rules{Maps: []Map{{From: `CN=QA\zz,OU=Groups`, To: []string{"a"}}}}, "does not parse"},
		{"map from one-RDN DN", Rules{Maps: []Map{{From: "CN=QA-Staff", To: []string{"a"}}}}, "full DN"},
		{"map from DN empty value", Rules{Maps: []Map{{From: "CN=,OU=Groups,DC=test", To: []string{"a"}}}}, "empty attribute"},
		{"qualify empty", Rules{Qualify: []string{"QA-Staff", ""}}, `qualify "": directory group: empty group name`},
		{"qualify bad DN", Rules{Qualify: []string{"CN=QA-Staff,OU"}}, `qualify "CN=QA-Staff,OU"`},
		{"qualify one-RDN DN", Rules{Qualify: []string{"cn=QA-Staff"}}, "to match by CN alone, write just the name"},
		{"default empty", Rules{Default: []string{""}}, `default "": application group "": empty group name`},
		{"default comma", Rules{Default: []string{"everyone,admin"}}, "contains a comma"},
		{"default control", Rules{Default: []string{"every\tone"}}, "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.rules.Compile()
			if err == nil {
				t.Fatalf("Compile accepted %+v", tt.rules)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	for _, r := range []Rules{
		{},
		{SameName: true},
		{Maps: []Map{{From: "QA-Radiology, Nuclear", To: []string{"nuclear"}}}},
		{Maps: []Map{{From: `CN=QA-Radiology\, Nuclear,OU=Groups,DC=hospital,DC=test`, To: []string{"nuclear"}}}},
		{Maps: []Map{{From: `cn=QA-Radiology\2C Nuclear,ou=groups,dc=hospital,dc=test`, To: []string{"nuclear"}}}},
		{Maps: []Map{{From: `HOSPITAL\QA-Staff`, To: []string{"staff"}}}}, // AD FS qualified name
		{Maps: []Map{{From: "QA-Physiker-Ärzte", To: []string{"Ärzte", "physics"}}}},
		{Qualify: []string{"QA-Staff", "CN=QA-Physicists,OU=Groups,DC=hospital,DC=test"}, Default: []string{"everyone"}},
	} {
		if _, err := r.Compile(); err != nil {
			t.Errorf("Compile(%+v): %v", r, err)
		}
	}
}

func TestRulesJSON(t *testing.T) {
	r := Rules{
		Maps:     []Map{{From: "QA-Admins", To: []string{"admin", "physics"}}},
		Qualify:  []string{"QA-Staff"},
		Default:  []string{"everyone"},
		SameName: true,
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"maps":[{"from":"QA-Admins","to":["admin","physics"]}],"qualify":["QA-Staff"],"default":["everyone"],"same_name":true}`
	if string(b) != want {
		t.Fatalf("JSON = %s, want %s", b, want)
	}
	if b, _ := json.Marshal(Rules{}); string(b) != "{}" {
		t.Fatalf("empty Rules = %s, want {}", b)
	}
}
