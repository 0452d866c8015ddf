"""The harness of procflow's end-to-end tests (Python 3 standard library only):
command line, check bookkeeping, the agent process, a scratch directory, and
flows.log parsing. Every test file runs through run_main().

Every test file prints one line per check ("PASS name" / "FAIL name: why") and ends
with "N passed, M failed"; it exits 1 when M > 0. A check that could not run is
recorded as a failure with the reason, never skipped.
"""

import argparse
import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

# flows.log keys in the order of shared/spec/flow-log-format.md, section 1.
SPEC_KEYS = [
    "start_time", "end_time", "source_ip", "source_name", "source_name_aggr",
    "source_namespace", "nat_outgoing_ports", "source_port", "source_type",
    "source_labels", "dest_ip", "dest_name", "dest_name_aggr", "dest_namespace",
    "dest_port", "dest_type", "dest_labels", "dest_service_namespace",
    "dest_service_name", "dest_service_port", "dest_service_port_num", "dest_domains",
    "proto", "action", "reporter", "policies", "bytes_in", "bytes_out", "num_flows",
    "num_flows_started", "num_flows_completed", "packets_in", "packets_out",
    "transit_bytes_in", "transit_bytes_out", "transit_packets_in",
    "transit_packets_out", "http_requests_allowed_in", "http_requests_denied_in",
    "process_name", "num_process_names", "process_id", "num_process_ids",
    "process_args", "num_process_args", "original_source_ips",
    "num_original_source_ips", "tcp_mean_send_congestion_window",
    "tcp_min_send_congestion_window", "tcp_mean_smooth_rtt", "tcp_max_smooth_rtt",
    "tcp_mean_min_rtt", "tcp_max_min_rtt", "tcp_mean_mss", "tcp_min_mss",
    "tcp_total_retransmissions", "tcp_lost_packets", "tcp_unrecovered_to", "host",
]

# JSON types per key, from the spec's field table (section 2). "int" excludes bool.
_INT, _STR, _NULL, _LIST, _OBJ = "int", "str", "null", "list", "obj"
SPEC_TYPES = {k: (_INT,) for k in SPEC_KEYS}
SPEC_TYPES.update({
    "source_ip": (_STR, _NULL), "dest_ip": (_STR, _NULL),
    "source_port": (_INT, _NULL), "dest_port": (_INT, _NULL),
    "source_name": (_STR,), "source_name_aggr": (_STR,), "source_namespace": (_STR,),
    "dest_name": (_STR,), "dest_name_aggr": (_STR,), "dest_namespace": (_STR,),
    "nat_outgoing_ports": (_LIST, _NULL), "source_type": (_STR,), "dest_type": (_STR,),
    "source_labels": (_OBJ, _NULL), "dest_labels": (_OBJ, _NULL),
    "dest_service_namespace": (_STR,), "dest_service_name": (_STR,),
    "dest_service_port": (_STR,), "dest_service_port_num": (_INT, _NULL),
    "dest_domains": (_LIST, _NULL), "proto": (_STR,), "action": (_STR,),
    "reporter": (_STR,), "policies": (_OBJ, _NULL), "process_name": (_STR,),
    "process_id": (_STR,), "process_args": (_LIST,), "original_source_ips": (_LIST, _NULL),
    "host": (_STR,),
})
SPEC_ENUMS = {
    "source_type": {"wep", "hep", "ns", "net"},
    "dest_type": {"wep", "hep", "ns", "net"},
    "action": {"allow", "deny"},
    "reporter": {"src", "dst"},
}


def _json_type(v):
    if v is None:
        return _NULL
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return _INT
    if isinstance(v, str):
        return _STR
    if isinstance(v, list):
        return _LIST
    if isinstance(v, dict):
        return _OBJ
    return type(v).__name__


