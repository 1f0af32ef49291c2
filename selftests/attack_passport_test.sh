#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Attacks on the passport: a trusted program tries to run untrusted code on the network, one case per trick, each with a positive control.
#
# The trusted program is selftests/exec_probe pinned by its sha256; the
# payload is the same code with other bytes appended (another digest), and
# an LD_PRELOAD/LD_AUDIT library built from the same source. The attacker's
# goal is a payload line "REACHED <payload size>": the world's page fetched
# through the delegate. Each case runs the attack under the pinned policy
# (the goal must not happen) and under "trusted *", where the passport is
# off (the goal must happen, or the case would pass vacuously).

. "$(dirname "$0")/lib.sh"

HTTP_PORT=8080
PROBE=$RSYS_O/selftests/exec_probe
TRIES=${RSYS_RACE_TRIES:-200}

rsys_require cc sha256sum
rsys_have_bins || ksft_skip "$RSYS_MISSING"
[ -x "$PROBE" ] || ksft_skip "$PROBE not built (make -C selftests)"
rsys_topology_up
rsys_delegate_start

WWW=$RSYS_TMP/www
mkdir -p "$WWW" "$RSYS_TMP/work"
# The probe writes its copies there, maybe as an unprivileged uid of the compute domain.
chmod 1777 "$RSYS_TMP/work"
echo "rsys-probe-page $$" >"$WWW/probe.html"
rsys_http_server "$WWW" "$HTTP_PORT" || ksft_skip "HTTP server in the world netns did not start"

TRUSTED=$RSYS_TMP/probe
PAYLOAD=$RSYS_TMP/payload
EVIL=$RSYS_TMP/evil.so
cp "$PROBE" "$TRUSTED"
cp "$PROBE" "$PAYLOAD"
head -c 4096 /dev/zero >>"$PAYLOAD"
PAYLOAD_SIZE=$(stat -c %s "$PAYLOAD")
TRUSTED_SIZE=$(stat -c %s "$TRUSTED")
cc -shared -fPIC -D_GNU_SOURCE -DEXEC_PROBE_LIB -o "$EVIL" "$RSYS_SRC/selftests/exec_probe.c" \
	2>"$RSYS_TMP/cc.err" || { tap_diag_file "$RSYS_TMP/cc.err"; ksft_skip "cannot build the preload library"; }
export PROBE_REACH=$RSYS_WORLD_IP:$HTTP_PORT
REACH=(reach "$RSYS_WORLD_IP" "$HTTP_PORT")

OPEN=$RSYS_POLICY
PINNED=$RSYS_TMP/pinned.policy
{ echo "trusted * sha256 $(sha256sum "$TRUSTED" | cut -d' ' -f1)"; grep -v '^trusted' "$OPEN"; } >"$PINNED"

# run POLICY NAME ARGS...: the trusted probe with ARGS under POLICY; stdout (one line), stderr in NAME.err.
run()
{
	local pol=$1 name=$2

	shift 2
	RSYS_POLICY=$pol RSYS_RUN_TIMEOUT=60 rsys_run "$TRUSTED" "$@" 2>"$RSYS_TMP/$name.err" | tr '\n' ' '
}

# attack DESC NAME ARGS...: under the pinned policy the payload must not reach the world,
# under "trusted *" it must.
attack()
{
	local desc=$1 name=$2 got ctl

	shift 2
	got=$(run "$PINNED" "$name" "$@")
	ctl=$(run "$OPEN" "$name.ctl" "$@")
	if [[ "$got" == *"REACHED $PAYLOAD_SIZE"* ]]; then
		tap_diag_file "$RSYS_TMP/$name.err"
		tap_not_ok "$desc: the untrusted payload reached the world ('$got')"
	elif [[ "$ctl" != *"REACHED $PAYLOAD_SIZE"* ]]; then
		tap_diag_file "$RSYS_TMP/$name.ctl.err"
		tap_not_ok "$desc: positive control: the payload did not reach the world with the passport off ('$ctl')"
	else
		echo "# pinned: $got| $(head -c 300 "$RSYS_TMP/$name.err" | tr '\n' ' ')"
		tap_ok "$desc: refused ($got), reaches the world with the passport off"
	fi
}

