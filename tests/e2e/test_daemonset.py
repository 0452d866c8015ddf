#!/usr/bin/env python3
"""The Kubernetes DaemonSet's pod template, run with `podman kube play`.

There is no kubelet here, so the test does what the DaemonSet controller and the
kubelet would: it takes deploy/kubernetes/procflow-daemonset.yaml, turns the
DaemonSet's pod template into a Pod, keeps the ConfigMap, and plays both with
Podman 4.3 (image built from the binary under test). What Podman cannot do is
changed in the test only, each change printed as an ADAPT line:

- the Namespace document is left out (Podman has no namespaces; the ConfigMap's
  and the Pod's `namespace:` are ignored by it);
- the DaemonSet becomes its pod template as a Pod (kube play in 4.3 does not take
  DaemonSets);
- names are made unique per run (the Pod; the ConfigMap, which becomes a Podman
  volume of that name), the image is the run's tag, and the flowlogs hostPath is
  the test's directory;
- `securityContext.seccompProfile: Unconfined` is also given as the annotation
  Podman 4.3 reads (`seccomp.security.alpha.kubernetes.io/pod: unconfined`);
- `hostPID: true` is not applied by Podman 4.3's kube play (the pod gets its own
  PID namespace; test_image.py runs the same capabilities with --pid=host), so the
  server started before the agent is expected by task name, unless this Podman
  reports the host PID namespace, in which case by path and arguments.

Everything else is played as written: hostNetwork, the capabilities (drop ALL, add
four), no privilege, read-only root file system, runAsUser 0, the ConfigMap mounted
as /etc/procflow, the cgroup, bpffs, BTF and log hostPaths, the emptyDir for the
PID file, the args, the memory limit. The checks: the container has those
settings, the agent starts and reads the ConfigMap's file, and a short-lived
client in the test's namespaces is in flows.log with its path, arguments and PID.
"""

import os
import re
import subprocess
import sys
import tempfile
import time
import uuid

import common
import podman as pm

MANIFEST = os.path.join(pm.SRC, "deploy", "kubernetes", "procflow-daemonset.yaml")
MANIFEST_IMAGE = "localhost/procflow:0.1.0"
CAPS = ["CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON", "CAP_SYS_PTRACE"]


def docs_by_kind(text):
    docs = {}
    for d in re.split(r"^---\n", text, flags=re.M):
        m = re.search(r"^kind: (\S+)$", d, re.M)
        if m:
            docs[m.group(1)] = d
    return docs


def replace_once(text, old, new, what, adapt):
    n = text.count(old)
    if n != 1:
        raise RuntimeError("manifest: expected %r once (%s), found it %d times" % (old, what, n))
    adapt.append("%s: %r -> %r" % (what, old.strip(), new.strip()))
    return text.replace(old, new)


def pod_from_daemonset(ds):
    """The DaemonSet's spec.template, as a Pod document (what the controller creates)."""
    lines = ds.splitlines()
    i = lines.index("  template:")
    body = []
    for line in lines[i + 1:]:
        if line.strip() and not line.startswith("    "):
            break
        body.append(line[4:])
    return "apiVersion: v1\nkind: Pod\n" + "\n".join(body).rstrip() + "\n"


def adapt_manifest(P, outdir):
    """(YAML for podman kube play, pod name, list of adaptations)."""
    with open(MANIFEST, encoding="utf-8") as f:
        docs = docs_by_kind(f.read())
    adapt = ["Namespace document left out (Podman has none)",
             "DaemonSet -> its pod template as a Pod"]
    pod = pod_from_daemonset(docs["DaemonSet"])
    cm = docs["ConfigMap"]
    pod_name = P.pod_name("ds")
    cm_name = P.volume_name("config")
    pod = replace_once(pod, "metadata:\n", "metadata:\n  name: %s\n  annotations:\n"
                       "    seccomp.security.alpha.kubernetes.io/pod: unconfined\n" % pod_name,
                       "pod name, seccomp annotation", adapt)
    pod = replace_once(pod, "image: %s\n" % MANIFEST_IMAGE, "image: %s\n" % P.image, "image", adapt)
    pod = replace_once(pod, "path: /var/log/procflow ", "path: %s " % outdir, "flowlogs hostPath",
                       adapt)
    pod = replace_once(pod, "name: procflow-config\n", "name: %s\n" % cm_name, "ConfigMap ref",
                       adapt)
    cm = replace_once(cm, "name: procflow-config\n", "name: %s\n" % cm_name, "ConfigMap name", adapt)
    return cm.rstrip() + "\n---\n" + pod, pod_name, adapt


def pause_images(P):
    out = P.run(["images", "--format", "{{.Repository}}:{{.Tag}}"], timeout=60).stdout.split()
    return {i for i in out if i.startswith("localhost/podman-pause:")}


def inspect(P, name, fmt):
    return P.run(["inspect", "--format", fmt, name], timeout=30).stdout.strip()


