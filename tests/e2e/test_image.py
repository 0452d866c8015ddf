#!/usr/bin/env python3
"""The procflow image, run with Podman as a node agent would run it.

The image is built from the binary under test (scripts/image-rootfs.sh +
Containerfile, FROM scratch, no registry) under a tag unique to the run, and each
agent container runs with host networking, the host's cgroup v2 hierarchy, bpffs
and the output directory mounted (podman.agent_mounts), then is stopped with
SIGTERM, which writes the interval. Traffic is a TCP exchange between the test's
own namespaces (netns.py): a server started before the agent, a short-lived client
after it.

- privileged, --pid=host: both ends named by path, arguments and host PID (the
  client from its exec event, the older server from the host's /proc);
- privileged, own PID namespace: the client still by path and arguments (exec
  events come from the kernel), the older server by task name with empty
  arguments (its /proc is not the container's), its host PID, as the product
  page says;
- the capability set the README documents instead of --privileged
  (--cap-drop=all plus CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_PTRACE,
  seccomp unconfined): the same lines as privileged; and that the set is minimal:
  without CAP_SYS_PTRACE the older server falls back to its task name, without
  any one of the other three the agent does not start (exit 1, one line saying
  the BPF object does not load).

Containers and the image are removed by name on every exit path (podman.ImageNet).
"""

import os
import subprocess
import sys
import tempfile
import time
import uuid

import common
import netns
import podman as pm

MIN_CAPS = ["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN", "CAP_SYS_PTRACE"]
READY_TIMEOUT_S = 60
# How long each full agent run (start, traffic, SIGTERM) took when written: ~5 s.


class Case:
    def __init__(self, label, run_args, pid_host=True, expect_ready=True):
        self.label = label
        self.run_args = run_args
        self.pid_host = pid_host
        self.expect_ready = expect_ready