# Does this kernel let "rsys-load run" load its exec guard? Without it the monitor refuses
# every exec but the first: the cases that need the guard are skipped.
probe_out=$(run "$PINNED" guard hello)
GUARD=yes
if grep -q "cannot load the exec guard" "$RSYS_TMP/guard.err"; then
	GUARD="no: $(grep -m1 'exec guard' "$RSYS_TMP/guard.err")"
elif [ "$probe_out" != "HELLO " ]; then
	tap_diag_file "$RSYS_TMP/guard.err"
	ksft_skip "the pinned probe does not run under rsys-load ('$probe_out')"
fi

tap_plan 15

attack "execve(/dev/fd/N) of an untrusted binary" devfd devfd "$PAYLOAD" "${REACH[@]}"
attack "fexecve() of a memfd holding an untrusted binary" memfd memfd "$PAYLOAD" "${REACH[@]}"
attack "exec of a deleted untrusted file through /proc/self/fd/N" deleted \
	deleted "$PAYLOAD" "$RSYS_TMP/work" "${REACH[@]}"
attack "execveat(O_PATH fd, \"\", AT_EMPTY_PATH) of an untrusted binary" emptypath \
	emptypath "$PAYLOAD" "${REACH[@]}"
attack "exec through a symlink to /proc/self/fd/N (the check cannot resolve it: fail closed)" \
	magiclink magiclink "$PAYLOAD" "$RSYS_TMP/work" "${REACH[@]}"

# A "#!" script the policy trusts by digest still cannot start an untrusted interpreter.
SCRIPT=$RSYS_TMP/work/script
printf '#!%s reach\n' "$PAYLOAD" >"$SCRIPT"
chmod +x "$SCRIPT"
SCRIPTED=$RSYS_TMP/script.policy
{ echo "trusted * sha256 $(sha256sum "$SCRIPT" | cut -d' ' -f1)"; cat "$PINNED"; } >"$SCRIPTED"
got=$(run "$SCRIPTED" script env X=1 "$SCRIPT" "${REACH[@]}")
ctl=$(run "$OPEN" script.ctl env X=1 "$SCRIPT" "${REACH[@]}")
if [[ "$got" == *"REACHED $PAYLOAD_SIZE"* ]]; then
	tap_not_ok "#! script: a trusted script ran an untrusted interpreter ('$got')"
elif [[ "$ctl" != *"REACHED $PAYLOAD_SIZE"* ]]; then
	tap_diag_file "$RSYS_TMP/script.ctl.err"
	tap_not_ok "#! script: positive control did not reach the world ('$ctl')"
else
	echo "# $(head -c 300 "$RSYS_TMP/script.err" | tr '\n' ' ')"
	tap_ok "#! script: a trusted script cannot start an untrusted interpreter ($got)"
fi

# race KIND DESC: TRIES children of the pinned probe exec a path that flips between a trusted
# copy and the payload (race: the name on disk, memrace: the path string in the caller's
# memory) between the monitor's check and the kernel's read. The guard kills every exec
# that won the race against the monitor; none may reach the world.
race()
{
	local kind=$1 desc=$2 got ctl bad good cbad won refused

	if [ "$GUARD" != yes ]; then
		tap_skip "$desc: the exec guard is not available ($GUARD)"
		return
	fi
	rm -rf "${RSYS_TMP:?}/$kind"
	mkdir -p "$RSYS_TMP/$kind"
	chmod 1777 "$RSYS_TMP/$kind"
	got=$(run "$PINNED" "$kind" "$kind" "$TRUSTED" "$PAYLOAD" "$RSYS_TMP/$kind" "$TRIES" "${REACH[@]}")
	ctl=$(run "$OPEN" "$kind.ctl" "$kind" "$TRUSTED" "$PAYLOAD" "$RSYS_TMP/$kind" "$TRIES" "${REACH[@]}")
	bad=$(grep -o "REACHED $PAYLOAD_SIZE" <<<"$got" | wc -l)
	good=$(grep -o "REACHED $TRUSTED_SIZE" <<<"$got" | wc -l)
	cbad=$(grep -o "REACHED $PAYLOAD_SIZE" <<<"$ctl" | wc -l)
	won=$(grep -c "untrusted exec killed" "$RSYS_TMP/$kind.err")
	# execs the monitor's own check refused (it saw the payload, or a file changing under it)
	refused=$(grep -c "is not trusted\|was written while\|execve of .* refused" "$RSYS_TMP/$kind.err")
	echo "# pinned: tries${got##*tries}, trusted reached $good, payload reached $bad; killed by the guard after the monitor approved: $won; refused by the check: $refused; passport off: payload reached $cbad"
	if [ "$bad" -ne 0 ]; then
		tap_not_ok "$desc: the payload reached the world $bad times in $TRIES tries"
	elif [ "$cbad" -eq 0 ]; then
		tap_not_ok "$desc: positive control: the payload never ran with the passport off"
	elif [ "$good" -eq 0 ] && [ "$won" -eq 0 ] && [ "$refused" -eq 0 ]; then
		# The trusted program never ran, no exec won the race and the check refused none:
		# nothing was exercised. (On an idle machine the swapper can be so fast that the
		# check sees the file change every time and refuses every exec: fail closed.)
		tap_not_ok "$desc: the trusted program never ran either (the case exercised nothing)"
	else
		tap_ok "$desc: $TRIES tries, the payload never reached the world ($won execs killed after winning against the check)"
	fi
}
race race "rename race (the path swapped on disk)"
race memrace "path-string race (a second thread rewrites the path execve reads)"

