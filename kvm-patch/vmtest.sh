#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Builds Linux 6.12 with kvm-patch/, boots it under QEMU (TCG) and runs the KVM selftests and the rsys KVM BPF program inside; TAP on stdout.
#
# Exit 0 pass, 1 fail, 4 skip (missing packages).  Environment:
#   RSYS_KVM_CACHE  build cache outside the clone (default /var/cache/rsys-kvm)
#   RSYS_KVM_SRC    Debian linux-source tarball (default /usr/src/linux-source-6.12.tar.xz)
#   JOBS            make -j (default 2)    BENCH_ITERS  first benchmark batch (default 20000;
#                   each case grows it until it runs >= 0.5 s by the host clock)
#   RSYS_O          rsys's build output for rsys-load and the guest init (default .output)
#   RSYS_VMTEST_ONLY=vm   only the compute-VM stage (rsys-load vm), not the KVM selftests
#   V=1             show build output
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
# the real path: a cache moved behind a symlink keeps its build (kbuild records paths)
CACHE=$(realpath -m "${RSYS_KVM_CACHE:-/var/cache/rsys-kvm}")
TARBALL=${RSYS_KVM_SRC:-/usr/src/linux-source-6.12.tar.xz}
JOBS=${JOBS:-2}
BENCH_ITERS=${BENCH_ITERS:-20000}
RSYS_O=$(realpath -m "${RSYS_O:-$ROOT/.output}")
SRC=$CACHE/linux
BUILD=$CACHE/build
OUT=$CACHE/out
LOG=$CACHE/build.log
KSELFTEST=$SRC/tools/testing/selftests/kvm
# In-tree tests run next to ours: generic, userspace exits, nested SVM.
INTREE_TESTS="x86_64/sync_regs_test x86_64/userspace_msr_exit_test x86_64/svm_vmcall_test"

export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache}

skip() {
	echo "1..0 # SKIP $*"
	exit 4
}

fail() {
	echo "Bail out! $*"
	[ -f "$LOG" ] && tail -n 30 "$LOG" | sed 's/^/# /'
	exit 1
}

# Progress goes to stderr so that stdout stays TAP.
step() {
	echo "# $(date -u +%T) $*" >&2
}

quiet() {
	if [ "${V:-0}" = 1 ]; then
		"$@" 2>&1 | tee -a "$LOG" >&2
		return "${PIPESTATUS[0]}"
	fi
	"$@" >>"$LOG" 2>&1
}

check_deps() {
	local missing="" cmd lib

	for cmd in gcc make flex bison bc pahole git clang bpftool cpio gzip \
		   qemu-system-x86_64 busybox xz curl; do
		command -v "$cmd" >/dev/null || missing="$missing $cmd"
	done
	for lib in libbpf.a libelf.a libz.a libseccomp.so libssl.so; do
		[ -f "/usr/lib/x86_64-linux-gnu/$lib" ] || missing="$missing $lib"
	done
	[ -f "$TARBALL" ] || missing="$missing $TARBALL"
	if [ -n "$missing" ]; then
		skip "missing:$missing (make deps installs linux-source-6.12 qemu-system-x86 dwarves busybox-static clang bpftool libbpf-dev libelf-dev zlib1g-dev curl)"
	fi
	ldd "$(command -v busybox)" >/dev/null 2>&1 &&
		skip "busybox is not static (apt-get install busybox-static)"
}

