# SPDX-License-Identifier: BSD-2-Clause
"""Small helpers shared by this directory's tests: run the agent, wait for a
line in its log, loopback traffic from short-lived client processes."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time


class Agent:
    """The agent as a child process; its stderr is collected with the time
    each line arrived, so a test can tell what happened before what."""

    def __init__(self, agent, args, env=None):
        self.p = subprocess.Popen([agent, "run"] + args, stderr=subprocess.PIPE, text=True,
                                  env=env)
        self.log = []  # (monotonic time, line)
        self.cv = threading.Condition()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stderr:
            with self.cv:
                self.log.append((time.monotonic(), line.rstrip("\n")))
                self.cv.notify_all()

    def wait_for(self, text, timeout=20, after=0):
        """The time of the first log line after index @after containing @text."""
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for i, (t, l) in enumerate(self.log):
                    if i >= after and text in l:
                        return t
                left = end - time.monotonic()
                if left <= 0 or self.p.poll() is not None:
                    return None
                self.cv.wait(left)

    def nlog(self):
        with self.cv:
            return len(self.log)

    def text(self):
        with self.cv:
            return "\n".join(l for _, l in self.log)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.t.join(timeout=5)
        return self.p.returncode


class Server:
    """A loopback TCP server in this process: accepts and reads until EOF."""

    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(128)
        self.port = self.s.getsockname()[1]
        self.stop_ = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        self.s.settimeout(0.2)
        while not self.stop_:
            try:
                c, _ = self.s.accept()
            except OSError:
                continue
            threading.Thread(target=self._drain, args=(c,), daemon=True).start()

    @staticmethod
    def _drain(c):
        with c:
            c.settimeout(5)
            try:
                while c.recv(65536):
                    pass
            except OSError:
                pass

    def close(self):
        self.stop_ = True
        self.t.join(timeout=2)
        self.s.close()


SERVER = ("import socket,sys,threading\n"
          "s=socket.socket(); s.bind((sys.argv[1],0)); s.listen(128)\n"
          "print(s.getsockname()[1], flush=True)\n"
          "def d(c):\n"
          "    with c:\n"
          "        c.settimeout(10)\n"
          "        try:\n"
          "            while c.recv(65536): pass\n"
          "        except OSError: pass\n"
          "while True:\n"
          "    c,_=s.accept(); threading.Thread(target=d,args=(c,),daemon=True).start()\n")


class NetnsServer:
    """A TCP server in a network namespace of this test's own, reached over a
    veth pair in 198.19.0.0/16 (the benchmarking range, never routed).

    Why not loopback: the agent then runs without --include-loopback, so
    loopback traffic of anything else on the machine (a benchmark, say)
    neither fills its flow map nor its output."""

    def __init__(self):
        pid = os.getpid()
        self.ns = f"pf-e2e-{pid}"
        self.veth = f"pfe{pid % 1000000}"
        net = f"198.19.{pid % 256}.{(pid // 256) % 64 * 4}"
        base = net.rsplit(".", 1)
        self.host_ip = f"{base[0]}.{int(base[1]) + 2}"
        self.ip = f"{base[0]}.{int(base[1]) + 1}"
        self.proc = None
        try:
            for cmd in (["ip", "netns", "add", self.ns],
                        ["ip", "link", "add", self.veth + "a", "type", "veth", "peer", "name",
                         self.veth + "b"],
                        ["ip", "link", "set", self.veth + "b", "netns", self.ns],
                        ["ip", "addr", "add", self.host_ip + "/30", "dev", self.veth + "a"],
                        ["ip", "link", "set", self.veth + "a", "up"],
                        ["ip", "-n", self.ns, "addr", "add", self.ip + "/30", "dev", self.veth + "b"],
                        ["ip", "-n", self.ns, "link", "set", self.veth + "b", "up"],
                        ["ip", "-n", self.ns, "link", "set", "lo", "up"]):
                subprocess.run(cmd, check=True)
            self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, sys.executable, "-c",
                                          SERVER, self.ip], stdout=subprocess.PIPE, text=True)
            self.port = int(self.proc.stdout.readline())
        except Exception:
            self.close()
            raise

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        # Also after a set-up that failed half way: whatever exists goes.
        subprocess.run(["ip", "link", "del", self.veth + "a"], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "netns", "del", self.ns], stderr=subprocess.DEVNULL)


CLIENT = ("import socket,sys\n"
          "c=socket.create_connection((sys.argv[3],int(sys.argv[1])))\n"
          "c.sendall(sys.argv[2].encode()*10)\n"
          "c.close()\n")


def client(port, marker, ip="127.0.0.1"):
    """Start a short-lived client process; returns the Popen."""
    return subprocess.Popen([sys.executable, "-c", CLIENT, str(port), marker, ip])


def read_lines(path):
    """Every line of @path as JSON; raises on a partial or invalid line."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        raise ValueError("file ends in a partial line")
    for l in data.splitlines():
        out.append(json.loads(l))
    return out
