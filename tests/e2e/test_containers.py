#!/usr/bin/env python3
"""Containers and pods in flow lines, with real runtimes (Podman 4.3, containerd 1.6).

Set-up (shared/spec/containers.md says what works on these machines):
  - an image built here, no registry: busybox-static with its applets, plus the
    e2e helpers pf_server and pf_client and the two shared objects they need;
  - Podman through tests/e2e/podman.py (runc, explicit rlimits, a containers.conf
    of the test's own), and `podman system service` on a socket of the test's own;
  - containerd started by the test (its own root, state and socket), the image
    imported with ctr, containers created with the annotations kubelet's CRI
    plugin sets (io.kubernetes.cri.sandbox-name / -namespace);
  - network: every container joins a network namespace the test made
    (netns.TestNet: 198.18.0.1 server side, 198.18.0.2 client side), none uses
    the host network. A Podman pod cannot join a namespace by path, so the pod
    is played with --network none and the test moves one end of a veth pair
    (198.19.213.1 server side, 198.19.213.2 in the pod) into its infra namespace.

Phase 1, runtimes healthy: a server container (TCP and UDP, labels app=web,
tier=fe) started before the agent; a client container (app=cli); a pod from
`podman kube play` of a Pod YAML with labels; a containerd container that
connects and exits in under 20 ms (`ctr run --rm`: its bundle is gone right
after); the same containerd id run twice with two different pods. Each line must
name, on both ends, the right pod or container, namespace and labels.

Phase 2, runtime state bad: the Engine API socket accepts and never answers, one
bundle is half-written JSON, another unreadable. Lines are still written, on
time, naming the container by its id, and each failure is logged and counted.

Cleanup, also on failure: containers, pods and the image by name (podman.py);
containerd and its shims by PID; the service by PID; namespaces (netns.py).
"""

import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import podman as pm  # noqa: E402

FLUSH_S = 1
RS_POD = "web-7d9b8c5f4-x2x8q"  # a ReplicaSet pod's name: aggregated as web-7d9b8c5f4-*
HOLD_S = 30  # how long the hanging API socket holds each request
# The pod's link (other tests use 198.18.0.0/24 and 198.18.1.0/24 in their namespaces;
# this test's lines are also told apart by its ports).
POD_SRV, POD_CLI = "198.19.213.1", "198.19.213.2"


