# SPDX-License-Identifier: GPL-2.0
# Top-level build of rsys: BPF objects and skeletons, rsys-load, rsys-delegate, rsys-bench, tests.

O ?= .output
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR := $(PREFIX)/bin
MANDIR := $(PREFIX)/share/man
DATADIR := $(PREFIX)/share/rsys

CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
VMLINUX_H ?= $(O)/vmlinux.h

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# User CFLAGS/LDFLAGS (e.g. make CFLAGS=-O0) replace only the optimisation and debug flags.
CFLAGS ?= -O2 -g
LDFLAGS ?=
INCLUDES := -Iinclude -I$(O) -Ilib -Iloader -Ibpf -Iguest
ALL_CFLAGS := $(CFLAGS) -Wall -Wextra -Werror $(INCLUDES) -D_GNU_SOURCE -MMD -MP
# LOCKDEBUG=1: check the lock rule of rsys-load at run time (loader/lockdebug.h).
ifeq ($(LOCKDEBUG),1)
ALL_CFLAGS += -DRSYS_LOCKDEBUG -include loader/lockdebug.h
endif
ALL_LDFLAGS := $(CFLAGS) $(LDFLAGS)
BPF_CFLAGS := -O2 -g -Wall -Werror -target bpf -D__TARGET_ARCH_x86 -Iinclude -I$(O) \
	-I$(dir $(VMLINUX_H))

# The KVM tier's program (bpf/kvm_rsys.bpf.c) relocates the patched kernel's types by name:
# it builds against this machine's BTF and loads where the hook is (rsys-load vm).
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(O)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(O)/%.skel.h,$(BPF_SRCS))

