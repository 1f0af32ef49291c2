#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Fetches Debian's stock kernel (the package linux-image-amd64 depends on) and writes its
# bzImage to OUT, for a compute VM of "rsys-load vm": the guest kernel needs no rsys patch.
# The package is only downloaded and unpacked (apt-get download, dpkg-deb), not installed.
#
# Usage: guest/debian-kernel.sh OUT
set -euo pipefail

prog=${0##*/}
die() {
	echo "$prog: Error: $*" >&2
	exit 1
}

[ $# = 1 ] || { sed -n 's/^# \{0,1\}//; 3,7p' "$0" >&2; exit 2; }
out=$1
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$pkg" ] || die "apt knows no linux-image-amd64 (apt-get update, or a Debian system)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt's sandbox user cannot write to a root-owned mktemp directory
chmod 755 "$tmp"
(cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1) || die "cannot download $pkg"
dpkg-deb --fsys-tarfile "$tmp"/"$pkg"_*.deb | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' ||
	die "no kernel in $pkg"
mkdir -p "$(dirname "$out")"
cp "$tmp"/boot/vmlinuz-* "$out.tmp" && mv "$out.tmp" "$out" || die "cannot write $out"
echo "guest kernel: $out (Debian's $pkg)"
