#!/usr/bin/env python3
"""`make install`, the systemd unit, the sample config and procflow(8).

What an administrator installing procflow on a host without Kubernetes relies on:
`make install` (here its second half, `install-files`, on the binary under test)
puts the binary, the unit, the man page and the sample config under DESTDIR and
PREFIX; a config already there is never overwritten; `systemd-analyze verify`
accepts the installed unit (its ExecStart pointing at the installed binary, its
Documentation= at the installed man page); the sample config names every key
with its true default; the man page renders without warnings and lists every
option of the README's Usage table. Everything is installed into a temporary
DESTDIR, removed at the end.
"""

import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

import common
import netns

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UNIT_SRC = os.path.join(SRC, "deploy", "systemd", "procflow.service")
CONF_SRC = os.path.join(SRC, "deploy", "procflow.yaml")
# Exposure score of `systemd-analyze security` (0 best, 10 worst) the unit must stay
# under; 3.6 when written (an agent that loads BPF cannot go much lower).
MAX_EXPOSURE = 4.0


def run(argv, env=None, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, **kw)


def make_install(build, destdir, *extra):
    return run(["make", "--no-print-directory", "-C", SRC, "install-files", "BUILD=" + build,
                "DESTDIR=" + destdir] + list(extra))


def readme_usage_options():
    """The long options of the README's Usage table ("--config", ...)."""
    with open(os.path.join(SRC, "README.md"), encoding="utf-8") as f:
        text = f.read()
    usage = text.split("\n## Usage\n", 1)[1].split("\n## ", 1)[0]
    opts = []
    for line in usage.splitlines():
        m = re.match(r"\|\s*(?:`-\w`, )?`(--[a-z-]+)", line)
        if m:
            opts.append(m.group(1))
    return opts


def default_config(agent, tmp):
    """{key: default value} from `procflow run --print-config` on an empty config
    file and a clean environment (a host's own /etc/procflow must not count)."""
    empty = os.path.join(tmp, "empty.yaml")
    open(empty, "w").close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCFLOW_")}
    p = run([agent, "run", "--print-config", "--config", empty], env=env)
    vals = {}
    for line in p.stdout.splitlines():
        m = re.match(r"^([A-Za-z]+): (.*?)\s+# default$", line)
        if m:
            vals[m.group(1)] = m.group(2)
    return vals


