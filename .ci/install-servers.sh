#!/usr/bin/env bash
# Installs the real servers the tests run against (Samba 4.17 AD DC, OpenLDAP
# slapd 2.5, ldap-utils, faketime; Chromium for the browser tests, Django for
# the QATrack+ recipe, wrk for the benchmarks) on Debian 12, as root. Idempotent:
# re-running it is cheap. The tests start their own private server processes
# (internal/sambadc, internal/slapdtest); this script makes sure no system
# samba/slapd daemon is left running and holding ports 389/636.
set -euo pipefail

pkgs=(samba samba-ad-provision samba-dsdb-modules samba-vfs-modules ldap-utils faketime slapd
	chromium python3-django wrk)

if [ "$(id -u)" -ne 0 ]; then
	echo "install-servers.sh: must run as root" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -gt 0 ]; then
	# Keep postinst scripts from starting daemons (invoke-rc.d honours policy-rc.d).
	policy=/usr/sbin/policy-rc.d
	created_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		created_policy=1
	fi
	trap 'if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi' EXIT
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"${missing[@]}"
fi

# Stop any system daemon a postinst (or an earlier boot) may have started.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	for u in slapd samba-ad-dc smbd nmbd winbind; do
		systemctl disable --now "$u" >/dev/null 2>&1 || true
	done
fi
for s in slapd samba-ad-dc smbd nmbd winbind; do
	[ -x "/etc/init.d/$s" ] && "/etc/init.d/$s" stop >/dev/null 2>&1 || true
done
# Kill leftovers of system daemons: only daemonized ones (parent pid 1). The
# tests' own servers are children of a test binary and are left alone (Samba
# rewrites its process title, so its command line cannot tell them apart).
for name in slapd samba smbd nmbd winbindd; do
	for pid in $(pgrep -x "$name" 2>/dev/null || true); do
		ppid=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
		if [ "$ppid" = 1 ]; then
			echo "install-servers.sh: stopping system $name (pid $pid)"
			kill "$pid" 2>/dev/null || true
		fi
	done
done

# Wait (briefly) until nothing listens on 389/636 any more.
for _ in $(seq 1 50); do
	if ! ss -Hltn '( sport = :389 or sport = :636 )' 2>/dev/null | grep -q .; then
		break
	fi
	sleep 0.1
done
if ss -Hltn '( sport = :389 or sport = :636 )' 2>/dev/null | grep -q .; then
	echo "install-servers.sh: warning: something still listens on 389/636:" >&2
	ss -Hltnp '( sport = :389 or sport = :636 )' >&2 || true
fi

for c in samba samba-tool slapd slapadd ldapadd faketime; do
	command -v "$c" >/dev/null || { echo "install-servers.sh: $c missing after install" >&2; exit 1; }
done
/usr/bin/python3 -c 'import samba' || { echo "install-servers.sh: /usr/bin/python3 lacks the samba module" >&2; exit 1; }
echo "install-servers.sh: samba $(samba -V 2>/dev/null | head -1), slapd $(slapd -VV 2>&1 | head -1 | sed 's/^.*slapd //')"
