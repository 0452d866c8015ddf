#!/usr/bin/env python3
"""End-to-end: procflow's command line, as a user meets it.

    python3 tests/e2e/test_cli.py --agent build/procflow --bindir build/e2e   (as root)

The contract (from the agent's interface):
    procflow run [--output-dir DIR] [--flush-interval SECONDS] [--include-loopback]
                 [--no-process-path] [--stdout]
    bad flag or value: exit 2, exactly one line on stderr, nothing started;
    --help: exit 0, every flag named; --version: exit 0; check: exit 0 on a kernel
    that can run it.

Every bad invocation runs with a timeout: an agent that accepted the bad value and
started running is killed and counted as a failure, never left behind.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import Agent, Results  # noqa: E402

FLAGS = ["--output-dir", "--flush-interval", "--include-loopback", "--no-process-path", "--stdout"]
TIMEOUT_S = 20
SIGTERM_TRIES = 8


def run(agent, argv, timeout=TIMEOUT_S):
    """Run the agent to completion. Returns (rc or None on timeout, stdout, stderr)."""
    try:
        p = subprocess.Popen([agent] + argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        return None, "", "cannot execute %s: %s" % (agent, e)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def show(s):
    return repr(s if len(s) < 400 else s[:400] + "...")


def project_version():
    """The version CMakeLists.txt gives the agent (PF_VERSION), or None."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "CMakeLists.txt")
    try:
        with open(path) as f:
            m = re.search(r"project\(\s*procflow\s+VERSION\s+([0-9.]+)", f.read())
    except OSError:
        return None
    return m.group(1) if m else None


def check_help(agent, res):
    """Each command has its own short help, 80 columns wide; an unknown topic is an error."""
    pages = {
        ("--help",): 30, ("help",): 30, ("check", "--help"): 20, ("reload", "--help"): 20,
        ("clickhouse-schema", "--help"): 20, ("help", "check"): 20, ("query", "--help"): 60,
        ("help", "query"): 60, ("run", "--help"): 200, ("help", "config"): 200,
    }
    for argv, most in pages.items():
        rc, out, err = run(agent, list(argv))
        lines = out.splitlines()
        wide = [l for l in lines if len(l) > 80]
        res.check("procflow %s: exit 0, at most %d lines, none over 80 columns" % (" ".join(argv), most),
                  rc == 0 and 0 < len(lines) <= most and not wide and err == "",
                  "exit %s, %d lines, too wide: %s" % (rc, len(lines), show(wide[:2])))
    rc, out, err = run(agent, ["check", "--help"])
    res.check("check --help is about check", out.startswith("Usage: procflow check"), show(out[:80]))
    rc, out, err = run(agent, ["help", "bogus"])
    res.check("help bogus: exit 2, one line", rc == 2 and len(err.splitlines()) == 1 and out == "",
              "exit %s %s" % (rc, show(err)))


