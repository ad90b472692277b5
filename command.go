package adauth

import (
	"github.com/spf13/cobra"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
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
