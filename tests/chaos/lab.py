"""A lab of worker hosts on one machine: network namespaces, veth pairs and an engine address.

Each worker host is a network namespace joined to the root namespace by a point-to-point link
of its own (10.77.L.4i+1 in the root namespace, .4i+2 in the host): a veth pair, or two TUN
devices joined by a relay that can cut, delay and drop packets (see Host). The engines of the lab listen
on one address of a link of its own in the root namespace (10.77.L.254/32); each host routes to
it through its veth, so every byte between a worker and its engine crosses that host's link,
where a test can cut it (``partition``) or degrade it (``netem``) when it is a relay link. Nothing else is touched: the
addresses are the lab's own, and ``close`` removes every namespace and link it made (also after
a failed test: the fixtures call it in ``finally``; a lab left by a killed run is removed by the
next one, see ``sweep``).

Names are unique per pytest-xdist worker (the lab number L comes from the worker and the pid),
so labs of parallel workers never share a namespace, a link or an address.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PREFIX = "cvl"
"""Every namespace and link of a lab starts with this (kept short: link names max 15 chars)."""


def sh(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command (in namespace ``ns`` when given) and return its result; raise on failure."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def why_no_lab() -> str | None:
    """Why this machine cannot build a lab (not root, no iproute2, namespaces forbidden), or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"{tool} (iproute2) is not installed"
    probe = f"{PREFIX}probe{os.getpid() % 100000}"
    try:
        sh("ip", "netns", "add", probe)
        sh("ip", "netns", "del", probe)
    except (RuntimeError, OSError) as exc:
        return f"cannot create a network namespace here: {exc}"
    return None


def sweep() -> None:
    """Remove namespaces and links left by labs whose pytest process no longer exists."""
    for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        match = re.fullmatch(rf"{PREFIX}(\d+)h\d+", name)
        if match and not os.path.exists(f"/proc/{match.group(1)}"):
            sh("ip", "netns", "del", name, check=False)
    for line in sh("ip", "-o", "link", "show", check=False).stdout.splitlines():
        match = re.search(rf"\d+: ({PREFIX}(\d+)[a-z]\w*)[@:]", line)
        if match and not os.path.exists(f"/proc/{match.group(2)}"):
            sh("ip", "link", "del", match.group(1), check=False)


@dataclass
class Host:
    """One worker host: a namespace and its link to the root namespace.

    The link is a veth pair (``relay=False``: kernel speed, no faults) or a pair of TUN devices
    joined by a relay process (tests/chaos/relay.py) that can cut, delay and drop packets; the
    kernel here has no ``sch_netem``, so the relay is the lab's netem.
    """

    name: str
    """The network namespace (run commands in it with ``ip netns exec``)."""
    link: str
    """The root-namespace end of the link."""
    peer: str
    """The host's end of the link (inside the namespace)."""
    address: str
    relay: subprocess.Popen[str] | None = None

    def run_prefix(self) -> list[str]:
        """Argv prefix that runs a command inside this host."""
        return ["ip", "netns", "exec", self.name]

    def _command(self, line: str) -> None:
        if self.relay is None or self.relay.stdin is None or self.relay.stdout is None:
            raise RuntimeError(f"host {self.name} has a plain veth link: make it with relay=True")
        self.relay.stdin.write(line + "\n")
        self.relay.stdin.flush()
        answer = self.relay.stdout.readline().strip()
        if answer != "ok":
            raise RuntimeError(f"relay of {self.name} answered {answer!r} to {line!r}")

    def netem(self, delay_ms: float, jitter_ms: float = 0.0, loss_percent: float = 0.0) -> None:
        """Delay every packet both ways by ``delay_ms`` ± ``jitter_ms`` and drop ``loss_percent``."""
        self._command(f"netem {delay_ms} {jitter_ms} {loss_percent}")

    def partition(self) -> None:
        """Drop every packet between this host and the engines (both directions)."""
        self._command("cut")

    def heal(self) -> None:
        self._command("pass")

    def close(self) -> None:
        if self.relay is not None:
            with contextlib.suppress(OSError):
                if self.relay.stdin is not None:
                    self.relay.stdin.close()
            try:
                self.relay.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.relay.kill()
                self.relay.wait(timeout=10)
            if self.relay.stdout is not None:
                self.relay.stdout.close()
            self.relay = None


@dataclass
class Lab:
    """The engine address and the hosts of one pytest worker."""

    number: int = field(default_factory=lambda: _lab_number())
    hosts: list[Host] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tag = f"{PREFIX}{os.getpid()}"
        self.engine_ip = f"10.77.{self.number}.254"
        self.dummy = f"{self.tag}e"[:15]

    def open(self) -> Lab:
        sweep()
        # a veth pair with both ends here: the kernel may lack the dummy driver, never veth
        sh("ip", "link", "add", self.dummy, "type", "veth", "peer", "name", f"{self.tag}f"[:15])
        sh("ip", "addr", "add", f"{self.engine_ip}/32", "dev", self.dummy)
        sh("ip", "link", "set", self.dummy, "up")
        sh("ip", "link", "set", f"{self.tag}f"[:15], "up")
        return self

    def host(self, relay: bool = False) -> Host:
        """Create one more worker host, linked to the engine address (see Host for ``relay``)."""
        i = len(self.hosts)
        if i >= 60:
            raise RuntimeError("a lab has at most 60 hosts")
        name = f"{self.tag}h{i}"
        link, peer = f"{self.tag}a{i}"[:15], f"{self.tag}b{i}"[:15]
        root_ip, host_ip = f"10.77.{self.number}.{4 * i + 1}", f"10.77.{self.number}.{4 * i + 2}"
        host = Host(name, link, peer, host_ip)
        self.hosts.append(host)
        sh("ip", "netns", "add", name)
        if relay:
            host.relay = subprocess.Popen(
                [sys.executable, "-m", "tests.chaos.relay", link, peer],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert host.relay.stdout is not None
            ready = host.relay.stdout.readline().strip()
            if ready != "ready":
                raise RuntimeError(f"the link relay of {name} did not start ({ready!r})")
        else:
            sh("ip", "link", "add", link, "type", "veth", "peer", "name", peer)
        sh("ip", "link", "set", peer, "netns", name)
        sh("ip", "addr", "add", root_ip, "peer", f"{host_ip}/32", "dev", link)
        sh("ip", "link", "set", link, "up")
        sh("ip", "addr", "add", host_ip, "peer", f"{root_ip}/32", "dev", peer, ns=name)
        sh("ip", "link", "set", peer, "up", ns=name)
        sh("ip", "link", "set", "lo", "up", ns=name)
        sh("ip", "route", "add", "default", "dev", peer, ns=name)
        return host

    def remove_host(self, host: Host) -> None:
        host.close()
        sh("ip", "netns", "del", host.name, check=False)  # takes the peer end with it
        sh("ip", "link", "del", host.link, check=False)
        with contextlib.suppress(ValueError):
            self.hosts.remove(host)

    def close(self) -> None:
        for host in list(self.hosts):
            self.remove_host(host)
        sh("ip", "link", "del", self.dummy, check=False)


def _lab_number() -> int:
    """A /24 of 10.77.0.0/16 no other live lab uses (the engine address is the claim)."""
    taken = set(re.findall(r"10\.77\.(\d+)\.254", sh("ip", "-o", "addr", "show", check=False).stdout))
    seed = int(uuid.uuid4().hex[:4], 16)
    for k in range(250):
        number = (seed + k) % 250 + 1
        if str(number) not in taken:
            return number
    raise RuntimeError("no free lab subnet in 10.77.0.0/16")