def build_image(P, bindir):
    """busybox + pf_server + pf_client + libc, imported as P.image."""
    root = os.path.join(P.tmp, "rootfs")
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy("/bin/busybox", os.path.join(root, "bin", "busybox"))
    for applet in subprocess.run(["/bin/busybox", "--list"], stdout=subprocess.PIPE,
                                 text=True, check=True).stdout.split():
        if applet != "busybox":
            os.symlink("busybox", os.path.join(root, "bin", applet))
    for prog in ("pf_server", "pf_client"):
        shutil.copy(os.path.join(bindir, prog), os.path.join(root, "bin", prog))
    for lib in ("/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"):
        dst = os.path.join(root, lib.lstrip("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy(lib, dst)
    tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
    P.image_built = True  # from here on, cleanup removes the tag
    p = subprocess.run(["podman", "import", "--change", "ENV=PATH=/bin", "-", P.image],
                       stdin=tar.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, env=P.env, timeout=120)
    tar.wait()
    if p.returncode:
        raise RuntimeError("podman import: " + p.stderr.strip())


def wait_socket(path, proc, timeout=30):
    ok = common.wait_for(lambda: os.path.exists(path) or proc.poll() is not None, timeout)
    if not ok or proc.poll() is not None:
        raise RuntimeError("%s did not appear" % path)


class Containerd:
    """A containerd of the test's own; killed with its shims by PID."""

    def __init__(self, net, tmp):
        self.dir = os.path.join(tmp, "containerd")
        self.sock = os.path.join(self.dir, "containerd.sock")
        self.tasks = os.path.join(self.dir, "state", "io.containerd.runtime.v2.task")
        self.log = open(os.path.join(tmp, "containerd.log"), "w")
        self.proc = subprocess.Popen(
            ["containerd", "--root", os.path.join(self.dir, "root"), "--state",
             os.path.join(self.dir, "state"), "--address", self.sock],
            stdout=self.log, stderr=subprocess.STDOUT)
        net.procs.append(self.proc)
        wait_socket(self.sock, self.proc)

    def ctr(self, args, timeout=60, env=None):
        return subprocess.run(["ctr", "-a", self.sock, "-n", "k8s.io"] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout, env=env)

    def shim_pids(self):
        """containerd-shim processes started for this containerd (their command
        line names its socket)."""
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    cmd = f.read().split(b"\0")
            except OSError:
                continue
            if cmd and b"containerd-shim" in cmd[0] and self.sock.encode() in cmd:
                pids.append(int(d))
        return pids

    def cleanup(self):
        for pid in self.shim_pids():
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # Snapshots of containers that were running when it was killed.
        with open("/proc/self/mountinfo") as f:
            mnts = [l.split()[4] for l in f if self.dir in l.split()[4]]
        for m in sorted(mnts, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class HangingApi:
    """A unix socket that accepts API requests and never answers."""

    def __init__(self, path):
        self.path = path
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.bind(path)
        self.s.listen(16)
        self.accepted = []  # (accept time, close time or None)
        self.conns = []
        self.closing = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.closing:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            rec = [time.monotonic(), None]
            self.accepted.append(rec)
            self.conns.append(c)
            threading.Thread(target=self._hold, args=(c, rec), daemon=True).start()

    @staticmethod
    def _hold(c, rec):
        # Read the request and keep the connection open without a byte of answer
        # until the client gives up (its timeout) or HOLD_S passes.
        c.settimeout(HOLD_S)
        try:
            while c.recv(4096):
                pass
        except OSError:
            pass
        rec[1] = time.monotonic()

    def close(self):
        self.closing = True
        for c in self.conns:
            c.close()
        self.s.close()


def lines_with(records, tag):
    return [r for r in records if any(tag in a for a in r["process_args"])]


def labels(rec, side):
    v = rec[side + "_labels"]
    return None if v is None else v.get("labels")


def podman_id(P, name):
    return P.run(["inspect", "--format", "{{.Id}}", name], timeout=30).stdout.strip()


def start_agent(args, net, outdir, env):
    os.environ.update(env)
    try:
        a = common.Agent(args.agent, ["run", "--output-dir", outdir, "--flush-interval",
                                      str(FLUSH_S)], owner=net)
        a.start()
    finally:
        for k in env:
            del os.environ[k]
    ok, detail = a.wait_ready(60)
    if not ok:
        raise RuntimeError(detail)
    return a


def check_ends(res, name, recs, src, dst, src_labels, dst_labels, src_ns="-", dst_ns="-"):
    """Every line in @recs names both ends: (name, namespace, labels, type wep)."""
    if not res.check(name + ": lines", len(recs) >= 1, "%d lines" % len(recs)):
        return
    bad = []
    for r in recs:
        want = {"source_name": src, "source_namespace": src_ns, "source_type": "wep",
                "dest_name": dst, "dest_namespace": dst_ns, "dest_type": "wep"}
        wrong = ["%s=%r (want %r)" % (k, r[k], v) for k, v in want.items() if r[k] != v]
        if wrong:
            bad.append("line %d: %s" % (r["_line"], ", ".join(wrong)))
        if labels(r, "source") != src_labels:
            bad.append("source_labels %r, want %r" % (labels(r, "source"), src_labels))
        if labels(r, "dest") != dst_labels:
            bad.append("dest_labels %r, want %r" % (labels(r, "dest"), dst_labels))
    res.check(name + ": both ends named", not bad, "; ".join(bad[:3]))
    if bad:
        print("  e.g. " + common.compact(recs[0])[:1500], flush=True)


def pod_network(P, net, pod):
    """A veth from the server namespace into the pod's infra namespace."""
    infra = P.run(["pod", "inspect", "--format", "{{.InfraContainerID}}", pod],
                  timeout=30).stdout.strip()
    pid = P.run(["inspect", "--format", "{{.State.Pid}}", infra], timeout=30).stdout.strip()
    if not pid.isdigit() or pid == "0":
        raise RuntimeError("pod %s: no infra process (%r)" % (pod, pid))
    run = lambda a: subprocess.run(a, check=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
    run(["ip", "-n", net.server_ns, "link", "add", "pfpod0", "type", "veth", "peer", "name",
         "eth0", "netns", pid])
    run(["ip", "-n", net.server_ns, "addr", "add", POD_SRV + "/24", "dev", "pfpod0"])
    run(["ip", "-n", net.server_ns, "link", "set", "pfpod0", "up"])
    for a in (["addr", "add", POD_CLI + "/24", "dev", "eth0"], ["link", "set", "lo", "up"],
              ["link", "set", "eth0", "up"]):
        run(["nsenter", "-t", pid, "-n", "ip"] + a)


def phase_healthy(res, args, P, net, cd, svc_sock, tmp, ports):
    tcp, udp = ports
    outdir = os.path.join(tmp, "out1")
    os.makedirs(outdir)
    srv = P.name("srv")
    # Started before the agent: named from the runtime's state.
    P.run(["run", "-d", "--name", srv, "--network", "ns:/run/netns/" + net.server_ns,
           "--label", "app=web", "--label", "tier=fe", P.image, "sh", "-c",
           "pf_server tcp :: %d & exec pf_server udp :: %d" % (tcp, udp)], check=True)
    ok, log = P.wait_log(srv, "pf_server: listening", 30)
    if not ok or log.count("pf_server: listening") < 2:
        common.wait_for(lambda: P.logs(srv).count("pf_server: listening") >= 2, 20)

    agent = start_agent(args, net, outdir, {
        "PF_ENGINE_SOCKETS": svc_sock,
        "PF_CONTAINERD_TASKS": cd.tasks,
        "PROCFLOW_FLOW_LOGS_FILE_INCLUDE_LABELS": "true"})

    cli = P.name("cli")
    p = P.run(["run", "--name", cli, "--network", "ns:/run/netns/" + net.client_ns,
               "--label", "app=cli", P.image, "sh", "-c",
               "pf_client tcp 198.18.0.1 %d 300 tag-cli-tcp && "
               "pf_client udp 198.18.0.1 %d 200 tag-cli-udp" % (tcp, udp)])
    res.check("podman client container ran", p.returncode == 0, p.stderr.strip())

    # A pod from a Pod manifest, with labels.
    pod = P.pod_name("pod")
    yaml_path = os.path.join(tmp, "pod.yaml")
    with open(yaml_path, "w") as f:
        f.write("""apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels:
    app: shop
    tier: backend
spec:
  containers:
  - name: client
    image: %s
    command: ["/bin/sh", "-c", "until pf_client tcp %s %d 100 tag-pod; do sleep 0.1; done; exec sleep 600"]
""" % (pod, P.image, POD_SRV, tcp))
    p = P.run(["kube", "play", "--network", "none", yaml_path], timeout=180)
    if res.check("podman kube play", p.returncode == 0, p.stderr.strip()):
        P.containers.append(pod + "-client")
        pod_network(P, net, pod)

    # containerd: a container that connects and exits at once, removed with --rm.
    env = dict(os.environ, PF_CLIENT_TIMING="1")
    p = cd.ctr(["run", "--rm", "--with-ns", "network:/run/netns/" + net.client_ns,
                "--env", "PF_CLIENT_TIMING=1",
                "--annotation", "io.kubernetes.cri.sandbox-name=" + RS_POD,
                "--annotation", "io.kubernetes.cri.sandbox-namespace=prod",
                P.image, "short", "/bin/pf_client", "tcp", "198.18.0.1", str(tcp), "100",
                "tag-short"], env=env)
    m = re.search(r"lived ([0-9.]+) ms", p.stderr)
    res.check("containerd short container lived under 20 ms",
              p.returncode == 0 and m and float(m.group(1)) < 20.0,
              "rc %d, %s" % (p.returncode, p.stderr.strip()))
    # The same id twice, two different pods: the second must not inherit the first.
    for podname, tag in (("old-pod", "tag-old"), ("new-pod", "tag-new")):
        p = cd.ctr(["run", "--rm", "--with-ns", "network:/run/netns/" + net.client_ns,
                    "--annotation", "io.kubernetes.cri.sandbox-name=" + podname,
                    "--annotation", "io.kubernetes.cri.sandbox-namespace=batch",
                    P.image, "again", "/bin/pf_client", "tcp", "198.18.0.1", str(tcp), "50",
                    tag])
        res.check("containerd container %s ran" % podname, p.returncode == 0, p.stderr.strip())

    flows = os.path.join(outdir, "flows.log")
    common.wait_for(lambda: lines_with(common.load_flows(flows)[0], "tag-pod"), 60, 0.3)
    rc, _ = agent.stop()
    res.check("agent 1 stopped cleanly", rc == 0, "rc %r" % rc)
    recs, problems = common.load_flows(flows)
    res.check("flows.log 1 well-formed", not problems, "; ".join(problems[:3]))

    srv_l, cli_l = ["app=web", "tier=fe"], ["app=cli"]
    src = lambda tag: [r for r in lines_with(recs, tag) if r["reporter"] == "src"]
    check_ends(res, "podman tcp, client side", src("tag-cli-tcp"), cli, srv, cli_l, srv_l)
    check_ends(res, "podman udp, client side", src("tag-cli-udp"), cli, srv, cli_l, srv_l)
    server_tcp = [r for r in recs if r["reporter"] == "dst" and r["dest_port"] == tcp and
                  r["source_name"] == cli]
    server_udp = [r for r in recs if r["reporter"] == "dst" and r["dest_port"] == udp and
                  r["source_name"] == cli]
    check_ends(res, "podman tcp, server side (started before the agent)", server_tcp, cli,
               srv, cli_l, srv_l)
    check_ends(res, "podman udp, server side", server_udp, cli, srv, cli_l, srv_l)
    pod_l = ["app=shop", "tier=backend"]
    check_ends(res, "podman pod (kube play), client side", src("tag-pod"), pod, srv, pod_l,
               srv_l)
    check_ends(res, "podman pod (kube play), server side",
               [r for r in recs if r["reporter"] == "dst" and r["source_ip"] == POD_CLI and
                r["dest_port"] == tcp],
               pod, srv, pod_l, srv_l)
    short = src("tag-short")
    check_ends(res, "containerd short-lived container", short, RS_POD, srv, None, srv_l,
               src_ns="prod")
    res.check("containerd pod aggregated name",
              short and all(r["source_name_aggr"] == "web-7d9b8c5f4-*" for r in short),
              "; ".join(common.compact(r) for r in short[:2]))
    check_ends(res, "containerd id reused: first pod", src("tag-old"), "old-pod", srv, None,
               srv_l, src_ns="batch")
    check_ends(res, "containerd id reused: second pod, not the first's name", src("tag-new"),
               "new-pod", srv, None, srv_l, src_ns="batch")
    # procflow query: the pod filters and the pod in the table.
    q = subprocess.run([args.agent, "query", flows, "--namespace", "prod", "-o", "json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    got = [json.loads(l) for l in q.stdout.splitlines() if l.strip()]
    res.check("query --namespace prod: the lines of that namespace only",
              q.returncode == 0 and got and
              len(got) == len([r for r in recs if "prod" in (r["source_namespace"],
                                                            r["dest_namespace"])]) and
              all("prod" in (r["source_namespace"], r["dest_namespace"]) for r in got),
              "rc %d, %d lines: %s" % (q.returncode, len(got), q.stderr.strip()))
    q = subprocess.run([args.agent, "query", flows, "--pod", "web-*-*", "--reporter", "src",
                        "-o", "wide"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60, env=dict(os.environ, TZ="UTC"))
    rows = q.stdout.splitlines()[1:]
    res.check("query --pod GLOB: the table names the pod",
              q.returncode == 0 and rows and
              all("prod/" + RS_POD in row and srv in row for row in rows),
              q.stdout[-600:] + q.stderr)
    server_named = {r["source_name"] for r in recs if r["reporter"] == "dst" and
                    r["dest_port"] == tcp and r["dest_name"] == srv}
    res.check("server side names every client pod",
              {cli, pod, RS_POD, "old-pod", "new-pod"} <= server_named, repr(server_named))


def phase_bad_state(res, args, P, net, cd, tmp, ports):
    tcp, _ = ports
    outdir = os.path.join(tmp, "out2")
    os.makedirs(outdir)
    hang = HangingApi(os.path.join(tmp, "hang.sock"))
    fake = os.path.join(tmp, "fake-tasks")
    os.makedirs(os.path.join(fake, "k8s.io", "half"))
    os.makedirs(os.path.join(fake, "k8s.io", "unread"))
    good = json.dumps({"annotations": {"io.kubernetes.cri.sandbox-name": "must-not-appear",
                                       "io.kubernetes.cri.sandbox-namespace": "prod"}})
    with open(os.path.join(fake, "k8s.io", "half", "config.json"), "w") as f:
        f.write(good[:len(good) - 7])  # cut inside the last value: half-written
    unread = os.path.join(fake, "k8s.io", "unread", "config.json")
    with open(unread, "w") as f:
        f.write(good)
    os.chmod(unread, 0)  # the agent has given up CAP_DAC_OVERRIDE: unreadable

    try:
        agent = start_agent(args, net, outdir, {"PF_ENGINE_SOCKETS": hang.path,
                                                "PF_CONTAINERD_TASKS": fake})
        hung = P.name("hung")
        p = P.run(["run", "-d", "--name", hung, "--network", "ns:/run/netns/" + net.client_ns,
                   P.image, "sh", "-c", "pf_client tcp 198.18.0.1 %d 100 tag-hung; "
                   "exec sleep 600" % tcp], check=True)
        hung_id = p.stdout.strip()
        for cid in ("half", "unread"):
            p = cd.ctr(["run", "--rm", "--with-ns", "network:/run/netns/" + net.client_ns,
                        P.image, cid, "/bin/pf_client", "tcp", "198.18.0.1", str(tcp), "100",
                        "tag-" + cid])
            res.check("containerd container %s ran" % cid, p.returncode == 0, p.stderr.strip())
        flows = os.path.join(outdir, "flows.log")
        t0 = time.monotonic()
        got = common.wait_for(lambda: lines_with(common.load_flows(flows)[0], "tag-hung"),
                              30, 0.1)
        written = time.monotonic()
        res.check("line written while the runtime socket hangs",
                  got and hang.accepted and hang.accepted[0][1] is None,
                  "line after %.1f s; requests %r" % (written - t0, hang.accepted))
        common.wait_for(lambda: agent.stderr_text().count("no metadata") >= 3, 30)
        rc, secs = agent.stop()
        res.check("agent 2 stops within its timeout", rc == 0 and secs < 15,
                  "rc %r after %.1f s" % (rc, secs))
        recs, problems = common.load_flows(flows)
        res.check("flows.log 2 well-formed", not problems, "; ".join(problems[:3]))
        for tag, cid, why in (("tag-hung", hung_id, "timed out"),
                              ("tag-half", "half", "Invalid argument"),
                              ("tag-unread", "unread", "Permission denied")):
            ls = [r for r in lines_with(recs, tag) if r["reporter"] == "src"]
            res.check("%s: named by its container id alone" % cid[:12],
                      ls and all(r["source_name"] == cid and r["source_type"] == "wep" and
                                 r["source_namespace"] == "-" for r in ls),
                      "; ".join(common.compact(r) for r in ls[:2]) or "no line")
            logged = [l for l in agent.stderr_lines if "container " + cid in l and
                      "no metadata" in l]
            res.check("%s: failure logged and counted (%s)" % (cid[:12], why),
                      len(logged) == 1 and why in logged[0] and "so far" in logged[0],
                      "\n".join(logged) or agent.stderr_text())
        res.check("no line names the bad bundle's pod",
                  not [r for r in recs if "must-not-appear" in json.dumps(r)])
    finally:
        os.chmod(unread, 0o600)
        hang.close()


def main(res, args):
    args.agent = os.path.abspath(args.agent)
    args.bindir = os.path.abspath(args.bindir)
    for tool in ("podman", "containerd", "ctr", "runc"):
        if not shutil.which(tool):
            res.check("%s installed" % tool, False, "run scripts/install-deps.sh")
            return
    run_id = "%d-%s" % (os.getpid(), uuid.uuid4().hex[:6])
    P = pm.Podman(run_id)
    P.prefix = "pfctr-%s" % run_id
    P.image = "localhost/%s:test" % P.prefix
    tcp = random.SystemRandom().randrange(30000, 59000)
    ports = (tcp, tcp + 1)
    print("run %s, ports %d/%d" % (run_id, tcp, tcp + 1), flush=True)
    with pm.ImageNet(P, tag="ctr") as net:
        tmp = P.tmp
        cd = None
        try:
            build_image(P, args.bindir)
            svc_sock = os.path.join(tmp, "podman.sock")
            svc = subprocess.Popen(["podman", "system", "service", "--time=0",
                                    "unix://" + svc_sock], env=P.env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            net.procs.append(svc)
            wait_socket(svc_sock, svc)
            cd = Containerd(net, tmp)
            archive = os.path.join(tmp, "image.tar")
            P.run(["save", "--format", "docker-archive", "-o", archive, P.image], check=True)
            p = cd.ctr(["images", "import", archive], timeout=120)
            if p.returncode:
                raise RuntimeError("ctr images import: " + p.stderr.strip())
            pause_before = {i for i in P.run(["images", "--format",
                                              "{{.Repository}}:{{.Tag}}"]).stdout.split()
                            if i.startswith("localhost/podman-pause:")}
            try:
                phase_healthy(res, args, P, net, cd, svc_sock, tmp, ports)
            finally:
                after = {i for i in P.run(["images", "--format",
                                           "{{.Repository}}:{{.Tag}}"]).stdout.split()
                         if i.startswith("localhost/podman-pause:")}
                P.implicit_images += sorted(after - pause_before)
            phase_bad_state(res, args, P, net, cd, tmp, ports)
        finally:
            if cd is not None:
                # Containers first (a shim holds their mounts), then containerd.
                for cid in ("short", "again", "half", "unread"):
                    cd.ctr(["task", "kill", "-s", "KILL", cid], timeout=30)
                    cd.ctr(["container", "rm", cid], timeout=30)
                cd.ctr(["images", "rm", P.image], timeout=30)
                cd.cleanup()


if __name__ == "__main__":
    sys.exit(common.run_main(main, __doc__.splitlines()[0]))
