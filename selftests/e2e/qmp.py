#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Minimal QMP client (stdlib only) for driving an unmodified QEMU whose CPUs
are stopped (-S): HMP commands through human-monitor-command, real PCI
configuration cycles through the 0xcf8/0xcfc ports, physical memory reads
through xp (which go through QEMU's memory dispatch, i.e. through vfio-pci).

Usable as a module (class Qmp) or from the shell:

  qmp.py SOCK wait [TIMEOUT]            wait until QEMU answers on SOCK
  qmp.py SOCK hmp CMD [CMD...]          run HMP commands, print their output
  qmp.py SOCK qmp JSON                  run one raw QMP command, print "return"
  qmp.py SOCK cfg-read BDF OFF [SIZE]   config read (SIZE 1, 2 or 4), print 0x...
  qmp.py SOCK cfg-write BDF OFF SIZE VAL
  qmp.py SOCK xp ADDR [COUNT [SIZE]]    COUNT separate reads of SIZE bytes
                                        (1, 2, 4, 8) at ADDR, one value a line
  qmp.py SOCK in PORT [COUNT [SIZE]]    the same with I/O port reads
  qmp.py SOCK quit                      ask QEMU to exit
  qmp.py SOCK shell [TIMEOUT [PID]]     one session for many commands (starting
                                        python is slow under TCG): reads the
                                        operations above from stdin, one a line
                                        ("hmp" takes the rest of the line as one
                                        HMP command), answers each with its
                                        output followed by a line "=ok" or
                                        "=err MESSAGE". Waits up to TIMEOUT
                                        seconds for QEMU (process PID) to answer.

BDF is "bus:slot.fn" in hex (e.g. 00:04.0). Numbers accept 0x prefixes.
Exit status: 0 on success, 1 on a QMP error or a malformed answer, 2 on usage
errors, 3 if QEMU could not be reached.
"""

import json
import os
import re
import socket
import sys
import time


class QmpError(Exception):
    pass


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class Qmp:
    """One QMP session over a UNIX socket."""

    def __init__(self, path, timeout=60.0, connect_timeout=0.0, pid=0):
        """Connect to the QMP socket path, retrying for connect_timeout
        seconds while process pid (if given) lives; each answer may take up
        to timeout seconds (QEMU greets only once its devices are realized)."""
        deadline = time.monotonic() + connect_timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(max(timeout, connect_timeout))
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() >= deadline or (pid and not _alive(pid)):
                    raise
                time.sleep(0.2)
        self.buf = b""
        greeting = self._recv()
        if "QMP" not in greeting:
            raise QmpError("no QMP greeting: %r" % greeting)
        self.execute("qmp_capabilities")
        self.sock.settimeout(timeout)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _recv(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise QmpError("QEMU closed the monitor")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, cmd, **args):
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            resp = self._recv()
            if "event" in resp:
                continue
            if "error" in resp:
                raise QmpError("%s: %s" % (cmd, resp["error"].get("desc", resp)))
            if "return" in resp:
                return resp["return"]

    def hmp(self, line):
        return self.execute("human-monitor-command", **{"command-line": line})

    # --- port I/O and PCI configuration cycles -------------------------------

    # HMP size letters, as for xp: b=1, h=2, w=4 (not "l")
    _SUFFIX = {1: "b", 2: "h", 4: "w"}

    def port_in(self, port, size=4):
        out = self.hmp("i /%s 0x%x" % (self._SUFFIX[size], port))
        m = re.search(r"=\s*(0x[0-9a-fA-F]+)", out)
        if not m:
            raise QmpError("unexpected 'i' output: %r" % out)
        return int(m.group(1), 16)

    def port_out(self, port, val, size=4):
        out = self.hmp("o /%s 0x%x 0x%x" % (self._SUFFIX[size], port, val))
        if out.strip():
            raise QmpError("unexpected 'o' output: %r" % out)

    @staticmethod
    def cfg_addr(bus, slot, fn, off):
        return 0x80000000 | bus << 16 | slot << 11 | fn << 8 | (off & 0xfc)

    def cfg_read(self, bus, slot, fn, off, size=4):
        if off & (size - 1):
            raise ValueError("unaligned config access")
        self.port_out(0xcf8, self.cfg_addr(bus, slot, fn, off))
        return self.port_in(0xcfc + (off & 3), size)

    def cfg_write(self, bus, slot, fn, off, val, size=4):
        if off & (size - 1):
            raise ValueError("unaligned config access")
        self.port_out(0xcf8, self.cfg_addr(bus, slot, fn, off))
        self.port_out(0xcfc + (off & 3), val, size)

    # --- physical memory -------------------------------------------------------

    _XP = {1: "b", 2: "h", 4: "w", 8: "g"}

    def xp(self, addr, size=1):
        """One read of size bytes at guest-physical addr."""
        out = self.hmp("xp /1%sx 0x%x" % (self._XP[size], addr))
        m = re.match(r"\s*[0-9a-fA-F]+:\s*(0x[0-9a-fA-F]+)\s*$", out)
        if not m:
            raise QmpError("unexpected 'xp' output: %r" % out)
        return int(m.group(1), 16)


def parse_bdf(s):
    m = re.fullmatch(r"([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])", s)
    if not m:
        raise ValueError("bad BDF %r (want bus:slot.fn in hex)" % s)
    return int(m.group(1), 16), int(m.group(2), 16), int(m.group(3))


def run_op(q, op, args, out):
    num = lambda s: int(s, 0)
    if op == "hmp":
        for cmd in args:
            out.write(q.hmp(cmd))
    elif op == "qmp":
        msg = json.loads(args[0])
        ret = q.execute(msg["execute"], **msg.get("arguments", {}))
        out.write(json.dumps(ret) + "\n")
    elif op == "cfg-read":
        size = num(args[2]) if len(args) > 2 else 4
        val = q.cfg_read(*parse_bdf(args[0]), num(args[1]), size)
        out.write("0x%0*x\n" % (2 * size, val))
    elif op == "cfg-write":
        q.cfg_write(*parse_bdf(args[0]), num(args[1]), num(args[3]), num(args[2]))
    elif op in ("xp", "in"):
        addr = num(args[0])
        count = num(args[1]) if len(args) > 1 else 1
        size = num(args[2]) if len(args) > 2 else 1
        for _ in range(count):
            v = q.xp(addr, size) if op == "xp" else q.port_in(addr, size)
            out.write("0x%0*x\n" % (2 * size, v))
    elif op == "quit":
        try:
            q.execute("quit")
        except (QmpError, OSError):
            pass  # QEMU may close the socket before answering
    else:
        raise ValueError("unknown operation %r" % op)


def shell(q):
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        op, _, rest = line.partition(" ")
        args = [rest] if op == "hmp" else rest.split()
        try:
            run_op(q, op, args, sys.stdout)
            sys.stdout.write("=ok\n")
        except (IndexError, ValueError, KeyError, QmpError) as e:
            sys.stdout.write("=err %s\n" % e)
        sys.stdout.flush()
        if op == "quit":
            break


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    path, op, args = argv[1], argv[2], argv[3:]
    try:
        if op == "wait":
            timeout = float(args[0]) if args else 30.0
            with Qmp(path, connect_timeout=timeout):
                pass
            return 0
        if op == "shell":
            timeout = float(args[0]) if args else 30.0
            pid = int(args[1]) if len(args) > 1 else 0
            with Qmp(path, connect_timeout=timeout, pid=pid) as q:
                shell(q)
            return 0
        with Qmp(path) as q:
            run_op(q, op, args, sys.stdout)
    except (IndexError, ValueError, KeyError) as e:
        sys.stderr.write("qmp.py: usage: %s\n" % e)
        return 2
    except QmpError as e:
        sys.stderr.write("qmp.py: %s\n" % e)
        return 1
    except OSError as e:
        sys.stderr.write("qmp.py: %s: %s\n" % (path, e))
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
