# SPDX-License-Identifier: GPL-2.0
# Builds muser.ko with kbuild. KVER picks an installed kernel, KDIR any tree.
KVER ?= $(shell uname -r)
KDIR ?= /lib/modules/$(KVER)/build

all: modules

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

modules_install:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules_install

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean

# Kernel style for the module and the uapi header (checkpatch from
# linux-source-6.1, extracted by tools/checkpatch.sh).
style:
	tools/checkpatch.sh kmod/*.c kmod/*.h include/uapi/linux/muser.h

.PHONY: all modules modules_install clean style