def main(res, args):
    args.agent = os.path.abspath(args.agent)
    args.bindir = os.path.abspath(args.bindir)
    run_id = "%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
    P = pm.Podman(run_id)
    port = pm.free_port_base(1)
    client = os.path.join(args.bindir, "pf_client")
    server = os.path.join(args.bindir, "pf_server")
    with pm.ImageNet(P) as net:
        ok, detail, secs = P.build(args.agent)
        res.check("the image builds (%.1f s)" % secs, ok, detail)
        if not ok:
            return
        outdir = tempfile.mkdtemp(prefix="pfe2e-%d-ds-" % os.getpid(), dir=P.tmp)
        yaml, pod, adapt = adapt_manifest(P, outdir)
        for a in adapt:
            print("ADAPT " + a, flush=True)
        play = os.path.join(P.tmp, "play.yaml")
        with open(play, "w", encoding="utf-8") as f:
            f.write(yaml)

        srv = net.spawn(net.server_ns, [server, "tcp", "::", str(port)], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)
        line = srv.stdout.readline().strip()
        if not res.check("server starts before the agent", line == "pf_server: listening", line):
            return

        pause_before = pause_images(P)
        ctr = "%s-procflow" % pod
        P.containers.append(ctr)
        t0 = time.monotonic()
        p = P.run(["kube", "play", play], timeout=300)
        # kube play builds its pause image locally the first time: ours to remove.
        P.implicit_images += sorted(pause_images(P) - pause_before)
        if not res.check("podman kube play of the adapted manifest", p.returncode == 0,
                         "" if p.returncode == 0 else (p.stdout + p.stderr).strip()[-800:]):
            return
        ready, log = P.wait_log(ctr, common.Agent.READY, 60)
        res.check("the DaemonSet's container prints %r" % common.Agent.READY, ready,
                  "after %.1f s" % (time.monotonic() - t0) if ready else log.strip()[-800:])
        if not ready:
            return

        caps = inspect(P, ctr, "{{.HostConfig.CapAdd}}")
        res.check("capabilities: exactly %s added, nothing else" % ", ".join(CAPS),
                  caps == "[%s]" % " ".join(CAPS), caps)
        res.check("not privileged, read-only root file system, host network",
                  inspect(P, ctr, "{{.HostConfig.Privileged}} {{.HostConfig.ReadonlyRootfs}} "
                          "{{.HostConfig.NetworkMode}}") == "false true host",
                  inspect(P, ctr, "{{.HostConfig.Privileged}} {{.HostConfig.ReadonlyRootfs}} "
                          "{{.HostConfig.NetworkMode}}"))
        mounts = inspect(P, ctr, "{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}").split()
        want = ["/sys/fs/cgroup:/sys/fs/cgroup", "/sys/fs/bpf:/sys/fs/bpf",
                "/sys/kernel/btf:/sys/kernel/btf", "%s:/var/log/procflow" % outdir]
        res.check("hostPath mounts: cgroup, bpffs, BTF, the log directory",
                  all(m in mounts for m in want) and any(m.endswith(":/etc/procflow")
                                                         for m in mounts), " ".join(mounts))
        # The agent runs on the ConfigMap's file: its values, from that file.
        pc = P.run(["exec", ctr, "/usr/bin/procflow", "run", "--print-config", "--config",
                    "/etc/procflow/procflow.yaml"], timeout=30)
        res.check("the ConfigMap is /etc/procflow/procflow.yaml in the container",
                  pc.returncode == 0 and re.search(
                      r"^flowLogsFileCompression: zstd +# file /etc/procflow/procflow.yaml:\d+$",
                      pc.stdout, re.M) is not None,
                  "flowLogsFileCompression: zstd from the file" if pc.returncode == 0 else
                  pc.stdout[-600:] + pc.stderr)
        pidmode = inspect(P, ctr, "{{.HostConfig.PidMode}}")
        print("PIDMODE %s (the manifest says hostPID: true)" % pidmode, flush=True)

        tag = "ds-%s" % run_id
        cargv = [client, "tcp", net.server_v4, str(port), "100", tag]
        c, secs = net.run_in(net.client_ns, cargv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        res.check("the client ran (%.0f ms)" % (secs * 1000), c.returncode == 0,
                  c.err.decode(errors="replace"))
        stop = P.run(["pod", "stop", "-t", "30", pod], timeout=90)
        rc = inspect(P, ctr, "{{.State.ExitCode}}")
        res.check("stopping the pod (SIGTERM) ends the agent with exit 0",
                  stop.returncode == 0 and rc == "0", "exit %s %s" % (rc, stop.stderr.strip()))

        records, problems = common.load_flows(os.path.join(outdir, "flows.log"))
        res.check("flows.log on the hostPath, lines follow the record contract",
                  records and not problems, "%d lines; %s" % (len(records), problems[:3]))
        src, dst = pm.own_lines(records, port, tag, c.pid, srv.pid)
        want_src = dict(process_name=client, process_args=[" ".join(cargv[1:])],
                        process_id=str(c.pid), source_ip=net.client_v4, dest_ip=net.server_v4)
        if pidmode == "host":
            want_dst = dict(process_name=server, process_args=["tcp :: %d" % port],
                            process_id=str(srv.pid))
        else:
            want_dst = dict(process_name="pf_server", process_args=[], process_id=str(srv.pid))
        for name, lines, want_f in (
                ("the client (after the agent): path, arguments, PID", src, want_src),
                ("the server (before the agent, pid %s): %s" % (
                    pidmode, "path, arguments" if pidmode == "host" else "task name, []"),
                 dst, want_dst)):
            bad = ["line %d: %s = %r, expected %r" % (r["_line"], k, r[k], v)
                   for r in lines for k, v in want_f.items() if r[k] != v]
            res.check(name, lines and not bad, "; ".join(bad[:5]) or "%d line(s)" % len(lines))
        srv.kill()

    def podman_list(argv):
        return subprocess.run(["podman"] + argv, stdout=subprocess.PIPE, text=True).stdout.split()
    left = [n for n in podman_list(["ps", "-a", "--format", "{{.Names}}"]) +
            podman_list(["pod", "ps", "--format", "{{.Name}}"]) +
            podman_list(["volume", "ls", "--format", "{{.Name}}"]) if n.startswith(P.prefix)]
    res.check("no pod, container, volume or image of the run is left",
              not left and P.image not in podman_list(
                  ["images", "--format", "{{.Repository}}:{{.Tag}}"]), "left: %s" % left)


if __name__ == "__main__":
    sys.exit(common.run_main(main, __doc__.splitlines()[1]))
