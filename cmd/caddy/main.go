// Command caddy is Caddy with the adauth plugin built in, so that
// `go run ./cmd/caddy run --config examples/demo/Caddyfile` works without
// xcaddy. For production builds see xcaddy-build.sh.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Caddy's standard modules, as in the official build.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-adauth/adauth"
)

func main() {
	caddycmd.Main()
}
