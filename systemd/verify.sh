#!/bin/sh
# Verifies the unit with systemd-analyze, pointing it at a built binary
# rather than installing anything on this machine. Any complaint fails:
# systemd-analyze exits 0 on some warnings ("ignoring").
set -eu
bin=$(readlink -f "${1:?usage: verify.sh path/to/director}")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/local/sbin/director|$bin|g" "$(dirname "$0")/director.service" > "$dir/director.service"
out=$(systemd-analyze verify "$dir/director.service" 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then
	echo "$out"
	exit 1
fi
echo "systemd/director.service: verified"
