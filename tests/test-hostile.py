#!/usr/bin/python3
"""Containment, proved by attack: a plugin written to do harm
(tests/plugins/hostile.c) tries one attack per case, from inside the real
plugin host.  For each, sandboxed: the plugin reports the kernel refused it,
the attack's effect is checked from outside, the frontend is alive and
running, and a fresh client on another connection still reads the right
bytes.  Each attack also runs with --no-sandbox, where it must work: that
shows the check can fail (attacks that would harm this machine only probe).

Layers relied on: PID, mount and network namespaces, Landlock (file
system), capabilities dropped, seccomp.  A case whose layer this machine
lacks is reported as skipped, never as passed.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procstate import running  # noqa: E402

import nbd  # noqa: E402

NBDCAGE = os.environ["NBDCAGE"]
HOSTILE = os.path.join(os.environ["NBDCAGE_BUILD"], "tests", "plugins", "hostile.so")
SECRET = "NBDCAGE_TEST_SECRET"


def state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def procs_named(comm):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/comm" % p) as f:
                    if f.read().strip() == comm:
                        out.append(int(p))
            except OSError:
                pass
    return out


class Unanswered(Exception):
    pass


class Server:
    def __init__(self, tmp, params, sandbox, extra=()):
        self.sock = os.path.join(tmp, "sock")
        args = [NBDCAGE, "-f", "-U", self.sock] + list(extra)
        if not sandbox:
            args.append("--no-sandbox")
        args += [HOSTILE] + params
        env = dict(os.environ)
        env[SECRET] = "hunter2"
        self.log = open(os.path.join(tmp, "log"), "w+")
        self.proc = subprocess.Popen(args, env=env, stderr=self.log, stdout=self.log)
        deadline = time.time() + 20
        # An attack during start-up may end it: frontend_ok() says so.
        while not os.path.exists(self.sock) and self.proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)

    def logtext(self):
        self.log.seek(0)
        return self.log.read()

    def read(self, offset, count, timeout=15):
        """A read with a deadline: a stopped or hung server is an error."""
        h = nbd.NBD()
        deadline = time.time() + timeout

        def wait(done):
            while not done():
                if time.time() > deadline:
                    raise Unanswered("no answer within %d s" % timeout)
                h.poll(100)
        h.aio_connect_unix(self.sock)
        wait(lambda: h.aio_is_ready() or h.aio_is_closed() or h.aio_is_dead())
        if not h.aio_is_ready():
            raise Unanswered("the server closed the connection during the handshake")
        buf = nbd.Buffer(count)
        cookie = h.aio_pread(buf, offset)
        wait(lambda: h.aio_command_completed(cookie))
        # No orderly NBD_CMD_DISC: it waits for the server, which an attack
        # may have stopped after it answered.
        del h  # nbd_close: drops the connection
        return buf.to_bytearray()

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.text = self.logtext()
            self.log.close()


def run_attack(tmp, params, sandbox, extra=()):
    """Returns (report line, server): the server is still running."""
    srv = Server(tmp, params, sandbox, extra)
    try:
        line = srv.read(0, 512).split(b"\n")[0].decode(errors="replace")
    except (nbd.Error, Unanswered) as e:
        line = "no answer: %s" % e
    time.sleep(0.1)  # a signal's effect, if any, shows by now
    return line, srv


def frontend_ok(srv):
    """The frontend is alive, not stopped, and serves a new client."""
    if srv.proc.poll() is not None:
        return "the frontend died (status %s)" % srv.proc.returncode
    if state(srv.proc.pid) in "Tt":
        return "the frontend is stopped"
    try:
        data = srv.read(4096, 4096)
    except (nbd.Error, Unanswered) as e:
        return "a new client got an error: %s" % e
    if data != bytearray(4096):
        return "a new client read wrong bytes"
    return None


# Each case: name -> (params(tmp, ctx), effect(tmp, srv) -> problem or None)
def no_effect(tmp, srv):
    return None


def file_untouched(path):
    def check(tmp, srv):
        return "the file was written" if os.path.exists(path(tmp)) else None
    return check


def no_orphan(tmp, srv):
    srv.stop()
    time.sleep(0.3)
    left = procs_named("hostile-orphan")
    for p in left:
        os.kill(p, signal.SIGKILL)
    return "an orphan outlived nbdcage: %s" % left if left else None


def listener(family, addr):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((addr, 0))
    s.listen(8)
    return s


CASES = [
    ("kill-frontend", lambda t, c: ["attack=kill-frontend"], no_effect),
    ("kill-frontend at config", lambda t, c: ["when=config", "attack=kill-frontend"], no_effect),
    ("kill-frontend at get_ready", lambda t, c: ["when=ready", "attack=kill-frontend"], no_effect),
    ("kill-frontend at open", lambda t, c: ["when=open", "attack=kill-frontend"], no_effect),
    ("stop-frontend", lambda t, c: ["attack=stop-frontend"], no_effect),
    ("kill(-1)", lambda t, c: ["attack=kill-all"], no_effect),
    ("ptrace the frontend", lambda t, c: ["attack=ptrace-frontend"], no_effect),
    ("/proc/FRONTEND/mem", lambda t, c: ["attack=frontend-mem"], no_effect),
    ("/proc/FRONTEND/oom_score_adj", lambda t, c: ["attack=frontend-oom"], no_effect),
    ("/proc/FRONTEND/fd", lambda t, c: ["attack=frontend-fd"], no_effect),
    ("read /etc/shadow", lambda t, c: ["attack=read-file", "target=/etc/shadow"], no_effect),
    ("read /etc/shadow at config", lambda t, c: ["when=config", "target=/etc/shadow", "attack=read-file"],
     no_effect),
    ("write outside granted paths", lambda t, c: ["attack=write-file", "target=" + os.path.join(t, "pwned")],
     file_untouched(lambda t: os.path.join(t, "pwned"))),
    ("write /proc/sys/kernel/core_pattern",
     lambda t, c: ["attack=open-write", "target=/proc/sys/kernel/core_pattern"], no_effect),
    ("read /dev/kmsg", lambda t, c: ["attack=read-file", "target=/dev/kmsg"], no_effect),
    ("connect to 127.0.0.1", lambda t, c: ["attack=connect-inet", "target=%d" % c["v4"].getsockname()[1]],
     no_effect),
    ("connect to ::1", lambda t, c: ["attack=connect-inet6", "target=%d" % c["v6"].getsockname()[1]],
     no_effect),
    ("bind on 127.0.0.1", lambda t, c: ["attack=bind-inet", "target=0"], no_effect),
    ("connect to the frontend's Unix socket",
     lambda t, c: ["attack=connect-unix", "target=" + os.path.join(t, "sock")], no_effect),
    ("exec from a C plugin", lambda t, c: ["attack=exec"], no_effect),
    ("mount", lambda t, c: ["attack=mount", "target=" + t], no_effect),
    ("SCHED_FIFO", lambda t, c: ["attack=sched-fifo"], no_effect),
    ("the frontend's environment", lambda t, c: ["attack=env", "target=" + SECRET], no_effect),
    ("a setsid grandchild outlives nbdcage", lambda t, c: ["attack=orphan"], no_orphan),
]
# Attacks judged by their effect alone: starting the process is allowed,
# its outliving the host is not.
EFFECT_ONLY = {"a setsid grandchild outlives nbdcage"}


def main():
    ctx = {"v4": listener(socket.AF_INET, "127.0.0.1")}
    try:
        ctx["v6"] = listener(socket.AF_INET6, "::1")
    except OSError:
        ctx["v6"] = None
    only = sys.argv[1:]
    failed = []
    for name, params, effect in CASES:
        if only and name not in only:
            continue
        if "::1" in name and ctx["v6"] is None:
            print("SKIP %-45s no IPv6 loopback here" % name)
            continue
        outcome = {}
        for sandbox in (True, False):
            with tempfile.TemporaryDirectory(prefix="nbdcage-hostile.") as tmp:
                line, srv = run_attack(tmp, params(tmp, ctx), sandbox)
                try:
                    problems = [p for p in (frontend_ok(srv), effect(tmp, srv)) if p]
                finally:
                    srv.stop()
                    log = srv.text
                outcome[sandbox] = (line, problems, log)
        line, problems, log = outcome[True]
        bare_line, bare_problems, _ = outcome[False]
        ok = (line.startswith("blocked") or name in EFFECT_ONLY) and not problems
        shown = bare_line.startswith("escaped") or bare_problems
        verdict = "PASS" if ok and shown else "FAIL"
        print("%s %-45s sandboxed: %s%s | unsandboxed: %s%s" % (
            verdict, name, line, "; " + "; ".join(problems) if problems else "",
            bare_line, "; " + "; ".join(bare_problems) if bare_problems else ""))
        if not ok:
            failed.append(name)
        elif not shown:
            failed.append(name + " (the attack does not work even unsandboxed: the test proves nothing)")
    for s in ctx.values():
        if s:
            s.close()
    if failed:
        print("FAIL: %d attacks not contained: %s" % (len(failed), ", ".join(failed)))
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
