#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""genl_policy.py UUID N: the "muser" generic netlink family, over a raw
netlink socket (no libnl), against a live muser device UUID when N muser
devices exist.

  - GET_DEVICE UUID: a reply with every attribute, of the right sizes
  - GET_DEVICE with no UUID, the UUID as a u32 (no NUL), a 40-character
    UUID, an unknown attribute type, an attribute the policy does not take,
    all with a valid UUID too: EINVAL
  - a dump with an unknown attribute: EINVAL
  - GET_DEVICE of a UUID nobody has: ENODEV, "no muser device with that UUID"
  - an unknown command and MUSER_CMD_EVENT as a request: EOPNOTSUPP
  - a dump: N replies, UUID among them

Prints "ok"/"FAIL" per check; exit status 0 iff all passed.
"""
import errno
import os
import socket
import struct
import sys

NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLMSGERR_ATTR_MSG = 1
GENL_ID_CTRL, CTRL_CMD_GETFAMILY = 0x10, 3
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 1, 2

# <linux/muser.h>
CMD_GET_DEVICE, CMD_EVENT = 1, 2
(ATTR_UUID, ATTR_STATE, ATTR_EMULATOR_PID, ATTR_VMM_OPEN, ATTR_PINNED_PAGES,
 ATTR_MAPPED_PAGES, ATTR_REQUESTS, ATTR_REQUESTS_FAILED, ATTR_RESTARTS,
 ATTR_LAST_ERROR, ATTR_EVENT, ATTR_IOVA, ATTR_SIZE, ATTR_DEVMEM_PAGES,
 ATTR_DEVMEM_BUDGET) = range(2, 17)
ATTR_MAX = ATTR_DEVMEM_BUDGET
REPLY_SIZES = {ATTR_UUID: 37, ATTR_STATE: 4, ATTR_EMULATOR_PID: 4,
               ATTR_VMM_OPEN: 4, ATTR_PINNED_PAGES: 8, ATTR_MAPPED_PAGES: 8,
               ATTR_REQUESTS: 8, ATTR_REQUESTS_FAILED: 8, ATTR_RESTARTS: 4,
               ATTR_LAST_ERROR: 4, ATTR_DEVMEM_PAGES: 8, ATTR_DEVMEM_BUDGET: 8}

failures = 0
seq = 0


def check(what, cond, detail=""):
    global failures
    print(("ok   " if cond else "FAIL ") + what + (f" ({detail})" if detail else ""))
    if not cond:
        failures += 1


def attr(atype, data):
    a = struct.pack("=HH", 4 + len(data), atype) + data
    return a + b"\0" * (-len(a) % 4)


def parse_attrs(buf):
    attrs = {}
    while len(buf) >= 4:
        alen, atype = struct.unpack_from("=HH", buf)
        if alen < 4:
            break
        attrs[atype & 0x3fff] = buf[4:alen]
        buf = buf[(alen + 3) & ~3:]
    return attrs


def request(sock, family, cmd, attrs=b"", flags=0):
    """Send; return (errno, ext ack message, [reply attribute dicts])."""
    global seq
    seq += 1
    body = struct.pack("=BBH", cmd, 1, 0) + attrs
    sock.send(struct.pack("=IHHII", 16 + len(body), family,
                          NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0) + body)
    replies = []
    while True:
        data = sock.recv(65536)
        off = 0
        while off + 16 <= len(data):
            mlen, mtype, mflags, mseq, _ = struct.unpack_from("=IHHII", data, off)
            msg = data[off + 16:off + mlen]
            off += (mlen + 3) & ~3
            if mseq != seq:
                continue
            if mtype == NLMSG_DONE:
                return 0, "", replies
            if mtype == NLMSG_ERROR:
                err = -struct.unpack_from("=i", msg)[0]
                text = ""
                if mflags & NLM_F_ACK_TLVS:
                    skip = 4 + (16 if mflags & NLM_F_CAPPED else
                                struct.unpack_from("=I", msg, 4)[0])
                    tlvs = parse_attrs(msg[(skip + 3) & ~3:])
                    text = tlvs.get(NLMSGERR_ATTR_MSG, b"").rstrip(b"\0").decode()
                return err, text, replies
            replies.append((msg[0], parse_attrs(msg[4:])))


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    uuid, ndev = sys.argv[1], int(sys.argv[2])
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
    sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
    sock.bind((0, 0))

    err, text, rep = request(sock, GENL_ID_CTRL, CTRL_CMD_GETFAMILY,
                             attr(CTRL_ATTR_FAMILY_NAME, b"muser\0"))
    if err or not rep:
        print(f"FAIL resolving the family 'muser': {os.strerror(err)} {text}")
        return 1
    family = struct.unpack("=H", rep[0][1][CTRL_ATTR_FAMILY_ID][:2])[0]
    print(f"# family muser has id {family}")
    good = attr(ATTR_UUID, uuid.encode() + b"\0")

    err, text, rep = request(sock, family, CMD_GET_DEVICE, good)
    check("GET_DEVICE UUID succeeds", err == 0 and len(rep) == 1,
          f"{os.strerror(err)}, {len(rep)} replies")
    if rep:
        cmd, attrs = rep[0]
        check("the reply is a GET_DEVICE", cmd == CMD_GET_DEVICE, str(cmd))
        check("the reply's UUID", attrs.get(ATTR_UUID, b"").rstrip(b"\0").decode() == uuid)
        for a, size in REPLY_SIZES.items():
            check(f"reply attribute {a} of {size} bytes",
                  a in attrs and len(attrs[a]) == size,
                  f"{len(attrs[a]) if a in attrs else 'missing'}")

    bad = [
        ("no UUID", b""),
        ("the UUID as a u32", attr(ATTR_UUID, struct.pack("=I", 0x41414141))),
        ("a 40-character UUID", attr(ATTR_UUID, uuid.encode() + b"abcd\0")),
        ("an unknown attribute type", good + attr(ATTR_MAX + 20, struct.pack("=I", 1))),
        ("an attribute the policy does not take", good + attr(ATTR_STATE, struct.pack("=I", 1))),
    ]
    for what, attrs in bad:
        err, text, rep = request(sock, family, CMD_GET_DEVICE, attrs)
        check(f"GET_DEVICE with {what}: EINVAL", err == errno.EINVAL and not rep,
              f"{os.strerror(err) if err else 'success'}: '{text}'")
    err, text, rep = request(sock, family, CMD_GET_DEVICE,
                             attr(ATTR_MAX + 20, struct.pack("=I", 1)), NLM_F_DUMP)
    check("a dump with an unknown attribute type: EINVAL", err == errno.EINVAL,
          f"{os.strerror(err) if err else 'success'}: '{text}'")

    err, text, rep = request(sock, family, CMD_GET_DEVICE,
                             attr(ATTR_UUID, b"00000000-0000-4000-8000-000000000000\0"))
    check("GET_DEVICE of a UUID nobody has: ENODEV", err == errno.ENODEV,
          os.strerror(err) if err else "success")
    check("... with the message 'no muser device with that UUID'",
          text == "no muser device with that UUID", f"'{text}'")

    for what, cmd in (("an unknown command", 42), ("MUSER_CMD_EVENT", CMD_EVENT)):
        err, text, rep = request(sock, family, cmd, good)
        check(f"{what} as a request: EOPNOTSUPP", err == errno.EOPNOTSUPP,
              os.strerror(err) if err else "success")

    err, text, rep = request(sock, family, CMD_GET_DEVICE, b"", NLM_F_DUMP)
    uuids = [a.get(ATTR_UUID, b"").rstrip(b"\0").decode() for _, a in rep]
    check(f"a dump: {ndev} devices", err == 0 and len(rep) == ndev,
          f"{os.strerror(err) if err else 'ok'}, {uuids}")
    check("a dump: the UUID among them", uuid in uuids)
    check("a dump: every reply complete",
          all(set(REPLY_SIZES) <= set(a) for _, a in rep))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