def parse_args(description, options=None):
    """The command line every test takes; @options(parser) adds a test's own."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--agent", required=True, help="path to the procflow binary")
    ap.add_argument("--bindir", required=True, help="directory with pf_client and pf_server")
    ap.add_argument("--keep", action="store_true", help="keep output directories")
    if options:
        options(ap)
    args = ap.parse_args()
    args.agent = os.path.abspath(args.agent)
    return args


class Results:
    """Per-check bookkeeping; see the module docstring."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            # A short detail is a figure worth seeing; a long one (a log) is for failures.
            text = detail if isinstance(detail, str) else repr(detail)
            short = detail and "\n" not in text and len(text) <= 200
            print("PASS %s%s" % (name, (": " + text) if short else ""), flush=True)
        else:
            self.failed += 1
            print("FAIL %s: %s" % (name, detail or "failed"), flush=True)
        return ok

    def not_run(self, names, reason):
        """Record checks that could not run as failures."""
        for n in names:
            self.check(n, False, "not run: " + reason)

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return 1 if self.failed else 0


# Every Agent started, so a scratch directory's end (workdir) can stop the ones
# started in it, whatever way the test left.
_started = []


class Agent:
    """One procflow process: start, wait for "procflow: ready", stop with SIGTERM.

    The agent runs in the root namespace (it must: it hooks the root cgroup and
    observes every namespace). Its stderr is drained by a thread so a chatty agent
    can never block on a full pipe; each line is kept with the time it came, so a
    test can wait for a line and tell what happened before what.
    """

    READY = "procflow: ready"

    def __init__(self, path, args, owner=None, stdout=subprocess.DEVNULL, env=None,
                 prefix=None):
        self.path = path
        self.stdout = stdout  # subprocess.PIPE or a file: the test reads (or does not read) it
        self.env = None if env is None else dict(os.environ, **env)
        self.prefix = list(prefix or [])  # a command that runs the agent (unshare ...)
        self.args = list(args)
        # The PID file in the runtime directory is a lock: one agent per
        # directory. A test's agent gets a directory of its own unless the
        # test chose one, so agents of other runs on the same machine (on
        # the default /run/procflow) cannot stop it.
        self.rundir = None
        if "run" in self.args and not {"--runtime-dir", "--config"} & set(self.args):
            self.rundir = tempfile.mkdtemp(prefix="pf-run-")
            self.args += ["--runtime-dir", self.rundir]
            atexit.register(self._remove_rundir)  # also when a test never stops it
        self.owner = owner  # a netns.TestNet (or anything with .procs) that kills it on cleanup
        self.proc = None
        self.stderr_lines = []
        self.stderr_times = []  # time.monotonic() of each line's arrival
        self._cv = threading.Condition()
        self._ready = threading.Event()
        self._done = threading.Event()

    def start(self):
        self.proc = subprocess.Popen(self.prefix + [self.path] + self.args,
                                     stdin=subprocess.DEVNULL, stdout=self.stdout,
                                     stderr=subprocess.PIPE, env=self.env)
        _started.append(self)
        if self.owner is not None:
            self.owner.procs.append(self.proc)
        threading.Thread(target=self._drain, daemon=True).start()

    def start_ready(self, res, timeout=60, name="agent ready"):
        """start() and wait_ready(), recorded as the check @name. False (the agent
        killed, or never started) when it did not get ready."""
        try:
            self.start()
        except OSError as e:
            return res.check(name, False, "cannot execute: %s" % e)
        ok, why = self.wait_ready(timeout)
        if not res.check(name, ok, why):
            self.kill()
        return ok

    def _drain(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cv:
                self.stderr_lines.append(line)
                self.stderr_times.append(time.monotonic())
                self._cv.notify_all()
            if self.READY in line:
                self._ready.set()
        with self._cv:
            self._done.set()
            self._cv.notify_all()

    def nlines(self):
        """How many stderr lines came so far: a mark for wait_line(after=...)."""
        with self._cv:
            return len(self.stderr_lines)

    def wait_line(self, text, timeout=20, after=0):
        """The arrival time (time.monotonic()) of the first stderr line from index
        @after on that contains @text; None when none came within @timeout
        seconds or the agent ended without it."""
        end = time.monotonic() + timeout
        with self._cv:
            while True:
                for i in range(after, len(self.stderr_lines)):
                    if text in self.stderr_lines[i]:
                        return self.stderr_times[i]
                left = end - time.monotonic()
                if left <= 0 or self._done.is_set():
                    return None
                self._cv.wait(left)

    def logged(self, text, after=0):
        """Whether a stderr line from index @after on contains @text (no wait)."""
        with self._cv:
            return any(text in l for l in self.stderr_lines[after:])

    def log_text(self):
        """All of stderr so far."""
        with self._cv:
            return "\n".join(self.stderr_lines)

    def wait_ready(self, timeout):
        """Return (ok, detail)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready.wait(0.05):
                return True, "ready after %.2f s" % (timeout - (deadline - time.monotonic()))
            if self.proc.poll() is not None:
                self._done.wait(2)
                return False, "agent exited with code %d before %r; stderr:\n%s" % (
                    self.proc.returncode, self.READY, self.stderr_text())
        return False, "no %r within %.0f s; stderr so far:\n%s" % (
            self.READY, timeout, self.stderr_text())

    def stop(self, timeout=20):
        """SIGTERM, wait; return (returncode or None on timeout, seconds)."""
        if self.proc.poll() is not None:
            self._remove_rundir()
            return self.proc.returncode, 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._remove_rundir()
            return None, time.monotonic() - t0
        self._done.wait(2)
        self._remove_rundir()
        return rc, time.monotonic() - t0

    def _remove_rundir(self):
        if self.rundir:
            shutil.rmtree(self.rundir, ignore_errors=True)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._remove_rundir()

    def stderr_text(self):
        """The last 40 lines of stderr, indented, for a failure's detail."""
        return "\n".join("    | " + l for l in self.stderr_lines[-40:]) or "    | (empty)"


def occupancy(agent):
    """The last "occupancy:" line of @agent's stderr (the agent runs with -v:
    one per flush) as {table name: entries}; {} when there is none."""
    for line in reversed(agent.stderr_lines):
        if "occupancy: " in line:
            return {m.group(1): int(m.group(2)) for m in
                    re.finditer(r"([a-z][a-z ]*?) (\d+)(?:/\d+)? \(", line.split("occupancy: ", 1)[1])}
    return {}


@contextlib.contextmanager
def workdir(args, prefix):
    """A scratch directory under $TMPDIR. At its end every agent started within
    is killed (if still running) and the directory removed, or kept and named
    with --keep."""
    d = tempfile.mkdtemp(prefix=prefix)
    first = len(_started)
    try:
        yield d
    finally:
        for a in _started[first:]:
            a.kill()
        if getattr(args, "keep", False):
            print("kept %s" % d, flush=True)
        else:
            shutil.rmtree(d, ignore_errors=True)


class _Pairs(list):
    """A JSON object as its (key, value) pairs, in order (keys are checked in order)."""


def _objects(v):
    """Nested objects (such as *_labels) as dicts."""
    if isinstance(v, _Pairs):
        return {k: _objects(x) for k, x in v}
    if isinstance(v, list):
        return [_objects(x) for x in v]
    return v


def load_flows(path):
    """Parse flows.log. Returns (records, problems): records are dicts with an extra
    "_line" (1-based line number); problems lists every line that is not a JSON object
    with exactly the spec's keys in the spec's order and the spec's types."""
    records, problems = [], []
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return [], ["cannot read %s: %s" % (path, e)]
    if data and not data.endswith(b"\n"):
        problems.append("file does not end with a newline (partial last line)")
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    for n, raw in enumerate(lines, 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            problems.append("line %d: not UTF-8 (%s)" % (n, e))
            continue
        try:
            pairs = json.loads(text, object_pairs_hook=_Pairs)
        except ValueError as e:
            problems.append("line %d: not JSON (%s): %s" % (n, e, text[:300]))
            continue
        if not isinstance(pairs, _Pairs):
            problems.append("line %d: not a JSON object: %s" % (n, text[:300]))
            continue
        keys = [k for k, _ in pairs]
        if keys != SPEC_KEYS:
            missing = [k for k in SPEC_KEYS if k not in keys]
            extra = [k for k in keys if k not in SPEC_KEYS]
            dup = sorted({k for k in keys if keys.count(k) > 1})
            first_bad = next((i for i, (a, b) in enumerate(zip(keys, SPEC_KEYS)) if a != b), None)
            problems.append("line %d: keys differ from the spec: missing %s, extra %s, duplicated %s, "
                            "first out of order at position %s (%s)" % (
                                n, missing, extra, dup, first_bad,
                                keys[first_bad] if first_bad is not None and first_bad < len(keys) else "-"))
            continue
        rec = {k: _objects(v) for k, v in pairs}
        for k in SPEC_KEYS:
            t = _json_type(rec[k])
            if t not in SPEC_TYPES[k]:
                problems.append("line %d: %s has JSON type %s, spec says %s" % (n, k, t, "/".join(SPEC_TYPES[k])))
            elif k in SPEC_ENUMS and rec[k] not in SPEC_ENUMS[k]:
                problems.append("line %d: %s = %r, spec allows %s" % (n, k, rec[k], sorted(SPEC_ENUMS[k])))
        if isinstance(rec["process_args"], list) and not all(isinstance(a, str) for a in rec["process_args"]):
            problems.append("line %d: process_args has a non-string element" % n)
        rec["_line"] = n
        records.append(rec)
    return records, problems


def read_lines(path):
    """Every line of @path as a JSON object, whatever its keys (a schema other
    than the spec's, say); raises on a partial or invalid line."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        raise ValueError("file ends in a partial line")
    for l in data.splitlines():
        out.append(json.loads(l))
    return out


def lines_of(path, pid, port=None, reporter="src"):
    """The records of flows.log @path (none while it does not exist) that
    @reporter wrote for process @pid, to dest_port @port when given."""
    if not os.path.exists(path):
        return []
    recs, _ = load_flows(path)
    return [r for r in recs if r["reporter"] == reporter and r["process_id"] == str(pid)
            and (port is None or r["dest_port"] == port)]


def wait_lines_of(path, pid, port=None, reporter="src", timeout=10):
    """lines_of() once it has a line, or [] after @timeout seconds."""
    got = []

    def found():
        got[:] = lines_of(path, pid, port, reporter)
        return bool(got)
    wait_for(found, timeout, step=0.2)
    return got


def compact(rec):
    """One record as compact JSON (without our "_line"), for failure dumps."""
    return "line %d: %s" % (rec.get("_line", 0),
                            json.dumps({k: v for k, v in rec.items() if k != "_line"},
                                       separators=(",", ":")))


def write_atomic(path, text):
    """@text as the whole of file @path, put in place by a rename: an agent
    reloading it never reads half a file."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def wait_for(pred, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def terminate(proc, timeout=10):
    """SIGTERM to @proc (a Popen), and SIGKILL when it has not ended within
    @timeout seconds; its exit code (negative: the signal that ended it)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def run_main(body, description, options=None, root=True):
    """Parse the command line (@options: see parse_args), run body(res, args),
    print the summary line and return the exit code. An exception in the test
    itself is a failed check, so the run still ends with "N passed, M failed".
    Agents it left running are killed. @root: the test needs root (most do)."""
    args = parse_args(description, options)
    res = Results()
    if root:
        require_root(res)
    try:
        body(res, args)
    except Exception:  # noqa: BLE001 - any crash of the test is reported as a failure
        res.check("test ran to completion", False, traceback.format_exc())
    finally:
        for a in _started:
            a.kill()
    return res.finish()


def require_root(res):
    if os.geteuid() != 0:
        res.check("running as root", False, "the e2e tests need root (namespaces, BPF)")
        sys.exit(res.finish())
