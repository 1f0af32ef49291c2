#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Builds the initramfs of a compute VM for "rsys-load vm": rsys-guest-init as /init, busybox,
# and the programs named, each with the shared libraries ldd lists for it.
#
# Usage: guest/mkimage.sh -o IMAGE.cpio.gz -i RSYS_GUEST_INIT [-f SRC:DEST]... [PROG[:DEST]...]
#        guest/mkimage.sh -d DIR [-f SRC:DEST]... [PROG[:DEST]...]   (only copy into DIR)
# PROG is a path or a name looked up in PATH; it lands at the same path in the image, or DEST.
set -euo pipefail

prog=${0##*/}
out="" init="" stage="" files=()

die() {
	echo "$prog: Error: $*" >&2
	exit 1
}

usage() {
	sed -n 's/^# \{0,1\}//; 3,8p' "$0"
}

# Copy a file (symlinks followed) to the same path under the root.
put() {
	local src=$1 dest=$2

	mkdir -p "$root/$(dirname "$dest")"
	cp -L "$src" "$root/$dest" || die "cannot copy $src"
}

# A program (PROG, or PROG:DEST to put it elsewhere) and the libraries its dynamic loader
# would load (none for a static one).
put_prog() {
	local name=${1%%:*} dest=${1#*:} path lib

	path=$(type -P "$name") && [ -n "$path" ] || die "no program $name (not a path, not in PATH)"
	[ -f "$path" ] && [ -x "$path" ] || die "$path is not an executable file"
	[ "$dest" != "$1" ] || dest=$path
	put "$path" "$dest"
	# "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
	for lib in $(ldd "$path" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'); do
		[ -e "$root/$lib" ] || put "$lib" "$lib"
	done
}

while getopts "o:i:d:f:h" opt; do
	case $opt in
	o) out=$OPTARG ;;
	i) init=$OPTARG ;;
	d) stage=$OPTARG ;;
	f) files+=("$OPTARG") ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))

if [ -n "$stage" ]; then
	root=$stage
	mkdir -p "$root"
else
	[ -n "$out" ] && [ -n "$init" ] || { usage >&2; exit 2; }
	[ -x "$init" ] || die "no guest init at $init (make builds it)"
	ldd "$init" >/dev/null 2>&1 && die "$init is not static: the guest has no libraries for it"
	busybox=$(command -v busybox) || die "no busybox (apt-get install busybox-static)"
	ldd "$busybox" >/dev/null 2>&1 && die "$busybox is not static (apt-get install busybox-static)"
	root=$(mktemp -d)
	trap 'rm -rf "$root"' EXIT
	mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc}
	put "$init" /init
	put "$busybox" /bin/busybox
	# The kernel opens /dev/console for init before devtmpfs is mounted.
	mknod "$root/dev/console" c 5 1 2>/dev/null || true
	echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
	echo "root:x:0:" >"$root/etc/group"
fi

for f in "${files[@]}"; do
	[ "${f#*:}" != "$f" ] || die "-f $f: expected SRC:DEST"
	put "${f%%:*}" "${f#*:}"
done
for p in "$@"; do
	put_prog "$p"
done

if [ -z "$stage" ]; then
	mkdir -p "$(dirname "$out")"
	(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -9) >"$out.tmp" ||
		die "cannot write $out"
	mv "$out.tmp" "$out"
	echo "$prog: $out: $(du -k "$out" | cut -f1) KiB, programs: busybox${*:+ $*}"
fi
