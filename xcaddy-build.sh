#!/usr/bin/env bash
# Builds a production Caddy binary with adauth, the way Caddy plugins are
# meant to be built: xcaddy, with this checkout as a local replacement of the
# module. The result is ./caddy in the current directory.
#
#   ./xcaddy-build.sh            # Caddy v2.11.9 + this adauth checkout
#   CADDY_VERSION=v2.11.9 ./xcaddy-build.sh
#
# Needs Go 1.26 or later. Add other plugins with XCADDY_EXTRA, e.g.
#   XCADDY_EXTRA="--with github.com/caddy-dns/cloudflare" ./xcaddy-build.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
caddy_version="${CADDY_VERSION:-v2.11.9}"
xcaddy_version="${XCADDY_VERSION:-v0.4.5}"
out="${OUTPUT:-$PWD/caddy}"

gobin="$(go env GOPATH)/bin"
if ! "$gobin/xcaddy" version 2>/dev/null | grep -q "${xcaddy_version#v}"; then
	echo "installing xcaddy $xcaddy_version" >&2
	go install "github.com/caddyserver/xcaddy/cmd/xcaddy@$xcaddy_version"
fi

# shellcheck disable=SC2086
"$gobin/xcaddy" build "$caddy_version" \
	--output "$out" \
	--with "github.com/caddy-adauth/adauth=$here" \
	${XCADDY_EXTRA:-}

"$out" version
"$out" list-modules | grep adauth