# Pristine source, kept as a git tree so that a changed series is reapplied
# by touching only the files it changes (the build stays incremental).
prepare_source() {
	local sum p patches=()

	if [ ! -f "$SRC/.rsys-pristine" ]; then
		step "unpacking $TARBALL"
		rm -rf "$SRC" "$SRC.tmp"
		mkdir -p "$SRC.tmp" || fail "cannot create $SRC.tmp"
		tar -xJf "$TARBALL" -C "$SRC.tmp" --strip-components=1 ||
			fail "cannot unpack $TARBALL"
		(cd "$SRC.tmp" && git init -q && git add -f . &&
		 git -c user.name=rsys -c user.email=rsys@localhost \
			commit -qm pristine && git tag pristine) ||
			fail "cannot record the pristine source"
		touch "$SRC.tmp/.rsys-pristine"
		mv "$SRC.tmp" "$SRC"
	fi

	for p in "$HERE"/[0-9][0-9][0-9][0-9]-*.patch; do
		case "$p" in
		*/0000-*) ;;
		*) [ -f "$p" ] && patches+=("$p") ;;
		esac
	done
	[ ${#patches[@]} -gt 0 ] || fail "no patches in kvm-patch/"
	sum=$(cat "${patches[@]}" | sha256sum | cut -d' ' -f1)
	[ "$(cat "$CACHE/series.sum" 2>/dev/null)" = "$sum" ] && return 0
	step "applying kvm-patch/*.patch"
	rm -f "$CACHE/series.sum"
	git -C "$SRC" checkout -q -f --detach pristine &&
		git -C "$SRC" clean -q -fdx -e .rsys-pristine ||
		fail "cannot reset $SRC to pristine"
	# One at a time: git apply checks every patch of one call against the
	# same preimage, and several patches change the same files.  A failure
	# leaves no series.sum, so the next run starts again from pristine.
	for p in "${patches[@]}"; do
		git -C "$SRC" apply "$p" ||
			fail "kvm-patch/${p##*/} does not apply to $TARBALL"
	done
	echo "$sum" >"$CACHE/series.sum"
}

build_kernel() {
	local sum cc=gcc

	command -v ccache >/dev/null && cc="ccache gcc"
	sum=$(sha256sum "$HERE/kernel.config" | cut -d' ' -f1)
	if [ "$(cat "$BUILD/.rsys-config" 2>/dev/null)" != "$sum" ]; then
		step "configuring (tinyconfig + kvm-patch/kernel.config)"
		mkdir -p "$BUILD"
		quiet make -C "$SRC" O="$BUILD" tinyconfig &&
			quiet "$SRC/scripts/kconfig/merge_config.sh" -m -O "$BUILD" \
				"$BUILD/.config" "$HERE/kernel.config" &&
			quiet make -C "$SRC" O="$BUILD" olddefconfig ||
			fail "kernel configuration failed"
		grep -q '^CONFIG_DEBUG_INFO_BTF=y' "$BUILD/.config" ||
			fail "CONFIG_DEBUG_INFO_BTF is off: is pahole (dwarves) >= 1.16?"
		echo "$sum" >"$BUILD/.rsys-config"
	fi
	step "building the kernel (make -j$JOBS; ~15 min the first time)"
	quiet nice make -C "$SRC" O="$BUILD" CC="$cc" -j"$JOBS" bzImage ||
		fail "kernel build failed (see $LOG)"
	quiet make -C "$SRC" O="$BUILD" headers || fail "make headers failed"
}

build_tests() {
	local t targets=""

	step "building KVM selftests and the rsys KVM BPF program"
	mkdir -p "$OUT/kvm"
	for t in x86_64/syscall_trap_test $INTREE_TESTS; do
		targets="$targets $OUT/kvm/$t"
	done
	# shellcheck disable=SC2086
	LDFLAGS=-static quiet make -C "$KSELFTEST" -j"$JOBS" OUTPUT="$OUT/kvm" \
		KHDR_INCLUDES="-isystem $BUILD/usr/include" $targets ||
		fail "KVM selftests build failed"

	bpftool btf dump file "$BUILD/vmlinux" format c >"$OUT/vmlinux.h.tmp" &&
		mv "$OUT/vmlinux.h.tmp" "$OUT/vmlinux.h" ||
		fail "cannot dump the patched kernel's BTF"
	quiet clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -I"$OUT" \
		-I"$ROOT/include" -c "$ROOT/bpf/kvm_rsys.bpf.c" \
		-o "$OUT/kvm_rsys.bpf.o" || fail "bpf/kvm_rsys.bpf.c does not build"
	bpftool gen skeleton "$OUT/kvm_rsys.bpf.o" name kvm_rsys_bpf \
		>"$OUT/kvm_rsys.skel.h" || fail "bpftool gen skeleton failed"
	quiet gcc -static -O2 -Wall -Wextra -Werror -I"$OUT" -I"$ROOT/include" \
		"$HERE/rsys-kvm-load.c" -o "$OUT/rsys-kvm-load" \
		-lbpf -lelf -lz || fail "rsys-kvm-load does not build"
}

# The compute VM of "rsys-load vm", booted one level deeper: rsys-load (with its libraries)
# at /bin in the first level (whose /tmp, where a clone's .output may be, is a tmpfs), the same kernel and a busybox image for the second.
build_guest() {
	step "building rsys-load and the compute VM's image"
	quiet make -C "$ROOT" O="$RSYS_O" "$RSYS_O/rsys-load" "$RSYS_O/rsys-guest-init" \
		"$RSYS_O/rsys-delegate" || fail "cannot build rsys-load, rsys-delegate and rsys-guest-init"
	quiet ${CC:-cc} -O2 -static -Wall -o "$RSYS_O/guest-callrate" "$HERE/callrate.c" &&
		quiet ${CC:-cc} -O2 -static -Wall -I"$ROOT/include" -o "$RSYS_O/guest-trustport" \
			"$HERE/trustport.c" &&
		quiet ${CC:-cc} -O2 -static -Wall -o "$RSYS_O/guest-int80" "$HERE/int80.c" &&
		quiet ${CC:-cc} -O2 -static -Wall -o "$RSYS_O/guest-splitwait" "$HERE/splitwait.c" &&
		quiet ${CC:-cc} -O2 -static -Wall -o "$RSYS_O/guest-sigrecv" "$HERE/sigrecv.c" &&
		quiet ${CC:-cc} -O2 -static -Wall -o "$RSYS_O/guest-forkfd" "$HERE/forkfd.c" &&
		quiet ${CC:-cc} -O2 -static -Wall -D_GNU_SOURCE -I"$ROOT/include" -I"$ROOT/selftests" \
			-o "$RSYS_O/guest-fdsem" "$ROOT/selftests/fdsem.c" -lpthread &&
		quiet ${CC:-cc} -O2 -static -Wall -D_GNU_SOURCE -o "$RSYS_O/guest-world-server" \
			"$ROOT/selftests/world_server.c" -lpthread ||
		fail "cannot build the guest's test programs"
	# Debian's stock kernel as a second guest kernel (cached; vm_test.sh skips it if not fetched)
	[ -f "$CACHE/debian-bzImage" ] || quiet "$ROOT/guest/debian-kernel.sh" "$CACHE/debian-bzImage" ||
		step "cannot fetch Debian's kernel: its compute VM case is skipped"
	quiet "$ROOT/guest/mkimage.sh" -o "$OUT/guest.cpio.gz" -i "$RSYS_O/rsys-guest-init" \
		"$RSYS_O/guest-callrate:/bin/callrate" "$RSYS_O/guest-trustport:/bin/trustport" \
		"$RSYS_O/guest-int80:/bin/int80" "$RSYS_O/guest-splitwait:/bin/splitwait" \
		"$RSYS_O/guest-sigrecv:/bin/sigrecv" "$RSYS_O/guest-forkfd:/bin/forkfd" \
		"$RSYS_O/guest-fdsem:/bin/fdsem" "$(command -v curl):/bin/curl" ||
		fail "cannot make the compute VM's image"
}

make_initramfs() {
	local dir=$OUT/initramfs t names=syscall_trap_test

	step "making the initramfs"
	rm -rf "$dir"
	mkdir -p "$dir"/{bin,dev,proc,sys,tmp,kvm/x86_64}
	cp "$(command -v busybox)" "$dir/bin/busybox"
	for t in x86_64/syscall_trap_test $INTREE_TESTS; do
		cp "$OUT/kvm/$t" "$dir/kvm/$t"
	done
	cp "$OUT/rsys-kvm-load" "$dir/bin/"
	local debian=()
	[ -f "$CACHE/debian-bzImage" ] && debian=(-f "$CACHE/debian-bzImage:/guest/debian-bzImage")
	"$ROOT/guest/mkimage.sh" -d "$dir" -f "$BUILD/arch/x86/boot/bzImage:/guest/bzImage" "${debian[@]}" \
		-f "$OUT/guest.cpio.gz:/guest/image.cpio.gz" -f "$HERE/vm_test.sh:/guest/vm_test.sh" \
		-f "$ROOT/policy/net.policy:/guest/net.policy" \
		"$RSYS_O/rsys-load:/bin/rsys-load" "$RSYS_O/rsys-delegate:/bin/rsys-delegate" \
		"$(readlink -f "$(command -v bpftool)"):/bin/bpftool" \
		"$RSYS_O/guest-splitwait:/bin/splitwait" "$RSYS_O/guest-callrate:/bin/callrate" \
		"$RSYS_O/guest-sigrecv:/bin/sigrecv" "$RSYS_O/guest-forkfd:/bin/forkfd" \
		"$RSYS_O/guest-fdsem:/bin/fdsem" "$RSYS_O/guest-world-server:/bin/world_server" \
		"$(command -v ip):/usr/sbin/ip" >/dev/null ||
		fail "cannot put rsys-load, rsys-delegate and ip into the initramfs"
	for t in $INTREE_TESTS; do
		names="$names $(basename "$t")"
	done
	[ "${RSYS_VMTEST_ONLY:-}" = vm ] && names=""
	cat >"$dir/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t bpf bpf /sys/fs/bpf
mount -t tmpfs tmp /tmp
cd /kvm
run() {
	name=\$1
	shift
	echo "RSYS-BEGIN \$name"
	"\$@"
	echo "RSYS-END \$name \$?"
}
for t in $names; do
	run \$t ./x86_64/\$t
done
if [ -n "$names" ]; then
	run rsys_kvm_bpf rsys-kvm-load /sys/fs/bpf/rsys-kvm ./x86_64/syscall_trap_test -p /sys/fs/bpf/rsys-kvm
	run benchmark ./x86_64/syscall_trap_test -b $BENCH_ITERS
fi
run guest_vm sh /guest/vm_test.sh /bin/rsys-load /guest/bzImage /guest/image.cpio.gz
echo RSYS-DONE
reboot -f
EOF
	chmod +x "$dir/init"
	(cd "$dir" && find . | cpio -o -H newc --quiet | gzip -1) \
		>"$OUT/initramfs.cpio.gz" || fail "cannot make the initramfs"
}

boot() {
	step "booting under qemu-system-x86_64 -accel tcg"
	timeout 1800 qemu-system-x86_64 -accel tcg -cpu max -m 2G -smp 1 \
		-no-reboot -display none -monitor none -serial stdio \
		-kernel "$BUILD/arch/x86/boot/bzImage" \
		-initrd "$OUT/initramfs.cpio.gz" \
		-append "console=ttyS0 tsc_early_khz=2000000 panic=-1 quiet" \
		</dev/null >"$OUT/console.log" 2>&1
	tr -d '\r' <"$OUT/console.log" >"$OUT/console.txt"
}

# Guest output -> TAP: one line per subtest, a line per program that printed
# none, "#" lines passed through (benchmark figures, diagnostics).
report() {
	awk '
	function emit(ok, desc) {
		n++
		printf "%s %d %s\n", ok ? "ok" : "not ok", n, desc
		if (!ok && desc !~ /# SKIP/)
			failed = 1
		if (desc !~ /# SKIP/)
			real = 1
	}
	/^RSYS-BEGIN / { prog = $2; subs = 0; subfail = 0; next }
	/^RSYS-END / {
		rc = $3
		if (!subs)
			emit(rc == 0 || rc == 4, prog (rc == 4 ? " # SKIP" : (rc ? ": exit " rc : "")))
		else if (rc != 0 && rc != 4 && !subfail)
			emit(0, prog ": exit " rc)
		prog = ""
		next
	}
	/^RSYS-DONE/ { done = 1; next }
	prog != "" && /^(not )?ok [0-9]+/ {
		ok = $1 == "ok"
		desc = $0
		sub(/^(not )?ok [0-9]+ ?(- )?/, "", desc)
		subs++
		if (!ok)
			subfail = 1
		emit(ok, prog ": " desc)
		next
	}
	prog != "" && /^#/ && !/^# (Totals|Planned|\[)/ { print; next }
	END {
		if (!done)
			emit(0, "guest finished all tests (see console log)")
		printf "1..%d\n", n
		exit failed ? 1 : (real ? 0 : 4)
	}' "$OUT/console.txt"
}

main() {
	local start=$SECONDS rc

	check_deps
	mkdir -p "$CACHE" || skip "cannot create $CACHE (set RSYS_KVM_CACHE)"
	# One run at a time per cache: the source tree and build dir are shared.
	exec 9>"$CACHE/.lock"
	if ! flock -n 9; then
		step "waiting for another vmtest.sh using $CACHE"
		flock 9
	fi
	: >"$LOG"
	prepare_source
	build_kernel
	build_tests
	build_guest
	make_initramfs
	boot
	report
	rc=$?
	[ "$rc" = 1 ] && grep -v '^RSYS-' "$OUT/console.txt" | tail -n 40 | sed 's/^/# console: /'
	echo "# vmtest took $((SECONDS - start)) s; console log: $OUT/console.log"
	exit "$rc"
}

main "$@"
