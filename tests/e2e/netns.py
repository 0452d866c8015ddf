"""Network namespaces for procflow's end-to-end tests (Python 3 standard library only).

Why namespaces: the agent must be tested on real, non-loopback traffic, and the only
addresses a test may ever send to are 198.18.0.0/15 and fd00::/8 inside namespaces it
created itself (shared/spec/kernels.md, "Addresses for test traffic"). The agent runs
in the root namespace and sees these namespaces because it hooks the root cgroup,
which every process on the host belongs to, whatever its network namespace.

Layout (one pair per test process; names carry the PID so parallel runs never clash):

    pfe2e-<pid>-srv  eth0 198.18.0.1/24 fd00::1/64  <--veth-->  eth0 198.18.0.2/24 fd00::2/64  pfe2e-<pid>-cli

The veth pair is created directly inside the namespaces, so nothing is ever added to
the root namespace.

Cleanup: `TestNet` is a context manager. Leaving it (normally, on an exception, on
SIGINT/SIGTERM/SIGHUP, or at interpreter exit via atexit) kills every process it
started, by its own PID, and deletes both namespaces. Namespaces left by a test
process that was SIGKILLed are removed by the next run (`sweep_stale`), which only
touches names with this module's prefix whose PID is no longer alive.
"""

import atexit
import os
import re
import signal
import subprocess
import sys
import time

PREFIX = "pfe2e"

SERVER_V4 = "198.18.0.1"
CLIENT_V4 = "198.18.0.2"
SERVER_V6 = "fd00::1"
CLIENT_V6 = "fd00::2"
V4_PREFIXLEN = 24
V6_PREFIXLEN = 64
IFNAME = "eth0"


def _run(args, check=True):
    """Run a command, return CompletedProcess; raise with its stderr on failure."""
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and p.returncode != 0:
        raise RuntimeError("command failed (%d): %s\n%s" % (p.returncode, " ".join(args), p.stderr.strip()))
    return p


def list_netns():
    """Names of all named network namespaces on the host."""
    p = _run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale():
    """Delete namespaces of this module's naming scheme whose creator PID is dead."""
    pat = re.compile(r"^%s-(\d+)-(srv|cli)$" % PREFIX)
    for name in list_netns():
        m = pat.match(name)
        if m and not _pid_alive(int(m.group(1))):
            _run(["ip", "netns", "del", name], check=False)


