#!/usr/bin/env bash
# Runs the adauth benchmarks on this machine: a real Caddy with adauth, a
# real Samba AD DC, wrk on loopback. Needs root (Samba) and the packages
# .ci/install-servers.sh installs. Prints the tables, and writes them to
# bench/results.md for BENCHMARKS.md.
#
#   sudo bash bench/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash .ci/install-servers.sh
export ADAUTH_BENCH=1 ADAUTH_REQUIRE_SERVERS=1
export ADAUTH_BENCH_OUT="$PWD/bench/results.md"
go test -count=1 -run TestBenchmarks -v -timeout 20m ./bench/ 2>&1 | grep -v '^        {'
echo
echo "Go benchmarks of the per-request path:"
go test -run '^$' -bench 'SessionOpen|ServeHTTPSignedIn' -benchmem -count 5 . | grep -E '^Benchmark|ns/op'