LIB_OBJS := $(patsubst %.c,$(O)/%.o,$(wildcard lib/*.c))
LOAD_OBJS := $(patsubst %.c,$(O)/%.o,$(wildcard loader/*.c guest/*.c))
DELEGATE_OBJS := $(patsubst %.c,$(O)/%.o,$(wildcard delegate/*.c))
BENCH_OBJS := $(patsubst %.c,$(O)/%.o,$(wildcard loader/bench/*.c))

BINS := $(O)/rsys-load $(O)/rsys-delegate $(O)/rsys-bench
# The compute VM's init (guest/init/), static: the guest has no libraries for it.
GUEST_INIT := $(O)/rsys-guest-init
# make guest-image: a guest kernel and the programs GUEST_PROGS names, with busybox and GUEST_INIT,
# into $(O)/guest-image/. GUEST_KERNEL: a bzImage; "debian": Debian's stock kernel, downloaded
# (guest/debian-kernel.sh); unset: the one make vmtest builds (the 6.12 tree), else Debian's.
RSYS_KVM_CACHE ?= /var/cache/rsys-kvm
VMTEST_KERNEL := $(RSYS_KVM_CACHE)/build/arch/x86/boot/bzImage
GUEST_KERNEL ?= $(if $(wildcard $(VMTEST_KERNEL)),$(VMTEST_KERNEL),debian)
GUEST_PROGS ?=

DEB_PACKAGES := make gcc git clang llvm libbpf-dev bpftool libseccomp-dev libelf-dev zlib1g-dev \
	iproute2 curl netcat-openbsd python3 procps gnuplot-nox \
	linux-source-6.12 qemu-system-x86 dwarves ccache busybox-static flex bison bc \
	libssl-dev cpio xz-utils rsync kmod libpython3.11-testsuite libfuzzer-14-dev libclang-rt-14-dev strace \
	passt slirp4netns iperf3 sockperf nginx wrk openssh-server golang-go

.DELETE_ON_ERROR:
# Keep BPF objects and skeletons: they are intermediates of chained pattern rules.
.SECONDARY:
.PHONY: all deps deps-check test selftests vmtest peers demo install uninstall clean fuzz fuzz-build \
	check-tsan guest-image

all: $(BINS) $(GUEST_INIT)

# nginx and openssh-server would start their services on install: selftests/peers.sh runs its
# own in namespaces, so a policy-rc.d (unless one exists) keeps them from starting meanwhile.
deps:
	apt-get update -q
	prc=; if [ ! -e /usr/sbin/policy-rc.d ]; then prc=/usr/sbin/policy-rc.d; \
		printf '#!/bin/sh\n# make deps (rsys): start no service while installing\nexit 101\n' >$$prc && \
		chmod 0755 $$prc; fi; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(DEB_PACKAGES); \
	rc=$$?; [ -z "$$prc" ] || rm -f $$prc; exit $$rc

# "make demo" and "make test" install nothing: they name what "make deps" would install.
deps-check:
	$(Q)missing=; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "Error: missing Debian packages:$$missing (run 'make deps' first)" >&2; \
		exit 1; fi

$(VMLINUX_H):
	@mkdir -p $(dir $@)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@

$(O)/bpf/%.bpf.o: bpf/%.bpf.c $(VMLINUX_H) $(wildcard bpf/*.h include/rsys/*.h)
	@mkdir -p $(dir $@)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(O)/%.skel.h: $(O)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(O)/%.o: %.c | $(SKELS)
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(O)/librsys.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(O)/rsys-load: $(LOAD_OBJS) $(O)/librsys.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ -lbpf -lelf -lz -lseccomp -lssl -lcrypto -lpthread

$(O)/rsys-delegate: $(DELEGATE_OBJS) $(O)/librsys.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ -lbpf -lelf -lz -lssl -lcrypto -lpthread

$(O)/rsys-bench: $(BENCH_OBJS) $(O)/librsys.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ -lpthread -lm

$(GUEST_INIT): guest/init/init.c include/rsys/vm.h
	@mkdir -p $(dir $@)
	$(call msg,CC-STATIC,$@)
	$(Q)$(CC) $(CFLAGS) -Wall -Wextra -Werror -Iinclude -D_GNU_SOURCE -static $(LDFLAGS) -o $@ $<

guest-image: $(GUEST_INIT)
	$(Q)guest/mkimage.sh -o $(O)/guest-image/image.cpio.gz -i $(GUEST_INIT) $(GUEST_PROGS)
	$(Q)if [ "$(GUEST_KERNEL)" = debian ]; then guest/debian-kernel.sh $(O)/guest-image/bzImage; \
	elif [ -f "$(GUEST_KERNEL)" ]; then cp "$(GUEST_KERNEL)" $(O)/guest-image/bzImage && \
		echo "guest kernel: $(O)/guest-image/bzImage"; \
	else echo "Error: no guest kernel at $(GUEST_KERNEL): a bzImage, or GUEST_KERNEL=debian" >&2; \
		exit 1; fi

# libFuzzer targets of the parsers that read untrusted input (fuzz/), built with clang's
# sanitizers straight from lib/; "make fuzz FUZZ_SECONDS=N" runs them N s in all.
FUZZ_TARGETS := $(patsubst fuzz/fuzz_%.c,$(O)/fuzz/fuzz_%,$(filter-out fuzz/fuzz_common.c,$(wildcard fuzz/fuzz_*.c)))
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-Wall -Wextra -Werror -Iinclude -Ilib -D_GNU_SOURCE
FUZZ_SECONDS ?= 60

$(O)/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.c fuzz/fuzz.h $(wildcard lib/*.c lib/*.h include/rsys/*.h)
	@mkdir -p $(dir $@)
	$(call msg,FUZZ-CC,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -o $@ $< fuzz/fuzz_common.c $(wildcard lib/*.c) -lssl -lcrypto -ldl

fuzz-build: $(FUZZ_TARGETS)

fuzz: fuzz-build
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) selftests/fuzz_test.sh $(abspath $(O))

selftests: all
	$(Q)$(MAKE) -C selftests O=$(abspath $(O))

# rsys-load and rsys-delegate built with ThreadSanitizer and LOCKDEBUG in their own output directory, and
# selftests/stress_test.sh run with them for TSAN_SECONDS: a TSAN report is a failure. The
# trusted program (selftests/stress_recv) is built without: TSAN watches the monitor.
TSAN_O ?= $(O)-tsan
TSAN_SECONDS ?= 60
TSAN_CFLAGS := -O1 -g -fsanitize=thread

check-tsan:
	$(Q)$(MAKE) O=$(TSAN_O) CFLAGS="$(TSAN_CFLAGS)" LDFLAGS="-fsanitize=thread" LOCKDEBUG=1 \
		$(TSAN_O)/rsys-load $(TSAN_O)/rsys-delegate
	$(Q)$(MAKE) -C selftests O=$(abspath $(TSAN_O)) $(abspath $(TSAN_O))/selftests/stress_recv \
		$(abspath $(TSAN_O))/selftests/world_server
	$(Q)RSYS_O=$(abspath $(TSAN_O)) RSYS_TSAN=1 RSYS_STRESS_SECONDS=$(TSAN_SECONDS) \
		selftests/stress_test.sh

# Host-tier selftests, real programs and the KVM tier under QEMU; last line "N passed, N failed".
test: deps-check
	$(Q)$(MAKE) all
	$(Q)$(MAKE) -C selftests O=$(abspath $(O))
	$(Q)selftests/run_all.sh $(abspath $(O))

vmtest:
	$(Q)kvm-patch/vmtest.sh

# rsys against native veth, pasta and slirp4netns (selftests/peers.sh); PEERS_ARGS adds options.
peers: deps-check
	$(Q)$(MAKE) all
	$(Q)selftests/peers.sh $(PEERS_ARGS) -o $(abspath $(O))/peers.png

demo: deps-check
	$(Q)$(MAKE) all
	$(Q)./demo.sh

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(DATADIR)/policy \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 0755 $(BINS) $(DESTDIR)$(BINDIR)/
	install -m 0755 $(GUEST_INIT) guest/mkimage.sh guest/debian-kernel.sh $(DESTDIR)$(DATADIR)/
	install -m 0644 doc/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 doc/*.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 policy/*.policy $(DESTDIR)$(DATADIR)/policy/
	install -m 0644 doc/rsys-load.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/rsys-load

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,rsys-load rsys-delegate rsys-bench)
	rm -f $(DESTDIR)$(MANDIR)/man1/rsys-*.1 $(DESTDIR)$(MANDIR)/man8/rsys-*.8 $(DESTDIR)$(PREFIX)/share/bash-completion/completions/rsys-load
	rm -rf $(DESTDIR)$(DATADIR)

clean:
	rm -rf $(O) $(TSAN_O)
	$(Q)$(MAKE) -C selftests clean O=$(abspath $(O)) 2>/dev/null || true

-include $(shell find $(O) -name '*.d' 2>/dev/null)