def start_server(res, net, bindir, port, label):
    p = net.spawn(net.server_ns, [os.path.join(bindir, "pf_server"), "tcp", "::", str(port)],
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    if line != "pf_server: listening":
        res.check("%s: server on port %d starts" % (label, port), False, line + p.stderr.read())
        return None
    return p


def expect_fields(res, name, lines, want):
    problems = []
    if not lines:
        problems.append("no line")
    for r in lines:
        for f, v in want.items():
            if r[f] != v:
                problems.append("line %d: %s = %r, expected %r" % (r["_line"], f, r[f], v))
    res.check(name, not problems, "%d line(s)" % len(lines) if not problems else "\n".join(
        ["  MISMATCH " + p for p in problems[:10]] + ["    " + common.compact(r) for r in lines[:5]]))


def run_case(res, P, net, args, case, port, run_id):
    """One agent container; returns the records of flows.log (None if it did not run)."""
    label = case.label
    client = os.path.join(args.bindir, "pf_client")
    server = os.path.join(args.bindir, "pf_server")
    outdir = tempfile.mkdtemp(prefix="pfe2e-%d-image-" % os.getpid(), dir=P.tmp)
    srv = start_server(res, net, args.bindir, port, label)
    if srv is None:
        return None
    name = P.name(label.replace(" ", "-").replace(",", ""))
    argv = ["run", "-d", "--name", name, "--network", "host"]
    if case.pid_host:
        argv += ["--pid", "host"]
    argv += case.run_args + pm.agent_mounts(outdir)
    argv += [P.image, "run", "--flush-interval", "5", "--aggregation", "0"]
    t0 = time.monotonic()
    p = P.run(argv)
    if p.returncode != 0:
        res.check("%s: podman run" % label, False, p.stderr.strip())
        return None
    ready, log = P.wait_log(name, common.Agent.READY, READY_TIMEOUT_S)
    if not case.expect_ready:
        rc = P.stop(name)
        res.check("%s: the agent does not start: exit 1, saying the BPF object does not load" % label,
                  not ready and rc == 1 and "does not load" in log,
                  log.strip().splitlines()[-1] if log.strip() else "no log")
        return None
    res.check("%s: agent in the container prints %r" % (label, common.Agent.READY), ready,
              "after %.1f s" % (time.monotonic() - t0) if ready else log.strip()[-800:])
    if not ready:
        P.stop(name)
        return None
    if not case.pid_host:
        res.check("%s: the agent says it does not see the host PID namespace" % label,
                  "host PID namespace is not visible" in log,
                  "" if "host PID namespace is not visible" in log else log.strip()[-600:])

    tag = "image-%d-%s" % (port, run_id)
    cargv = [client, "tcp", net.server_v4, str(port), "100", tag]
    c, secs = net.run_in(net.client_ns, cargv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    res.check("%s: the client ran (%.0f ms)" % (label, secs * 1000), c.returncode == 0,
              c.err.decode(errors="replace"))
    rc = P.stop(name)
    res.check("%s: SIGTERM stops the container with exit 0" % label, rc == 0,
              "" if rc == 0 else "exit %s; log:\n%s" % (rc, P.logs(name).strip()[-600:]))
    records, problems = common.load_flows(os.path.join(outdir, "flows.log"))
    res.check("%s: flows.log lines follow the record contract" % label,
              records and not problems, "%d lines; %s" % (len(records), problems[:3]))

    src, dst = pm.own_lines(records, port, tag, c.pid, srv.pid)
    expect_fields(res, "%s: the client (started after the agent): path, arguments, host PID" % label,
                  src, dict(process_name=client, process_args=[" ".join(cargv[1:])],
                            process_id=str(c.pid), source_ip=net.client_v4,
                            dest_ip=net.server_v4, proto="tcp"))
    if case.pid_host and "without CAP_SYS_PTRACE" not in label:
        expect_fields(res, "%s: the server (started before the agent): path, arguments, host PID"
                      % label, dst, dict(process_name=server, process_args=["tcp :: %d" % port],
                                         process_id=str(srv.pid)))
    else:
        expect_fields(res, "%s: the server (started before the agent): task name, [], host PID"
                      % label, dst, dict(process_name="pf_server", process_args=[],
                                         process_id=str(srv.pid)))
    srv.kill()
    return records


def main(res, args):
    args.agent = os.path.abspath(args.agent)
    args.bindir = os.path.abspath(args.bindir)
    run_id = "%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
    P = pm.Podman(run_id)
    base = pm.free_port_base(10)
    with pm.ImageNet(P) as net:
        ok, detail, secs = P.build(args.agent)
        size = P.run(["image", "inspect", "--format", "{{.Size}}", P.image]).stdout.strip()
        res.check("the image builds FROM scratch with no registry (%.1f s, %s bytes)" % (
            secs, size), ok, detail)
        if not ok:
            return
        p = P.run(["run", "--rm", "--name", P.name("version"), P.image, "--version"])
        res.check("the image runs procflow (--version)", p.returncode == 0 and
                  p.stdout.startswith("procflow "), (p.stdout + p.stderr).strip())

        priv = ["--privileged"]
        caps = ["--cap-drop=all"] + ["--cap-add=" + c for c in MIN_CAPS] + [
            "--security-opt", "seccomp=unconfined"]
        cases = [
            Case("privileged pid-host", priv),
            Case("privileged own-pidns", priv, pid_host=False),
            Case("min-caps pid-host", caps),
            Case("min-caps without CAP_SYS_PTRACE",
                 ["--cap-drop=all"] + ["--cap-add=" + c for c in MIN_CAPS[:3]] +
                 ["--security-opt", "seccomp=unconfined"]),
        ]
        for drop in MIN_CAPS[:3]:
            cases.append(Case("min-caps without %s" % drop, ["--cap-drop=all"] + [
                "--cap-add=" + c for c in MIN_CAPS if c != drop] + [
                "--security-opt", "seccomp=unconfined"], expect_ready=False))
        t0 = time.monotonic()
        for i, case in enumerate(cases):
            run_case(res, P, net, args, case, base + i, run_id)
        print("IMAGE %d agent containers in %.1f s" % (len(cases), time.monotonic() - t0), flush=True)
    # Nothing of the run is left behind.
    def podman_list(argv):
        return subprocess.run(["podman"] + argv, stdout=subprocess.PIPE, text=True).stdout.split()
    left = podman_list(["ps", "-a", "--format", "{{.Names}}"])
    imgs = podman_list(["images", "--format", "{{.Repository}}:{{.Tag}}"])
    res.check("no container or image of the run is left",
              not [n for n in left if n.startswith(P.prefix)] and P.image not in imgs,
              "containers %s, images %s" % (left, imgs))


if __name__ == "__main__":
    sys.exit(common.run_main(main, __doc__.splitlines()[1]))
