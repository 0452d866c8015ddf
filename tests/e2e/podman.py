"""Podman for procflow's image tests (Python 3 standard library only).

What the machines allow (shared/spec/containers.md): no registry, so the image is
built from the binary under test with scripts/image-rootfs.sh and Containerfile;
runc instead of crun (crun refuses hybrid cgroups); explicit rlimits, because
Podman's defaults are above the sandbox's hard limits. Both go into a
containers.conf of the test's own, named by CONTAINERS_CONF for every podman
command this module runs, so the host's configuration is never changed.

Cleanup: a `Podman` owns the names it hands out (containers, pods, the image tag),
all carrying a per-run prefix, and `cleanup()` removes exactly those, by name.
`ImageNet` is a netns.TestNet that also cleans its Podman up, so containers and
the image go on every path TestNet already covers: normal exit, exceptions,
SIGINT/SIGTERM/SIGHUP and interpreter exit.
"""

import os
import random
import shutil
import subprocess
import tempfile
import time

import netns

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
"""


class Podman:
    def __init__(self, run_id):
        self.prefix = "pfimg-%s" % run_id
        self.tmp = tempfile.mkdtemp(prefix="pfe2e-%d-podman-" % os.getpid())
        self.conf = os.path.join(self.tmp, "containers.conf")
        with open(self.conf, "w") as f:
            f.write(CONTAINERS_CONF)
        self.env = dict(os.environ, CONTAINERS_CONF=self.conf)
        self.image = "localhost/%s:test" % self.prefix
        self.image_built = False
        self.containers = []
        self.pods = []
        self.volumes = []
        # Images Podman makes on its own for this run (kube play's pause image),
        # removed afterwards only if they were not there before.
        self.implicit_images = []

    def run(self, args, timeout=120, check=False):
        p = subprocess.run(["podman"] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=self.env, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError("podman %s: exit %d: %s" % (" ".join(args), p.returncode,
                                                           p.stderr.strip()))
        return p

    def name(self, what):
        """A container name owned (and removed) by this run."""
        n = "%s-%s" % (self.prefix, what)
        self.containers.append(n)
        return n

    def pod_name(self, what):
        n = "%s-%s" % (self.prefix, what)
        self.pods.append(n)
        return n

    def volume_name(self, what):
        n = "%s-%s" % (self.prefix, what)
        self.volumes.append(n)
        return n

    def has_image(self, ref):
        return self.run(["image", "exists", ref], timeout=30).returncode == 0

    def build(self, agent):
        """Build the image from @agent; returns (ok, detail, seconds)."""
        ctx = os.path.join(self.tmp, "context")
        t0 = time.monotonic()
        p = subprocess.run([os.path.join(SRC, "scripts", "image-rootfs.sh"), agent, ctx],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        if p.returncode != 0:
            return False, "image-rootfs.sh: %s" % p.stderr.strip(), time.monotonic() - t0
        self.image_built = True  # from here on, cleanup() removes the tag
        p = self.run(["build", "-q", "-t", self.image, "-f", os.path.join(ctx, "Containerfile"),
                      ctx], timeout=300)
        return p.returncode == 0, p.stderr.strip(), time.monotonic() - t0

    def logs(self, name):
        p = self.run(["logs", name], timeout=30)
        return p.stdout + p.stderr

    def wait_log(self, name, text, timeout):
        """Poll the container's log for @text; stop early when it has exited.
        Returns (found, log)."""
        deadline = time.monotonic() + timeout
        log = ""
        while time.monotonic() < deadline:
            log = self.logs(name)
            if text in log:
                return True, log
            state = self.run(["inspect", "--format", "{{.State.Status}}", name], timeout=30)
            if state.stdout.strip() in ("exited", "stopped", "") and state.returncode == 0:
                log = self.logs(name)
                return text in log, log
            time.sleep(0.2)
        return False, log

    def stop(self, name, timeout=30):
        """SIGTERM (the agent writes its interval), wait; return the exit code or None."""
        self.run(["stop", "-t", str(timeout), name], timeout=timeout + 30)
        p = self.run(["inspect", "--format", "{{.State.ExitCode}}", name], timeout=30)
        try:
            return int(p.stdout.strip())
        except ValueError:
            return None

    def cleanup(self):
        """Remove this run's pods, containers, volumes and image, by name; idempotent."""
        for pod in self.pods:
            self.run(["pod", "rm", "-f", "-t", "0", pod], timeout=120)
        for c in self.containers:
            self.run(["rm", "-f", "-t", "0", c], timeout=120)
        for v in self.volumes:
            self.run(["volume", "rm", "-f", v], timeout=120)
        self.pods, self.containers, self.volumes = [], [], []
        # Not forced: another user's pod may use the same pause image by now.
        for img in self.implicit_images:
            self.run(["rmi", img], timeout=120)
        self.implicit_images = []
        if self.image_built:
            self.run(["rmi", "-f", self.image], timeout=120)
            self.image_built = False
        shutil.rmtree(self.tmp, ignore_errors=True)


class ImageNet(netns.TestNet):
    """A TestNet whose cleanup also removes the Podman objects of the run."""

    def __init__(self, podman, tag=None):
        super().__init__(tag)
        self.podman = podman

    def cleanup(self):
        # Containers first: the agent in one must stop before its traffic's
        # namespaces go.
        self.podman.cleanup()
        super().cleanup()


def agent_mounts(outdir):
    """The options a node agent runs with besides its privileges, as the README's
    `podman run` line has them: a read-only root, the host's cgroup tree read-only
    (this machine is in hybrid mode: cgroup v2 is /sys/fs/cgroup/unified, inside
    it), bpffs, and the log directory."""
    return ["--read-only",
            "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
            "-v", "/sys/fs/bpf:/sys/fs/bpf",
            "-v", "%s:/var/log/procflow" % outdir]


def free_port_base(n):
    """A base for @n consecutive test ports, chosen at random: other tests on the
    host use the same namespace addresses (netns.py) with ports derived from their
    PIDs, and the agent sees all of their traffic."""
    return random.SystemRandom().randrange(30000, 60000 - n)


def own_lines(records, port, tag, client_pid, server_pid):
    """(src, dst): this run's lines among everything the agent saw. The client's side
    is the line to @port whose PID is the client's or whose arguments hold @tag (so a
    wrong name or PID still shows up, and fails); the server's side the line to @port
    with the server's PID (a wrong PID leaves none, and fails)."""
    src = [r for r in records if r["reporter"] == "src" and r["dest_port"] == port and (
        r["process_id"] == str(client_pid) or any(tag in a for a in r["process_args"]))]
    dst = [r for r in records if r["reporter"] == "dst" and r["dest_port"] == port and
           r["process_id"] == str(server_pid)]
    return src, dst