class TestNet:
    """Two namespaces joined by a veth pair; see the module docstring.

    Usage:
        with TestNet() as net:
            srv = net.spawn(net.server_ns, ["pf_server", "tcp", "::", "8080"])
            ...
    """

    # Every live TestNet, so the signal handlers and atexit can clean them all up.
    _live = []
    _handlers_installed = False

    def __init__(self, tag=None):
        pid = os.getpid()
        suffix = "" if tag is None else "-" + tag
        self.server_ns = "%s-%d%s-srv" % (PREFIX, pid, suffix)
        self.client_ns = "%s-%d%s-cli" % (PREFIX, pid, suffix)
        self.server_v4, self.client_v4 = SERVER_V4, CLIENT_V4
        self.server_v6, self.client_v6 = SERVER_V6, CLIENT_V6
        self.procs = []  # subprocess.Popen objects this TestNet started
        self.extra_pids = []  # PIDs started elsewhere but owned by this test
        self._up = False

    # -- set-up ---------------------------------------------------------------------

    def __enter__(self):
        TestNet._install_handlers()
        TestNet._live.append(self)
        try:
            self._create()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        self.cleanup()
        return False

    def _create(self):
        sweep_stale()
        self._up = True  # from here on, cleanup() must try to delete the names
        for ns in (self.server_ns, self.client_ns):
            _run(["ip", "netns", "add", ns])
        _run(["ip", "-n", self.server_ns, "link", "add", IFNAME, "type", "veth",
              "peer", "name", IFNAME, "netns", self.client_ns])
        for ns, v4, v6 in ((self.server_ns, SERVER_V4, SERVER_V6),
                           (self.client_ns, CLIENT_V4, CLIENT_V6)):
            _run(["ip", "-n", ns, "addr", "add", "%s/%d" % (v4, V4_PREFIXLEN), "dev", IFNAME])
            # nodad: duplicate address detection would keep the address "tentative"
            # (unbindable) for about a second; nobody else is on this link.
            _run(["ip", "-n", ns, "-6", "addr", "add", "%s/%d" % (v6, V6_PREFIXLEN),
                  "dev", IFNAME, "nodad"])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            _run(["ip", "-n", ns, "link", "set", IFNAME, "up"])
        self._wait_usable()

    def _wait_usable(self, timeout=10.0):
        """Wait until both ends are up with carrier and no v6 address is tentative."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            ok = True
            for ns in (self.server_ns, self.client_ns):
                link = _run(["ip", "-n", ns, "-o", "link", "show", IFNAME], check=False).stdout
                addrs = _run(["ip", "-n", ns, "-o", "-6", "addr", "show", "dev", IFNAME],
                             check=False).stdout
                if "state UP" not in link or "tentative" in addrs or "dadfailed" in addrs \
                        or "scope global" not in addrs:
                    ok = False
                    last = "%s: %s | %s" % (ns, link.strip(), addrs.strip())
            if ok:
                # A route lookup that resolves proves the kernel considers the path usable.
                r = _run(["ip", "-n", self.client_ns, "-6", "route", "get", SERVER_V6], check=False)
                if r.returncode == 0:
                    return
                last = r.stderr
            time.sleep(0.05)
        raise RuntimeError("namespaces not usable after %.0f s: %s" % (timeout, last))

    # -- processes ------------------------------------------------------------------

    def spawn(self, ns, argv, **kw):
        """Start argv inside namespace ns (None = root namespace) and own its PID.

        `ip netns exec NS prog` execs prog in place (iproute2 forks only in batch
        mode), so Popen.pid is prog's own PID; check_exec_keeps_pid() verifies that.
        """
        full = list(argv) if ns is None else ["ip", "netns", "exec", ns] + list(argv)
        p = subprocess.Popen(full, **kw)
        self.procs.append(p)
        return p

    def run_in(self, ns, argv, timeout=10, **kw):
        """Run argv in ns to completion; returns (CompletedProcess-like Popen, seconds).

        The time is from just before fork to just after reap, so it is an upper bound
        on the program's own lifetime (it includes ip-netns-exec's set-up).
        """
        full = ["ip", "netns", "exec", ns] + list(argv)
        t0 = time.monotonic()
        p = subprocess.Popen(full, **kw)
        self.procs.append(p)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        elapsed = time.monotonic() - t0
        p.out, p.err = out, err
        return p, elapsed

    def check_exec_keeps_pid(self):
        """Return (ok, detail): does `ip netns exec` keep the PID of the Popen child?"""
        p = subprocess.Popen(["ip", "netns", "exec", self.client_ns, "sh", "-c", "echo $$"],
                             stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        out, _ = p.communicate(timeout=10)
        reported = out.strip()
        return reported == str(p.pid), "Popen pid %d, process saw its own pid as %r" % (p.pid, reported)

    def kill_all(self):
        """Kill every process this TestNet started (its own PIDs only) and reap it."""
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for pid in self.extra_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- teardown -------------------------------------------------------------------

    def cleanup(self):
        """Idempotent: kill our processes, delete our namespaces."""
        self.kill_all()
        if self._up:
            for ns in (self.client_ns, self.server_ns):
                _run(["ip", "netns", "del", ns], check=False)
            self._up = False
        if self in TestNet._live:
            TestNet._live.remove(self)

    @classmethod
    def cleanup_all(cls):
        for net in list(cls._live):
            net.cleanup()

    @classmethod
    def _install_handlers(cls):
        if cls._handlers_installed:
            return
        cls._handlers_installed = True
        atexit.register(cls.cleanup_all)

        def on_signal(signum, frame):
            cls.cleanup_all()
            sys.stderr.write("netns: cleaned up after signal %d\n" % signum)
            # Exit as the signal would have: 128 + signal number.
            os._exit(128 + signum)

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, on_signal)