def main(res, args):
    agent = args.agent
    tmp = tempfile.mkdtemp(prefix="pfe2e-%d-cli-" % os.getpid())
    try:
        a_file = os.path.join(tmp, "not-a-dir")
        with open(a_file, "w") as f:
            f.write("a regular file\n")
        outdir = os.path.join(tmp, "out")
        os.mkdir(outdir)

        bad = [
            ("unknown flag", ["run", "--bogus"]),
            ("unknown flag before the command", ["--bogus"]),
            ("unknown command", ["frobnicate"]),
            ("--flush-interval 0", ["run", "--output-dir", outdir, "--flush-interval", "0"]),
            ("--flush-interval -1", ["run", "--output-dir", outdir, "--flush-interval", "-1"]),
            ("--flush-interval abc", ["run", "--output-dir", outdir, "--flush-interval", "abc"]),
            ("--flush-interval ''", ["run", "--output-dir", outdir, "--flush-interval", ""]),
            ("--flush-interval 5x", ["run", "--output-dir", outdir, "--flush-interval", "5x"]),
            ("--flush-interval without a value", ["run", "--output-dir", outdir, "--flush-interval"]),
            ("--output-dir without a value", ["run", "--output-dir"]),
            ("--output-dir is a regular file", ["run", "--output-dir", a_file]),
            ("--output-dir ''", ["run", "--output-dir", ""]),
        ]
        for name, argv in bad:
            rc, out, err = run(agent, argv)
            lines = err.splitlines()
            ok = rc == 2 and len(lines) == 1 and lines[0].strip() != ""
            detail = "exit %s, stderr %s" % ("timeout (agent kept running; killed)" if rc is None else rc,
                                            show(err))
            res.check("%s: exit 2 with exactly one line on stderr" % name, ok, detail)

        rc, out, err = run(agent, ["run", "--help"])
        text = out + err
        missing = [f for f in FLAGS if f not in text]
        res.check("run --help exits 0", rc == 0, "exit %s" % rc)
        res.check("run --help names every flag", rc is not None and not missing,
                  "missing %s in %s" % (missing, show(text)) if missing else "")
        no_redact = [l for l in out.splitlines() if "--no-redact" in l]
        res.check("run --help: --no-redact says it keeps secrets, not that it redacts",
                  len(no_redact) == 1 and "keep" in no_redact[0] and
                  not no_redact[0].split("--no-redact", 1)[1].strip().startswith("replace"),
                  show(no_redact))
        check_help(agent, res)

        rc, out, err = run(agent, ["--version"])
        text = (out + err).strip()
        want = project_version()
        res.check("--version exits 0 and prints a version", rc == 0 and bool(re.search(r"\d+\.\d+", text)),
                  "exit %s, output %s" % (rc, show(text)))
        res.check("--version prints the project's version %s" % want,
                  want is not None and want in text, "output %s" % show(text))

        rc, out, err = run(agent, ["check"], timeout=60)
        res.check("check exits 0 on this host (kernel %s)" % os.uname().release, rc == 0,
                  "exit %s, stdout %s, stderr %s" % (rc, show(out), show(err)))

        # Every flag at once is a valid command line: the agent starts and stops cleanly.
        a = Agent(agent, ["run", "--output-dir", outdir, "--flush-interval", "1", "--include-loopback",
                          "--no-process-path", "--stdout"])
        try:
            a.start()
        except OSError as e:
            res.check("all flags together: agent starts", False, "cannot execute: %s" % e)
        else:
            try:
                ok, detail = a.wait_ready(60)
                res.check("all flags together: agent starts and prints %r" % Agent.READY, ok, detail)
                if ok:
                    rc, secs = a.stop()
                    res.check("all flags together: exit 0 on SIGTERM", rc == 0,
                              "exit %s after %.2f s" % (rc, secs))
                else:
                    res.not_run(["all flags together: exit 0 on SIGTERM"], "the agent did not start")
            finally:
                a.kill()
        # The contract: once "procflow: ready" is printed, SIGTERM writes the interval
        # and exits 0. A SIGTERM sent the moment the line appears finds out whether the
        # signal handling is in place before the line is printed; repeated, because a
        # gap between the two is a race.
        rcs = []
        for i in range(SIGTERM_TRIES):
            a = Agent(agent, ["run", "--output-dir", outdir, "--flush-interval", "5"])
            try:
                a.start()
                ok, detail = a.wait_ready(60)
                if not ok:
                    rcs.append("not ready: " + detail)
                    break
                rc, _ = a.stop()
                rcs.append(rc)
            except OSError as e:
                rcs.append("cannot execute: %s" % e)
                break
            finally:
                a.kill()
        res.check("SIGTERM right after 'procflow: ready' exits 0 (%d tries)" % SIGTERM_TRIES,
                  rcs == [0] * SIGTERM_TRIES,
                  "exit codes %s (negative: killed by that signal)" % rcs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return


if __name__ == "__main__":
    sys.exit(common.run_main(main, __doc__.splitlines()[1]))
