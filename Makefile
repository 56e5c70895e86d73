# SPDX-License-Identifier: GPL-2.0
# Builds muser.ko with kbuild. KVER picks an installed kernel, KDIR any tree.
#
#   make                      muser.ko for the running kernel (KVER=..., KDIR=...)
#   make install              modules_install into /lib/modules/KVER/updates,
#                             then depmod (INSTALL_MOD_PATH=DIR stages it)
#   make dkms-install         the module's sources to /usr/src/muser-VERSION
#                             for dkms (DESTDIR=DIR stages them)
KVER ?= $(shell uname -r)
KDIR ?= /lib/modules/$(KVER)/build
INSTALL_MOD_DIR ?= updates
# The one version of the project (CMake, dkms and the module read it).
VERSION := $(shell cat $(CURDIR)/VERSION 2>/dev/null)
DKMS_DIR ?= /usr/src/muser-$(VERSION)
# What the module is built from, all dkms needs.
KMOD_SOURCES := Kbuild Makefile VERSION $(wildcard kmod/*.c kmod/*.h) \
		include/uapi/linux/muser.h

all: modules

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

# KERNELRELEASE: Debian's 6.1 headers name the upstream release (6.1.N) in
# include/config/kernel.release, not the package's (6.1.0-N-amd64).
modules_install:
	$(MAKE) -C $(KDIR) M=$(CURDIR) KERNELRELEASE=$(KVER) \
		INSTALL_MOD_DIR=$(INSTALL_MOD_DIR) modules_install

install: modules
	$(MAKE) -f $(firstword $(MAKEFILE_LIST)) modules_install
	depmod $(if $(INSTALL_MOD_PATH),-b $(INSTALL_MOD_PATH)) $(KVER)

dkms-install:
	@test -n "$(VERSION)" || { echo "no version in the file VERSION" >&2; exit 1; }
	for f in $(KMOD_SOURCES); do \
		install -D -m 644 $$f $(DESTDIR)$(DKMS_DIR)/$$f || exit 1; \
	done
	sed 's/@VERSION@/$(VERSION)/' dkms.conf.in >$(DESTDIR)$(DKMS_DIR)/dkms.conf

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean

# Kernel style for the module and the uapi header (checkpatch from
# linux-source-6.1, extracted by tools/dev/checkpatch.sh).
style:
	tools/dev/checkpatch.sh kmod/*.c kmod/*.h include/uapi/linux/muser.h

.PHONY: all modules modules_install install dkms-install clean style
