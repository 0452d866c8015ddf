# SPDX-License-Identifier: BSD-2-Clause
"""Traffic for the tests, from processes the test starts (the harness itself
is common.py): a loopback server in this process, a server in a network
namespace of the test's own, short-lived clients, and a UDP sender to many
ports."""
import os
import socket
import subprocess
import sys
import threading


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

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


CLIENT = ("import socket,sys\n"
          "c=socket.create_connection((sys.argv[3],int(sys.argv[1])))\n"
          "c.sendall(sys.argv[2].encode()*10)\n"
          "c.close()\n")


def client(port, marker, ip="127.0.0.1"):
    """Start a short-lived client process; returns the Popen."""
    return subprocess.Popen([sys.executable, "-c", CLIENT, str(port), marker, ip])


# A UDP sender to ports BASE .. BASE+N-1 of ADDR, every 0.2 s until killed:
# a flow per port per interval (python3 -c UDP_SENDER ADDR BASE N).
UDP_SENDER = ("import socket,sys,time\n"
              "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
              "base,n=int(sys.argv[2]),int(sys.argv[3])\n"
              "while True:\n"
              "    for p in range(base,base+n):\n"
              "        try: s.sendto(b'x'*64,(sys.argv[1],p))\n"
              "        except OSError: pass\n"
              "    time.sleep(0.2)\n")


# A TCP server on ADDR PORT that reads each connection until EOF, however long it
# stays open (up to 4,000 at once), and prints "up" once it listens
# (python3 -c DRAIN_SERVER ADDR PORT).
DRAIN_SERVER = r"""
import resource, socket, sys, threading
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
s = socket.socket(); s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(512)
print("up", flush=True)
def drain(c):
    with c:
        while c.recv(65536): pass
while True:
    c, _ = s.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
"""