def check_capabilities_agree(res):
    """The capability set is one fact in four places: README "Privileges", the unit's
    CapabilityBoundingSet, the DaemonSet's add list, test_image.py's MIN_CAPS."""
    with open(os.path.join(SRC, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    priv = readme.split("\n## Privileges\n", 1)[1].split("\n## ", 1)[0]
    doc = sorted(re.findall(r"^\| `(CAP_[A-Z_]+)` \|", priv, re.M))
    with open(UNIT_SRC, encoding="utf-8") as f:
        m = re.search(r"^CapabilityBoundingSet=(.*)$", f.read(), re.M)
    unit = sorted(m.group(1).split()) if m else []
    with open(os.path.join(SRC, "deploy", "kubernetes", "procflow-daemonset.yaml"),
              encoding="utf-8") as f:
        m = re.search(r"^\s+add: \[(.*)\]$", f.read(), re.M)
    ds = sorted("CAP_" + c.strip().strip('"') for c in m.group(1).split(",")) if m else []
    with open(os.path.join(SRC, "tests", "e2e", "test_image.py"), encoding="utf-8") as f:
        m = re.search(r"^MIN_CAPS = \[(.*)\]$", f.read(), re.M)
    tested = sorted(c.strip().strip('"') for c in m.group(1).split(",")) if m else []
    res.check("capabilities: README, unit, DaemonSet and the tested set agree",
              doc and doc == unit == ds == tested,
              "README %s, unit %s, DaemonSet %s, test_image %s" % (doc, unit, ds, tested))


def check_sample_config(res, agent, tmp):
    defaults = default_config(agent, tmp)
    res.check("--print-config lists the keys", len(defaults) >= 20, "%d keys" % len(defaults))
    with open(CONF_SRC, encoding="utf-8") as f:
        sample = f.read()
    commented = dict(re.findall(r"^#([A-Za-z]+): (.*)$", sample, re.M))
    missing = sorted(set(defaults) - set(commented))
    unknown = sorted(set(commented) - set(defaults))
    res.check("sample config names every key (commented out)", not missing and not unknown,
              "missing from deploy/procflow.yaml: %s; not keys: %s" % (missing, unknown))
    wrong = ["%s: sample %s, default %s" % (k, commented[k], defaults[k])
             for k in sorted(set(defaults) & set(commented)) if commented[k] != defaults[k]]
    res.check("sample config shows each key's true default", not wrong, "; ".join(wrong))
    # Uncommented, the sample is a valid config that changes nothing.
    live = os.path.join(tmp, "uncommented.yaml")
    with open(live, "w", encoding="utf-8") as f:
        f.write(re.sub(r"^#([A-Za-z]+: )", r"\1", sample, flags=re.M))
    p = run([agent, "run", "--print-config", "--config", live])
    from_file = re.findall(r"^([A-Za-z]+): .*# file ", p.stdout, re.M)
    res.check("sample config uncommented is accepted, every key from the file",
              p.returncode == 0 and sorted(from_file) == sorted(defaults),
              "exit %d, %d of %d keys from the file; stderr: %s" % (
                  p.returncode, len(from_file), len(defaults), p.stderr.strip()))
    # Commented, it is the defaults: the agent reads it as an empty mapping.
    p = run([agent, "run", "--print-config", "--config", CONF_SRC])
    res.check("sample config as shipped is accepted", p.returncode == 0,
              "exit %d: %s" % (p.returncode, p.stderr.strip()))


def check_unit(res, dest, tmp):
    unit = os.path.join(dest, "usr/local/lib/systemd/system/procflow.service")
    binary = os.path.join(dest, "usr/local/bin/procflow")
    mandir = os.path.join(dest, "usr/local/share/man")
    with open(unit, encoding="utf-8") as f:
        text = f.read()
    res.check("unit: ExecStart runs the installed binary",
              re.search(r"^ExecStart=/usr/local/bin/procflow run$", text, re.M) is not None,
              "ExecStart lines: %s" % re.findall(r"^ExecStart=.*$", text, re.M))
    for key in ("User=procflow", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                "RuntimeDirectory=procflow", "LogsDirectory=procflow", "NoNewPrivileges=yes"):
        res.check("unit: %s" % key, re.search("^%s$" % re.escape(key), text, re.M) is not None)

    # systemd-analyze checks that ExecStart's binary exists and is executable, and
    # (through man) that Documentation=man:procflow(8) resolves: point both at DESTDIR.
    vdir = os.path.join(tmp, "verify")
    os.makedirs(vdir, exist_ok=True)
    vunit = os.path.join(vdir, "procflow.service")
    with open(vunit, "w", encoding="utf-8") as f:
        f.write(text.replace("/usr/local/bin/procflow", binary))
    env = dict(os.environ, MANPATH=mandir)
    p = run(["systemd-analyze", "verify", vunit], env=env)
    res.check("systemd-analyze verify accepts the installed unit",
              p.returncode == 0 and not p.stderr.strip(),
              "exit %d: %s" % (p.returncode, (p.stdout + p.stderr).strip()))
    # The same check must be able to fail: a unit whose binary is not there.
    bad = os.path.join(vdir, "bad", "procflow.service")
    os.makedirs(os.path.dirname(bad), exist_ok=True)
    with open(bad, "w", encoding="utf-8") as f:
        f.write(text.replace("/usr/local/bin/procflow", binary + "-missing"))
    p = run(["systemd-analyze", "verify", bad], env=env)
    res.check("systemd-analyze verify rejects the unit when its binary is missing",
              p.returncode != 0 and "not executable" in p.stderr, "exit %d: %s" % (
                  p.returncode, p.stderr.strip()))

    p = run(["systemd-analyze", "security", "--offline=yes", vunit])
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", p.stdout)
    score = float(m.group(1)) if m else None
    res.check("systemd-analyze security: exposure under %.1f" % MAX_EXPOSURE,
              score is not None and score < MAX_EXPOSURE,
              "exposure %s" % (score if score is not None else p.stdout[-300:] + p.stderr))


def unit_caps(text, key):
    m = re.search(r"^%s=(.*)$" % key, text, re.M)
    return m.group(1).split() if m else []


def check_unit_identity(res, args, tmp):
    """The unit's User=, AmbientCapabilities=, CapabilityBoundingSet= and
    NoNewPrivileges= reproduced with setpriv (no systemd as PID 1 here): as an
    unprivileged user (nobody: the procflow user is not created on the test host)
    holding only those capabilities, the agent starts and names both a client
    started after it and a server started before it by path, arguments and PID."""
    with open(UNIT_SRC, encoding="utf-8") as f:
        text = f.read()
    ambient = unit_caps(text, "AmbientCapabilities")
    bounding = unit_caps(text, "CapabilityBoundingSet")
    res.check("unit: AmbientCapabilities= is CapabilityBoundingSet=",
              ambient and sorted(ambient) == sorted(bounding), "%s / %s" % (ambient, bounding))
    setcaps = ",".join("+" + c[len("CAP_"):].lower() for c in ambient)
    uid = 65534
    outdir = os.path.join(tmp, "nonroot-log")
    rundir = os.path.join(tmp, "nonroot-run")
    for d, mode in ((outdir, 0o750), (rundir, 0o755)):  # LogsDirectory=, RuntimeDirectory=
        os.makedirs(d)
        os.chown(d, uid, uid)
        os.chmod(d, mode)
    os.chmod(tmp, 0o755)  # the user must reach them
    client = os.path.join(os.path.abspath(args.bindir), "pf_client")
    server = os.path.join(os.path.abspath(args.bindir), "pf_server")
    # Random: other tests use the same namespace addresses, ports from their PIDs.
    port = random.SystemRandom().randrange(30000, 60000)
    with netns.TestNet("unit") as net:
        srv = net.spawn(net.server_ns, [server, "tcp", "::", str(port)], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)
        line = srv.stdout.readline().strip()
        if not res.check("unit identity: server starts before the agent",
                         line == "pf_server: listening", line):
            return
        agent = common.Agent("setpriv", [
            "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups", "--no-new-privs",
            "--bounding-set=-all," + setcaps, "--inh-caps=-all," + setcaps,
            "--ambient-caps=-all," + setcaps, os.path.abspath(args.agent), "run",
            "--output-dir", outdir, "--runtime-dir", rundir, "--flush-interval", "5",
            "--aggregation", "0"], owner=net)
        agent.start()
        ok, detail = agent.wait_ready(60)
        res.check("unit identity: the agent starts as uid %d with %s" % (uid, setcaps), ok,
                  detail)
        if not ok:
            return
        cargv = [client, "tcp", net.server_v4, str(port), "100", "unit-%d" % os.getpid()]
        c, _ = net.run_in(net.client_ns, cargv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        rc, _ = agent.stop()
        res.check("unit identity: SIGTERM, exit 0", rc == 0,
                  "" if rc == 0 else agent.stderr_text())
        records, problems = common.load_flows(os.path.join(outdir, "flows.log"))
        st = os.stat(os.path.join(outdir, "flows.log")) if records else None
        res.check("unit identity: flows.log written by the unit's user, mode 0640",
                  st is not None and st.st_uid == uid and (st.st_mode & 0o777) == 0o640,
                  "uid %d, mode %o" % (st.st_uid, st.st_mode & 0o777) if st else "no flows.log")
        tag = cargv[-1]
        # This run's lines only (see podman.own_lines): the client's by PID or tag,
        # the server's by PID.
        got = {(r["reporter"], r["process_name"], r["process_id"], tuple(r["process_args"]))
               for r in records if r["dest_port"] == port and (
                   r["process_id"] in (str(c.pid), str(srv.pid)) or
                   any(tag in a for a in r["process_args"]))}
        want = {("src", client, str(c.pid), (" ".join(cargv[1:]),)),
                ("dst", server, str(srv.pid), ("tcp :: %d" % port,))}
        res.check("unit identity: client and older server by path, arguments, PID",
                  got == want and not problems, "got %s, want %s; %s" % (got, want, problems[:2]))


def check_sysusers(res, dest, tmp):
    """The unit's User= exists once systemd-sysusers has read the installed entry
    (into a staging root, never the host's /etc/passwd)."""
    root = os.path.join(tmp, "sysusers-root")
    os.makedirs(os.path.join(root, "etc"), exist_ok=True)
    conf = os.path.join(dest, "usr/local/lib/sysusers.d/procflow.conf")
    p = run(["systemd-sysusers", "--root=" + root, conf])
    try:
        with open(os.path.join(root, "etc", "passwd"), encoding="utf-8") as f:
            users = [l.split(":") for l in f.read().splitlines()]
    except OSError as e:
        users = []
        p.stderr += str(e)
    mine = [u for u in users if u[0] == "procflow"]
    res.check("systemd-sysusers creates the unit's user: procflow, a system uid, no login",
              p.returncode == 0 and len(mine) == 1 and 0 < int(mine[0][2]) < 1000
              and mine[0][6].endswith("nologin"),
              "exit %d %s; %s" % (p.returncode, p.stderr.strip(), mine))


def check_man(res, dest):
    page = os.path.join(dest, "usr/local/share/man/man8/procflow.8")
    p = run(["groff", "-man", "-Tutf8", "-ww", "-z", page])
    res.check("procflow(8) renders without groff warnings", p.returncode == 0 and not p.stderr,
              "exit %d: %s" % (p.returncode, p.stderr.strip()))
    p = run(["man", "-l", page], env=dict(os.environ, MANWIDTH="200", MAN_KEEP_FORMATTING="0"))
    text = re.sub(r".\x08", "", p.stdout)
    opts = readme_usage_options()
    missing = [o for o in opts if o not in text]
    res.check("procflow(8) lists every option of the README's Usage table",
              len(opts) >= 20 and not missing,
              "%d options in the README, missing from the page: %s" % (len(opts), missing))
    res.check("procflow(8) has a synopsis and the exit status",
              "SYNOPSIS" in text and "procflow run [OPTIONS]" in text
              and re.search(r"Exit\s+status", text) is not None)


def main(res, args):
    agent = os.path.abspath(args.agent)
    build = os.path.dirname(agent)
    tmp = tempfile.mkdtemp(prefix="pf-install-")
    try:
        dest = os.path.join(tmp, "dest")
        p = make_install(build, dest)
        res.check("make install-files into DESTDIR", p.returncode == 0,
                  "exit %d: %s" % (p.returncode, p.stderr.strip()))
        modes = {
            "usr/local/bin/procflow": 0o755,
            "usr/local/lib/systemd/system/procflow.service": 0o644,
            "usr/local/share/man/man8/procflow.8": 0o644,
            "etc/procflow/procflow.yaml": 0o644,
            "usr/local/lib/sysusers.d/procflow.conf": 0o644,
        }
        for rel, mode in modes.items():
            path = os.path.join(dest, rel)
            st = os.stat(path) if os.path.exists(path) else None
            res.check("installed %s, mode %o" % (rel, mode),
                      st is not None and (st.st_mode & 0o7777) == mode,
                      "mode %o" % (st.st_mode & 0o7777) if st else "missing")
        with open(agent, "rb") as a, open(os.path.join(dest, "usr/local/bin/procflow"), "rb") as b:
            res.check("installed binary is the one built", a.read() == b.read())
        with open(CONF_SRC, "rb") as a, open(os.path.join(dest, "etc/procflow/procflow.yaml"),
                                            "rb") as b:
            res.check("installed config is the sample", a.read() == b.read())

        # An administrator's config survives a second install.
        conf = os.path.join(dest, "etc/procflow/procflow.yaml")
        mine = "flowLogsFlushInterval: 30s\n"
        with open(conf, "w", encoding="utf-8") as f:
            f.write(mine)
        p = make_install(build, dest)
        with open(conf, encoding="utf-8") as f:
            kept = f.read()
        res.check("a second install keeps the existing config and says so",
                  p.returncode == 0 and kept == mine and "keeping the existing" in p.stdout,
                  "exit %d, config now %r, output %r" % (p.returncode, kept, p.stdout[-200:]))

        check_unit(res, dest, tmp)
        check_sysusers(res, dest, tmp)
        check_man(res, dest)

        # PREFIX moves the binary, unit and page, and the unit follows the binary.
        dest2 = os.path.join(tmp, "dest2")
        p = make_install(build, dest2, "PREFIX=/opt/procflow")
        unit2 = os.path.join(dest2, "opt/procflow/lib/systemd/system/procflow.service")
        ok = p.returncode == 0 and os.access(os.path.join(dest2, "opt/procflow/bin/procflow"),
                                             os.X_OK) and os.path.exists(unit2)
        exec_start = ""
        if ok:
            with open(unit2, encoding="utf-8") as f:
                exec_start = "".join(re.findall(r"^ExecStart=.*$", f.read(), re.M))
        res.check("PREFIX=/opt/procflow: binary and unit there, ExecStart follows",
                  ok and exec_start == "ExecStart=/opt/procflow/bin/procflow run",
                  "exit %d, %s; %s" % (p.returncode, exec_start, p.stderr.strip()))
        res.check("PREFIX=/opt/procflow: the config is still /etc/procflow/procflow.yaml",
                  os.path.exists(os.path.join(dest2, "etc/procflow/procflow.yaml")))

        check_sample_config(res, agent, tmp)
        check_capabilities_agree(res)
        check_unit_identity(res, args, tmp)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(common.run_main(main, __doc__.splitlines()[1]))
