package adauth

import (
	"encoding/json"
	"fmt"
	"slices"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// subcommands are the `caddy adauth <name>` commands. Each concern adds its
// own from an init function in its file (user management, check-ldap,
// check-adfs, key), so this file only assembles them.
var subcommands []func() *cobra.Command

// registerSubcommand adds a `caddy adauth` subcommand. The constructor runs
// when Caddy builds its command tree, after every init has run.
func registerSubcommand(newCmd func() *cobra.Command) {
	subcommands = append(subcommands, newCmd)
}

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "adauth",
		Usage: "<user|import-django|check-ldap|check-adfs|key> ...",
		Short: "Manages adauth users and checks its directory connections",
		Long: `
Tools for the adauth login gate: manage the local users file, import
Django (QATrack+) users, test the connection to Active Directory and AD FS
using a site's Caddyfile, and make a session key.`,
		CobraFunc: func(cmd *cobra.Command) {
			for _, c := range subcommands {
				cmd.AddCommand(c())
			}
		},
	})
}

// findHandlers returns every adauth handler of a JSON config (as `caddy
// adapt` makes it), in a stable order, for the check-* commands, which
// read a site's own blocks instead of taking their settings as flags.
func findHandlers(raw []byte) ([]*Handler, error) {
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	var out []*Handler
	var walk func(v any) error
	walk = func(v any) error {
		switch t := v.(type) {
		case map[string]any:
			if t["handler"] == "adauth" {
				b, _ := json.Marshal(t)
				h := new(Handler)
				if err := json.Unmarshal(b, h); err != nil {
					return fmt.Errorf("adauth handler: %w", err)
				}
				out = append(out, h)
			}
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				if err := walk(t[k]); err != nil {
					return err
				}
			}
		case []any:
			for _, e := range t {
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return out, walk(doc)
}