# The dynamic loader's environment: foreign code inside a trusted image.
env_attack()
{
	local desc=$1 name=$2 got ctl

	shift 2
	if [ "$GUARD" != yes ]; then
		tap_skip "$desc: the exec guard is not available ($GUARD)"
		return
	fi
	got=$(run "$PINNED" "$name" "$@")
	ctl=$(run "$OPEN" "$name.ctl" "$@")
	if [[ "$got" == *REACHED* ]]; then
		tap_not_ok "$desc: the library reached the world ('$got')"
	elif [[ "$ctl" != *"REACHED $TRUSTED_SIZE"* ]]; then
		tap_diag_file "$RSYS_TMP/$name.ctl.err"
		tap_not_ok "$desc: positive control: the library did not reach the world with the passport off ('$ctl')"
	elif ! grep -q "untrusted exec killed.*${2%%=*}" "$RSYS_TMP/$name.err"; then
		tap_diag_file "$RSYS_TMP/$name.err"
		tap_not_ok "$desc: no 'untrusted exec killed' message naming the variable"
	else
		echo "# $(grep -m1 'untrusted exec killed' "$RSYS_TMP/$name.err")"
		tap_ok "$desc: killed before its first instruction; reaches the world with the passport off"
	fi
}
env_attack "LD_PRELOAD of a library into a trusted exec" preload env "LD_PRELOAD=$EVIL" "$TRUSTED" hello
env_attack "LD_AUDIT library into a trusted exec" audit env "LD_AUDIT=$EVIL" "$TRUSTED" hello

# LD_PRELOAD given to "rsys-load run" itself reaches the program it starts.
if [ "$GUARD" != yes ]; then
	tap_skip "LD_PRELOAD into the initial program: the exec guard is not available ($GUARD)"
else
	got=$(LD_PRELOAD=$EVIL run "$PINNED" initial hello)
	ctl=$(LD_PRELOAD=$EVIL run "$OPEN" initial.ctl hello)
	if [[ "$got" == *REACHED* || "$got" == *HELLO* ]]; then
		tap_not_ok "LD_PRELOAD into the initial program: it ran ('$got')"
	elif [[ "$ctl" != *"REACHED $TRUSTED_SIZE"* ]]; then
		tap_not_ok "LD_PRELOAD into the initial program: positive control did not reach the world ('$ctl')"
	else
		tap_ok "LD_PRELOAD into the initial program: killed; reaches the world with the passport off"
	fi
fi

# "trusted-env LD_PRELOAD" in the policy allows what the guard otherwise kills.
if [ "$GUARD" != yes ]; then
	tap_skip "trusted-env: the exec guard is not available ($GUARD)"
