#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""`procflow query` without root: flowLogsFileGroup (--file-group).

The agent runs with --file-group set to a group of this test's own; the
output directory gets that group and 0750, flows.log that group and 0640. A
temporary system user in the group runs `procflow query` on the agent's
output and finds the flow of a client this test ran (by its PID); `nobody`,
not in the group, cannot read it (exit 1). The user and group are removed at
the end, also on failure.
"""
import os
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Agent, run_main, wait_for  # noqa: E402
from netns import TestNet  # noqa: E402


def body(res, args):
    name = "pfq%d" % os.getpid()
    d = tempfile.mkdtemp(prefix="pf-group-")
    made_group = made_user = False
    agent = None
    try:
        # The base directory must be traversable by the user; what is
        # checked is the agent's own output directory inside it.
        os.chmod(d, 0o755)
        subprocess.run(["groupadd", "--system", name], check=True)
        made_group = True
        subprocess.run(["useradd", "--system", "--no-create-home", "--gid", name,
                        "--shell", "/usr/sbin/nologin", name], check=True)
        made_user = True
        import grp
        gid = grp.getgrnam(name).gr_gid
        # The user runs a copy of the binary in a directory it can reach.
        binary = os.path.join(d, "procflow")
        shutil.copy(args.agent, binary)
        os.chmod(binary, 0o755)

        out = os.path.join(d, "out")
        with TestNet() as net:
            agent = Agent(args.agent, ["run", "--output-dir", out, "--runtime-dir",
                                       os.path.join(d, "run"), "--flush-interval", "1",
                                       "--file-group", name], owner=net)
            agent.start()
            ok, detail = agent.wait_ready(30)
            if not res.check("agent ready with --file-group", ok, detail):
                return
            srv = net.spawn(net.server_ns, [os.path.join(args.bindir, "pf_server"), "tcp",
                                            net.server_v4, "18080"], stdout=subprocess.PIPE,
                            text=True)
            res.check("the server listens", "listening" in srv.stdout.readline())
            cli, _ = net.run_in(net.client_ns, [os.path.join(args.bindir, "pf_client"), "tcp",
                                                net.server_v4, "18080", "100", "group-test"])
            if not res.check("a client ran", cli.returncode == 0):
                return
            pid = str(cli.pid)
            flows = os.path.join(out, "flows.log")

            def has_client():
                try:
                    with open(flows) as f:
                        return any('"process_id":"%s"' % pid in l for l in f)
                except OSError:
                    return False
            res.check("the client's flow is in flows.log", wait_for(has_client, 15),
                      agent.stderr_text())
            srv.kill()
            rc, _ = agent.stop()
            res.check("agent exits 0 on SIGTERM", rc == 0, agent.stderr_text())

        st = os.stat(out)
        res.check("the directory has the group and 0750",
                  st.st_gid == gid and stat.S_IMODE(st.st_mode) == 0o750,
                  "gid %d mode %o" % (st.st_gid, stat.S_IMODE(st.st_mode)))
        st = os.stat(flows)
        res.check("flows.log has the group and 0640",
                  st.st_gid == gid and stat.S_IMODE(st.st_mode) == 0o640,
                  "gid %d mode %o" % (st.st_gid, stat.S_IMODE(st.st_mode)))

        q = subprocess.run([binary, "query", out, "--json", "--pid", pid], user=name,
                           group=name, extra_groups=[], capture_output=True, text=True,
                           timeout=30)
        res.check("a group member (not root) runs procflow query: exit 0",
                  q.returncode == 0, "exit %d: %s" % (q.returncode, q.stderr))
        res.check("it finds the client's flow",
                  '"process_id":"%s"' % pid in q.stdout, q.stdout[:500] + q.stderr)
        q = subprocess.run([binary, "query", out, "--json"], user="nobody", group="nogroup",
                           extra_groups=[], capture_output=True, text=True, timeout=30)
        res.check("a user outside the group cannot read it (exit 1)", q.returncode == 1,
                  "exit %d: %s" % (q.returncode, q.stderr))
    finally:
        if agent:
            agent.kill()
        if made_user:
            subprocess.run(["userdel", name])
        # (userdel also removes a group of the user's name; whatever is left goes.)
        if made_group and subprocess.run(["getent", "group", name],
                                         stdout=subprocess.DEVNULL).returncode == 0:
            subprocess.run(["groupdel", name])
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_main(body, __doc__))
