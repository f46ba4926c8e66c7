"""A link emulator in user space: two TUN devices and a process that moves packets between them.

This machine's kernel has no ``sch_netem`` (and no tc classifiers), so ``tc netem`` cannot
delay or drop packets here. The relay does what netem would, on real IP packets of the real
kernel TCP stacks: every packet read from one end is written to the other after ``delay`` ±
``jitter`` (uniform) unless it is dropped (``loss`` probability), or never (``cut``). TCP sees a
real slow, lossy or dead link: its retransmissions, timeouts and reordering are the kernel's.

Run as ``python -m tests.chaos.relay NAME_A NAME_B``: it creates both TUN devices (in the
caller's namespace; the lab then moves one into the host's namespace, the open descriptor
stays attached), prints ``ready``, and reads commands on stdin, one per line:
``pass`` | ``cut`` | ``netem DELAY_MS JITTER_MS LOSS_PERCENT``; each is answered ``ok``.
It exits when stdin closes.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import os
import random
import selectors
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def main(name_a: str, name_b: str) -> None:
    ends = {open_tun(name_a): None, open_tun(name_b): None}
    fa, fb = list(ends)
    other = {fa: fb, fb: fa}
    delay = jitter = loss = 0.0
    cut = False
    queue: list[tuple[float, int, int, bytes]] = []  # (due, seq, fd, packet)
    seq = 0
    sel = selectors.DefaultSelector()
    for fd in (fa, fb):
        sel.register(fd, selectors.EVENT_READ)
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ)
    print("ready", flush=True)
    stdin = os.fdopen(sys.stdin.fileno(), "rb", buffering=0)
    pending = b""
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        for key, _ in sel.select(timeout):
            fd = key.fd
            if fd in other:
                for _ in range(64):
                    try:
                        packet = os.read(fd, 65536)
                    except BlockingIOError:
                        break
                    if cut or (loss and random.random() < loss):
                        continue
                    wait = delay + (random.uniform(-jitter, jitter) if jitter else 0.0)
                    if wait <= 0 and not queue:
                        _write(other[fd], packet)
                    else:
                        seq += 1
                        heapq.heappush(queue, (time.monotonic() + max(0.0, wait), seq, other[fd], packet))
                continue
            chunk = stdin.read(4096)
            if not chunk:
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                words = line.decode().split()
                if not words:
                    continue
                if words[0] == "pass":
                    cut, delay, jitter, loss = False, 0.0, 0.0, 0.0
                elif words[0] == "cut":
                    cut = True
                    queue.clear()
                elif words[0] == "netem":
                    cut = False
                    delay, jitter, loss = float(words[1]) / 1000, float(words[2]) / 1000, float(words[3]) / 100
                print("ok", flush=True)
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, fd, packet = heapq.heappop(queue)
            _write(fd, packet)


def _write(fd: int, packet: bytes) -> None:
    with contextlib.suppress(OSError):  # a full device queue drops the packet, as a real link would
        os.write(fd, packet)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
