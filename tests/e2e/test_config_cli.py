#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Configuration: every kind of bad input exits 2 with one message naming the
key and the file and line (or the variable or flag), before anything is loaded
into the kernel; precedence is flags > environment > file > defaults, as
`procflow run --print-config` shows.

No traffic and no kernel hooks: `--print-config` and the config errors stop
before the loader, which is also what this test checks (an agent that got as
far as loading would print "hook tier" or "ready")."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run_main, workdir  # noqa: E402


def run(agent, args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCFLOW_")}
    env.update(env_extra or {})
    return subprocess.run([agent, "run"] + args, capture_output=True, text=True, env=env,
                          timeout=30)


def cmd(agent, argv, env_extra=None, timeout=60):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCFLOW_")}
    env.update(env_extra or {})
    return subprocess.run([agent] + argv, capture_output=True, text=True, env=env,
                          timeout=timeout, errors="replace")


def clean_line(s):
    """One line, no control byte (ESC, BEL, ...) in it."""
    lines = [l for l in s.splitlines() if l]
    return len(lines) == 1 and not any(ord(c) < 0x20 and c != "\t" for c in lines[0])


def check_one_validation(check, agent, d, cfg, base):
    """Every command validates through one function: what `run` refuses,
    `run --print-config`, `check` and `reload` refuse too, with the same exit 2."""
    rules_bad = cfg("rules-bad.txt", "# rules\nfrobnicate x\n")
    rules_ok = cfg("rules-ok.txt", "# rules\n")
    settings = [
        ("ring buffer not a power of two", ["--ring-buffer-kib", "100"], "ringBufferKiB"),
        ("replacement of 65 bytes", ["--redact-replacement", "R" * 65], "flowLogsRedactReplacement"),
        ("replacement with a control byte", ["--redact-replacement", "a\x01b"],
         "flowLogsRedactReplacement"),
        ("missing rules file", ["--redact-rules", os.path.join(d, "nonexistent")],
         "flowLogsRedactRulesFile"),
        ("bad rule", ["--redact-rules", rules_bad], "line 2"),
        ("rules with redaction off", ["--no-redact", "--redact-rules", rules_ok],
         "flowLogsRedactRulesFile"),
        ("output directory is a file", ["--output-dir", "/etc/hostname"], "/etc/hostname"),
    ]
    for name, args, word in settings:
        for sub in (["run", "--print-config"], ["check"], ["reload"]):
            full = sub + base + args if sub[0] != "check" or "--output-dir" in args else sub + args
            r = cmd(agent, full)
            check(f"{name}: `{' '.join(sub)}` exits 2 with one clean line naming it",
                  r.returncode == 2 and clean_line(r.stderr) and word in r.stderr and
                  r.stdout == "", f"rc={r.returncode} {r.stderr!r} {r.stdout[:80]!r}")


def check_sources(check, agent, d, cfg, base):
    """An error names where the value came from, and never echoes a file's
    content or a control byte."""
    f = cfg("repl.yaml", "# x\nflowLogsRedactReplacement: \"\\x01\\e[31mX\"\n")
    r = cmd(agent, ["run", "--print-config", "--config", f] + base)
    check("bad value in the file: blamed on file:line, not the flag, no control byte",
          r.returncode == 2 and f"{f}:2" in r.stderr and "--redact-replacement" not in r.stderr
          and clean_line(r.stderr), repr(r.stderr))
    r = cmd(agent, ["run", "--print-config"] + base,
            {"PROCFLOW_FLOW_LOGS_REDACT_REPLACEMENT": "x" * 70})
    check("bad value in the environment: blamed on the variable",
          r.returncode == 2 and "PROCFLOW_FLOW_LOGS_REDACT_REPLACEMENT" in r.stderr and
          clean_line(r.stderr), repr(r.stderr))
    r = cmd(agent, ["run", "--print-config", "--config", f, "--ring-buffer-kib", "100"] + base)
    check("a bad flag is blamed on the flag", r.returncode == 2 and "--ring-buffer-kib" in r.stderr,
          repr(r.stderr))
    shadow = cfg("shadow", "root:$y$j9T$s3cr3tHashValue$x:19000:0:99999:7:::\n"
                           "daemon:*:19000:0:99999:7:::\n")
    r = cmd(agent, ["run", "--print-config", "--config", shadow] + base)
    check("a file that is no config: exit 2 naming it, none of its content echoed",
          r.returncode == 2 and shadow in r.stderr and "s3cr3t" not in r.stderr and
          "root" not in r.stderr and clean_line(r.stderr), repr(r.stderr))
    r = cmd(agent, ["run", "--print-config", "--flush-interval", "\x1b[2J"] + base)
    check("a control byte in a flag's value is not echoed raw",
          r.returncode == 2 and clean_line(r.stderr) and "--flush-interval" in r.stderr,
          repr(r.stderr))


def check_env_names(check, agent, base):
    r = cmd(agent, ["run", "--print-config"] + base, {"PROCFLOW_RING_BUFFER_KIB": "64"})
    check("PROCFLOW_RING_BUFFER_KIB sets ringBufferKiB",
          r.returncode == 0 and any(l.startswith("ringBufferKiB:") and " 64 " in l and
                                    "PROCFLOW_RING_BUFFER_KIB" in l for l in r.stdout.splitlines()),
          repr(r.stdout[-600:]) + r.stderr)
    r = cmd(agent, ["run", "--print-config"] + base, {"PROCFLOW_FLOW_LOGS_FLUSH_INTERVL": "5s"})
    check("an unknown PROCFLOW_ variable: a warning with the closest name, still exit 0",
          r.returncode == 0 and "PROCFLOW_FLOW_LOGS_FLUSH_INTERVL" in r.stderr and
          "PROCFLOW_FLOW_LOGS_FLUSH_INTERVAL" in r.stderr.replace("PROCFLOW_FLOW_LOGS_FLUSH_INTERVL", ""),
          repr(r.stderr))
    r = cmd(agent, ["run", "--print-config"] + base, {"PROCFLOW_OUTPUT_DIR": "/tmp/x"})
    check("PROCFLOW_OUTPUT_DIR: the warning names the variable of --output-dir",
          r.returncode == 0 and "PROCFLOW_FLOW_LOGS_FILE_DIRECTORY" in r.stderr, repr(r.stderr))


def check_check_honours(check, agent, base):
    """`check` answers for the configuration it is given."""
    r = cmd(agent, ["check", "--hook-tier", "fentry"], timeout=120)
    fentry_ok = any(l.strip().startswith("fentry") and "usable" in l and "not usable" not in l
                    for l in r.stdout.splitlines())
    if fentry_ok:
        check("check --hook-tier fentry on a host with fentry: exit 0", r.returncode == 0,
              r.stdout[-300:])
    else:
        check("check --hook-tier fentry where fentry cannot load: exit 1, says so",
              r.returncode == 1 and "fentry" in r.stdout.splitlines()[-1] and
              "cannot" in r.stdout.splitlines()[-1], r.stdout[-300:])
    r = cmd(agent, ["check", "--output-dir", "/etc/hostname"])
    check("check --output-dir /etc/hostname: exit 2", r.returncode == 2, repr(r.stderr))


def body(res, args):
    check = res.check
    with workdir(args, "pf-config-") as d:
        def cfg(name, text):
            p = os.path.join(d, name)
            with open(p, "w") as f:
                f.write(text)
            return p

        base = ["--output-dir", os.path.join(d, "out"), "--runtime-dir", os.path.join(d, "run")]
        bad = [
            ("unknown key", cfg("unknown.yaml", "flowLogsFlushInterval: 5s\nflowLogsFlushIntervl: 5s\n"),
             "flowLogsFlushIntervl", ":2:"),
            ("wrong type (list)", cfg("list.yaml", "flowLogsFileMaxFiles: [1, 2]\n"),
             "flowLogsFileMaxFiles", ":1:"),
            ("wrong type (bool)", cfg("bool.yaml", "# c\nflowLogsCollectProcessPath: maybe\n"),
             "flowLogsCollectProcessPath", ":2:"),
            ("wrong type (number)", cfg("num.yaml", "flowLogsFileMaxFileSizeMB: big\n"),
             "flowLogsFileMaxFileSizeMB", ":1:"),
            ("out of range", cfg("range.yaml", "flowLogsFileAggregationKindForAllowed: 4\n"),
             "flowLogsFileAggregationKindForAllowed", ":1:"),
            ("out of range (interval)", cfg("iv.yaml", "flowLogsFlushInterval: 0s\n"),
             "flowLogsFlushInterval", ":1:"),
            ("no value", cfg("empty.yaml", "flowLogsFileDirectory:\n"), "flowLogsFileDirectory", ":1:"),
            ("set twice", cfg("twice.yaml", "flowLogsFileMaxFiles: 1\nflowLogsFileMaxFiles: 2\n"),
             "flowLogsFileMaxFiles", ":2:"),
            ("malformed YAML", cfg("malformed.yaml",
                                   "flowLogsFileMaxFiles: 3\nflowLogsFlushInterval: \"5s\n"),
             "flowLogsFlushInterval", ":2:"),
            ("not a mapping", cfg("scalar.yaml", "just a string\n"), None, ":1:"),
        ]
        for name, path, key, where in bad:
            r = run(args.agent, ["--config", path, "--print-config"] + base)
            lines = [l for l in r.stderr.splitlines() if l]
            check(f"{name}: exit 2", r.returncode == 2, f"rc={r.returncode} {r.stderr!r}")
            check(f"{name}: one message naming file:line and key",
                  len(lines) == 1 and path + where in lines[0] and (key is None or key in lines[0]) and where in lines[0], repr(r.stderr))
            check(f"{name}: nothing printed on stdout", r.stdout == "", repr(r.stdout))

        # Unreadable file: a missing one, and one without read permission
        # (root reads anything, so a directory stands in for it).
        for name, path in (("missing file", os.path.join(d, "nope.yaml")), ("a directory", d)):
            r = run(args.agent, ["--config", path] + base)
            check(f"unreadable ({name}): exit 2 naming the file",
                  r.returncode == 2 and path in r.stderr and "hook tier" not in r.stderr,
                  f"rc={r.returncode} {r.stderr!r}")

        # Bad environment value and bad flag value name the variable / flag.
        r = run(args.agent, ["--print-config"] + base, {"PROCFLOW_FLOW_LOGS_FILE_MAX_FILES": "-1"})
        check("bad environment value: exit 2 naming variable and key",
              r.returncode == 2 and "PROCFLOW_FLOW_LOGS_FILE_MAX_FILES" in r.stderr
              and "flowLogsFileMaxFiles" in r.stderr, repr(r.stderr))
        r = run(args.agent, ["--print-config", "--flush-interval", "0"] + base)
        check("bad flag value: exit 2 naming flag and key",
              r.returncode == 2 and "--flush-interval" in r.stderr and "flowLogsFlushInterval" in r.stderr,
              repr(r.stderr))

        # A bad config stops a real run before anything reaches the kernel.
        r = run(args.agent, ["--config", bad[0][1]] + base)
        check("bad config in a real run: exit 2 before loading",
              r.returncode == 2 and "hook tier" not in r.stderr and "ready" not in r.stderr,
              repr(r.stderr))

        # Precedence: flag > env > file > default, each shown with its source.
        good = cfg("good.yaml", "# procflow\nflowLogsFileMaxFiles: 3\n"
                                "flowLogsFileMaxFileSizeMB: 7\n"
                                "flowLogsFlushInterval: 30s\n"
                                "flowLogsCollectProcessPath: false\n")
        r = run(args.agent, ["--config", good, "--print-config", "-i", "4"] + base,
                {"PROCFLOW_FLOW_LOGS_FILE_MAX_FILES": "9", "PROCFLOW_FLOW_LOGS_FLUSH_INTERVAL": "1m"})
        check("print-config exits 0", r.returncode == 0, repr(r.stderr))
        vals = {}
        for l in r.stdout.splitlines():
            if l.startswith("#") or ":" not in l:
                continue
            k, rest = l.split(":", 1)
            v, src = rest.split("#", 1)
            vals[k.strip()] = (v.strip(), src.strip())
        expect = {
            "flowLogsFlushInterval": ("4s", "flag --flush-interval"),  # flag beats env and file
            "flowLogsFileMaxFiles": ("9", "environment PROCFLOW_FLOW_LOGS_FILE_MAX_FILES"),  # env beats file
            "flowLogsFileMaxFileSizeMB": ("7", f"file {good}:3"),
            "flowLogsCollectProcessPath": ("false", f"file {good}:5"),
            "flowLogsFileAggregationKindForAllowed": ("1", "default"),
            "flowLogsFileDirectory": (os.path.join(d, "out"), "flag --output-dir"),
        }
        for k, want in expect.items():
            check(f"precedence: {k} = {want[0]} from {want[1]}", vals.get(k) == want, repr(vals.get(k)))
        # The printed configuration is itself a valid config file.
        again = cfg("again.yaml", "\n".join(l for l in r.stdout.splitlines()) + "\n")
        r2 = run(args.agent, ["--config", again, "--print-config"])
        check("print-config output reads back as a config file", r2.returncode == 0, repr(r2.stderr))
        # A URL's password is masked in the output; read back, the mask is
        # refused (exit 2, naming the key), never sent as the password.
        r = run(args.agent, ["--print-config", "--clickhouse-url",
                          "http://ingest:Pa55word@127.0.0.1:8123/"] + base)
        check("print-config masks the URL's password",
              r.returncode == 0 and "Pa55word" not in r.stdout
              and "http://ingest:***@127.0.0.1:8123/" in r.stdout, repr(r.stdout[-400:]))
        masked = cfg("masked.yaml", r.stdout)
        r2 = run(args.agent, ["--config", masked, "--print-config"])
        check("the masked password read back is refused, exit 2",
              r2.returncode == 2 and "clickhouseUrl" in r2.stderr
              and "mask --print-config writes" in r2.stderr, repr(r2.stderr))
        # PROCFLOW_CONFIG names the file when --config is not given.
        r = run(args.agent, ["--print-config"] + base, {"PROCFLOW_CONFIG": good})
        check("PROCFLOW_CONFIG names the file", r.returncode == 0 and f"file {good}:2" in r.stdout,
              repr(r.stdout[:200]))
        # `procflow reload`: no PID file, and a stale one (its agent is gone:
        # nobody holds the lock, whatever PID it names, even a live one).
        rd = os.path.join(d, "rt")
        r = subprocess.run([args.agent, "reload", "--runtime-dir", rd], capture_output=True,
                           text=True)
        check("reload without a PID file: exit 1, says so",
              r.returncode == 1 and "procflow.pid" in r.stderr, repr(r.stderr))
        os.makedirs(rd)
        with open(os.path.join(rd, "procflow.pid"), "w") as f:
            f.write(f"{os.getpid()}\n")
        r = subprocess.run([args.agent, "reload", "--runtime-dir", rd], capture_output=True,
                           text=True)
        check("reload with a stale PID file: exit 1, says stale, signals nobody",
              r.returncode == 1 and "stale" in r.stderr, repr(r.stderr))
        sample = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy",
                              "procflow.yaml")
        r = run(args.agent, ["--config", sample, "--print-config"] + base)
        check("the sample config make install puts in /etc/procflow is valid",
              r.returncode == 0 and r.stderr == "", repr(r.stderr))
        check_one_validation(check, args.agent, d, cfg, base)
        check_sources(check, args.agent, d, cfg, base)
        check_env_names(check, args.agent, base)
        check_check_honours(check, args.agent, base)


if __name__ == "__main__":
    # No kernel hooks: these runs stop before the loader, so root is not needed.
    sys.exit(run_main(body, __doc__.splitlines()[0], root=False))