else
	ALLOW=$RSYS_TMP/allow.policy
	{ echo "trusted-env LD_PRELOAD"; cat "$PINNED"; } >"$ALLOW"
	got=$(run "$ALLOW" allow env "LD_PRELOAD=$EVIL" "$TRUSTED" hello)
	if [ "$got" = "REACHED $TRUSTED_SIZE HELLO " ]; then
		tap_ok "trusted-env LD_PRELOAD: the policy lets the library in"
	else
		tap_diag_file "$RSYS_TMP/allow.err"
		tap_not_ok "trusted-env LD_PRELOAD: expected 'REACHED $TRUSTED_SIZE HELLO', got '$got'"
	fi
fi

# Where the kernel refuses the guard (here: every bpf() call fails, injected by strace), the
# monitor alone cannot win the race, so it refuses every exec after the first.
if ! command -v strace >/dev/null; then
	tap_skip "without the exec guard: strace not found (to make bpf() fail)"
else
	got=$(timeout 120 strace -o /dev/null -e inject=bpf:error=EPERM \
		"$RSYS_LOAD" run $RSYS_MODE_OPT --policy "$PINNED" --delegate "$RSYS_DELEGATE" -- "$TRUSTED" \
		race "$TRUSTED" "$PAYLOAD" "$RSYS_TMP/work" 50 "${REACH[@]}" 2>"$RSYS_TMP/noguard.err" |
		tr '\n' ' ')
	if [[ "$got" == *REACHED* ]]; then
		tap_not_ok "without the exec guard: an exec ran ('$got')"
	elif ! grep -q "cannot load the exec guard" "$RSYS_TMP/noguard.err" ||
	     ! grep -q "the exec guard (BPF) is not loaded" "$RSYS_TMP/noguard.err"; then
		tap_diag_file "$RSYS_TMP/noguard.err"
		tap_not_ok "without the exec guard: no message saying so"
	else
		tap_ok "without the exec guard: rsys-load says so and refuses every later exec ($got)"
	fi
fi

# No false kills: the trusted image itself through every one of these ways runs.
GOOD=$RSYS_TMP/work/good
printf '#!%s hello\n' "$TRUSTED" >"$GOOD"
chmod +x "$GOOD"
{ echo "trusted * sha256 $(sha256sum "$GOOD" | cut -d' ' -f1)"; cat "$PINNED"; } >"$RSYS_TMP/good.policy"
legit=
for way in "env X=1 $TRUSTED" "devfd $TRUSTED" "memfd $TRUSTED" "deleted $TRUSTED $RSYS_TMP/work" \
	"emptypath $TRUSTED" "env X=1 /proc/self/exe" "env X=1 $GOOD"; do
	# shellcheck disable=SC2086 # $way is a list of words
	legit+="$(run "$RSYS_TMP/good.policy" legit $way hello)| "
done
want="HELLO | HELLO | HELLO | HELLO | HELLO | HELLO | HELLO | "
if [ "$GUARD" != yes ]; then
	tap_skip "trusted images through /dev/fd, memfd, deleted file, AT_EMPTY_PATH, /proc/self/exe, #!: the exec guard is not available ($GUARD)"
elif [ "$legit" = "$want" ]; then
	tap_ok "trusted images through /dev/fd, memfd, deleted file, AT_EMPTY_PATH, /proc/self/exe, #! all run"
else
	tap_diag_file "$RSYS_TMP/legit.err"
	tap_not_ok "trusted images: expected '$want', got '$legit'"
fi

# What the kernel refuses without running anything keeps its errno (execvp's PATH search
# relies on ENOENT), as natively.
errs=
for target in "$RSYS_TMP/nonexistent" "$TRUSTED/x" "$RSYS_TMP/work"; do
	errs+="$(run "$PINNED" errno env X=1 "$target" hello)| "
done
native=
for target in "$RSYS_TMP/nonexistent" "$TRUSTED/x" "$RSYS_TMP/work"; do
	native+="$(rsys_native "$TRUSTED" env X=1 "$target" hello 2>/dev/null | tr '\n' ' ')| "
done
if [ "$errs" = "$native" ]; then
	tap_ok "no such file, not a directory, a directory: the same errno as natively ($errs)"
else
	tap_diag_file "$RSYS_TMP/errno.err"
	tap_not_ok "errno: expected '$native' (native), got '$errs'"
fi

tap_finish
