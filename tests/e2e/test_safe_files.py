#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Root's files cannot be turned against the host.

A user who can write the output or runtime directory could plant a symbolic
link at flows.log or procflow.pid pointing at /etc/shadow and have root append
to it or chmod it. Here a root-owned 0600 "victim" file stands for /etc/shadow:
after each attempt it must be unchanged (content, mode, size). A directory that
another user owns, or that group or others can write, is refused with exit 2
and a message naming it, before anything is loaded; the same for the ClickHouse
sink's spool directory. (flows.log.1.zst.tmp and the
spool's temporary batch names: tests/unit/test_safefs.c.)
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run_main  # noqa: E402

SECRET = b"root:secret-hash:19000::::::\n"


def run_agent(agent, out, rundir, extra=()):
    """Start the agent; every case here ends before the hooks are loaded.
    Returns (exit code, stderr)."""
    p = subprocess.run([agent, "run", "--output-dir", out, "--runtime-dir", rundir,
                        "--flush-interval", "1"] + list(extra), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=30)
    return p.returncode, p.stderr


def body(res, args):
    d = tempfile.mkdtemp(prefix="pf-safe-")
    try:
        victim = os.path.join(d, "victim")
        with open(victim, "wb") as f:
            f.write(SECRET)
        os.chmod(victim, 0o600)

        def victim_unchanged(name):
            st = os.lstat(victim)
            with open(victim, "rb") as f:
                data = f.read()
            res.check(name + ": the victim is unchanged",
                      data == SECRET and (st.st_mode & 0o7777) == 0o600 and st.st_uid == 0
                      and st.st_size == len(SECRET),
                      "mode %o size %d content %r" % (st.st_mode & 0o7777, st.st_size, data[:60]))

        n = 0

        def case(name, setup, want_rc, want_text, extra=lambda base: ()):
            nonlocal n
            n += 1
            base = os.path.join(d, "c%d" % n)
            os.mkdir(base, 0o700)
            out, rundir = os.path.join(base, "out"), os.path.join(base, "run")
            setup(out, rundir)
            rc, err = run_agent(args.agent, out, rundir, extra(base))
            res.check(name + ": exit %d" % want_rc, rc == want_rc, "exit %d: %s" % (rc, err))
            res.check(name + ": the message names it", want_text(out, rundir) in err, err)
            victim_unchanged(name)

        def mkdir(path, mode, uid=0):
            os.mkdir(path)
            os.chmod(path, mode)
            os.chown(path, uid, uid)

        def link_log(out, rundir):
            mkdir(out, 0o750)
            os.symlink(victim, os.path.join(out, "flows.log"))

        case("flows.log a symbolic link", link_log, 2, lambda o, r: o + "/flows.log")

        def link_pid(out, rundir):
            mkdir(rundir, 0o755)
            os.symlink(victim, os.path.join(rundir, "procflow.pid"))

        case("procflow.pid a symbolic link", link_pid, 2, lambda o, r: r + "/procflow.pid")

        case("output directory writable by others",
             lambda o, r: mkdir(o, 0o1777), 2,
             lambda o, r: "output directory %s: it is writable by group or others" % o)
        case("output directory writable by its group",
             lambda o, r: mkdir(o, 0o770), 2,
             lambda o, r: "output directory %s: it is writable by group or others" % o)
        case("output directory owned by another user",
             lambda o, r: mkdir(o, 0o755, uid=65534), 2,
             lambda o, r: "output directory %s: it is owned by uid 65534" % o)
        case("output directory a symbolic link",
             lambda o, r: (mkdir(o + ".real", 0o750), os.symlink(o + ".real", o)), 2,
             lambda o, r: "output directory %s: it is a symbolic link" % o)
        case("runtime directory writable by others",
             lambda o, r: mkdir(r, 0o777), 2,
             lambda o, r: "runtime directory %s: it is writable by group or others" % r)
        case("runtime directory owned by another user",
             lambda o, r: mkdir(r, 0o755, uid=65534), 2,
             lambda o, r: "runtime directory %s: it is owned by uid 65534" % r)

        # The ClickHouse sink's spool: the same rules. Nothing listens on
        # the URL; the sink is refused before it would send anything.
        def spool_args(base):
            return ["--clickhouse-url", "http://127.0.0.1:9/",
                    "--clickhouse-spool-dir", os.path.join(base, "spool")]

        def spool_of(o):
            return os.path.join(os.path.dirname(o), "spool")

        case("spool directory owned by another user",
             lambda o, r: mkdir(spool_of(o), 0o750, uid=65534), 2,
             lambda o, r: "spool directory %s: it is owned by uid 65534" % spool_of(o), spool_args)
        case("spool directory writable by others",
             lambda o, r: mkdir(spool_of(o), 0o1777), 2,
             lambda o, r: "spool directory %s: it is writable by group or others" % spool_of(o),
             spool_args)
        case("spool directory a symbolic link",
             lambda o, r: (mkdir(spool_of(o) + ".real", 0o750),
                           os.symlink(spool_of(o) + ".real", spool_of(o))), 2,
             lambda o, r: "spool directory %s: it is a symbolic link" % spool_of(o), spool_args)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_main(body, __doc__))
