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
    """Live processes called `comm` (zombies are already dead)."""
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/comm" % p) as f:
                    if f.read().strip() == comm and state(int(p)) != "Z":
                        out.append(int(p))
            except OSError:
                pass
    return out


class Unanswered(Exception):
    pass


class Server:
    def __init__(self, tmp, params, options, layers=None):
        self.sock = os.path.join(tmp, "sock")
        args = [NBDCAGE, "-f", "-U", self.sock] + list(options) + [HOSTILE] + params
        env = dict(os.environ)
        env[SECRET] = "hunter2"
        env.update(layers or {})
        self.log = open(os.path.join(tmp, "log"), "w+", errors="replace")
        self.proc = subprocess.Popen(args, env=env, stderr=self.log, stdout=self.log)
        deadline = time.time() + 20
        # An attack during start-up may end it: frontend_ok() says so.
        while not os.path.exists(self.sock) and self.proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)

    def logtext(self):
        self.log.seek(0)
        return self.log.read()

    def read(self, offset, count, export="", timeout=15):
        """A read with a deadline: a stopped or hung server is an error."""
        h = nbd.NBD()
        h.set_export_name(export)
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
        # SIGKILL: what nbdcage started must go with it even then (the
        # kernel's parent-death signal, the host's PID namespace).
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.log.closed:
            self.text = self.logtext()
            self.log.close()


def run_attack(tmp, params, options, layers=None):
    """Starts the server and reads the report from the attacked export.
    Returns (report line, problems, server): the server is still running."""
    srv = Server(tmp, params, options, layers)
    problems = []
    try:
        line = srv.read(0, 512, export="attack", timeout=6).split(b"\n")[0].decode(errors="replace")
    except Unanswered as e:
        line = "no answer"
        problems.append("the attacked client got %s" % e)
    except nbd.Error as e:
        line = "error: %s" % e  # an answer: the boundary held
    time.sleep(0.1)  # a signal's effect, if any, shows by now
    return line, problems, srv


def frontend_ok(srv):
    """The frontend is alive, not stopped, and serves a new client on
    another export correctly (allowing for a host being replaced)."""
    if srv.proc.poll() is not None:
        return "the frontend died (status %s)" % srv.proc.returncode
    if state(srv.proc.pid) in "Tt":
        return "the frontend is stopped"
    for attempt in range(3):
        try:
            data = srv.read(4096, 4096, timeout=5)
            return None if data == bytearray(4096) else "a new client read wrong bytes"
        except (nbd.Error, Unanswered) as e:
            problem = "a new client got an error: %s" % e
            time.sleep(0.5)
    return problem


def no_effect(tmp, srv):
    return None


def attacked_export_bounded(tmp, srv):
    """During the attack, 20 more reads of the attacked export: each is
    answered (data, or an error once the deadline gives up) in bounded
    time, generous beside the 2 s deadline."""
    for i in range(20):
        try:
            srv.read(8192, 512, export="attack", timeout=10)
        except Unanswered as e:
            return "a read during the attack got %s" % e
        except nbd.Error:
            pass
    return None


def served_promptly(tmp, srv):
    """Another client is served at once, well inside the deadline: a plugin
    call that hangs outside the data path (close, list_exports) holds up
    its own caller only, not the host's other clients' opens."""
    try:
        data = srv.read(4096, 4096, timeout=2)
    except (nbd.Error, Unanswered) as e:
        return "another client was not served at once: %s" % e
    return None if data == bytearray(4096) else "another client read wrong bytes"


def close_hang_bounded(tmp, srv):
    """The attacked client has left; its plugin close hangs.  Others are
    served meanwhile, and the close's deadline gives the host up."""
    problem = served_promptly(tmp, srv)
    if problem:
        return problem
    deadline = time.time() + 15
    while "close did not complete" not in srv.logtext():
        if time.time() > deadline:
            return "the hung close was never given up on"
        time.sleep(0.1)
    return None


def stopped_host_found(tmp, srv):
    """The host stopped itself while no client called into it: the liveness
    check finds it and has it replaced, so the next client is served at
    once instead of waiting for its deadline."""
    deadline = time.time() + 15
    while "did not answer a liveness check" not in srv.logtext():
        if time.time() > deadline:
            return "the stopped host was not found"
        time.sleep(0.1)
    return served_promptly(tmp, srv)


def list_hang_bounded(tmp, srv):
    """A client lists the exports and the plugin's list_exports hangs:
    another client is served meanwhile."""
    lister = subprocess.Popen(["nbdinfo", "--list", "nbd+unix:///?socket=" + srv.sock],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)  # its list_exports is under way
        return served_promptly(tmp, srv)
    finally:
        lister.kill()
        lister.wait()


def file_untouched(path):
    def check(tmp, srv):
        return "the file was written" if os.path.exists(path(tmp)) else None
    return check


def no_orphan(tmp, srv):
    srv.stop()
    time.sleep(0.5)
    left = procs_named("hostile-orphan")
    for p in left:
        os.kill(p, signal.SIGKILL)
    return "an orphan outlived nbdcage: %s" % left if left else None


def outside_file(ctx, name, mode):
    """A file of root's under /var (not /tmp or /var/tmp, which the host sees as its own), made
    afresh for each run: what an attack on the machine's files would hit."""
    path = os.path.join(ctx["outside"], name)
    with open(path, "w") as f:
        f.write("keep me\n")
    os.chmod(path, mode)
    return path


def file_kept(ctx, name, mode):
    def check(tmp, srv):
        st = os.stat(os.path.join(ctx["outside"], name))
        if st.st_mode & 0o7777 != mode:
            return "the file's mode became %o" % (st.st_mode & 0o7777)
        return "the file was truncated" if st.st_size == 0 else None
    return check


def listener(family, addr):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((addr, 0))
    s.listen(8)
    return s


def log_bounded(tmp, srv):
    """Once the flood is over, nbdcage's log holds a bounded part of it."""
    time.sleep(3)
    size = os.path.getsize(os.path.join(tmp, "log"))
    return "the log grew to %.1f MB" % (size / 1e6) if size > 2e6 else None


class Case:
    """One attack.  `params(tmp, ctx)`: the plugin's parameters; `effect`:
    a check from outside; `options`: nbdcage's options for the contained
    run; `baseline`: the options for the run that must show the attack
    working (None: the defence cannot be switched off; it was shown by
    reverting it); `effect_only`: the plugin's own report is no verdict
    (the attack is allowed to start, its effect is not)."""

    def __init__(self, name, params, effect=no_effect, options=(), baseline=("--no-sandbox",), effect_only=False,
                 note="n/a: a frontend defence with no switch; shown failing against the code before it",
                 layered=None, as_root=False, baseline_env=None, unavailable=None, prompt=False):
        self.name, self.params, self.effect = name, params, effect
        self.options, self.baseline, self.effect_only = list(options), baseline, effect_only
        self.note = note
        # Run again in --layers mode (the sandbox's own cases).
        self.layered = baseline == ("--no-sandbox",) if layered is None else layered
        self.as_root = as_root  # the defence is the identity root's host takes
        self.baseline_env = baseline_env  # nbdcage's environment for the baseline run
        self.unavailable = unavailable  # the host's words for "this build cannot apply it": a skip
        self.prompt = prompt  # check the effect at once, before frontend_ok


DEADLINE = ["--request-timeout=2"]
NO_DEADLINE = ["--request-timeout=0"]

CASES = [
    Case("kill-frontend", lambda t, c: ["attack=kill-frontend"]),
    Case("kill-frontend at config", lambda t, c: ["when=config", "attack=kill-frontend"]),
    Case("kill-frontend at get_ready", lambda t, c: ["when=ready", "attack=kill-frontend"]),
    Case("kill-frontend at open", lambda t, c: ["when=open", "attack=kill-frontend"]),
    Case("stop-frontend", lambda t, c: ["attack=stop-frontend"]),
    Case("kill(-1)", lambda t, c: ["attack=kill-all"]),
    Case("ptrace the frontend", lambda t, c: ["attack=ptrace-frontend"]),
    Case("/proc/FRONTEND/mem", lambda t, c: ["attack=frontend-mem"]),
    Case("/proc/FRONTEND/oom_score_adj", lambda t, c: ["attack=frontend-oom"]),
    Case("/proc/FRONTEND/fd", lambda t, c: ["attack=frontend-fd"]),
    Case("read /etc/shadow", lambda t, c: ["attack=read-file", "target=/etc/shadow"]),
    Case("read /etc/shadow at config", lambda t, c: ["when=config", "target=/etc/shadow", "attack=read-file"]),
    Case("write outside granted paths", lambda t, c: ["attack=write-file", "target=" + os.path.join(t, "pwned")],
         file_untouched(lambda t: os.path.join(t, "pwned"))),
    Case("write /proc/sys/kernel/core_pattern",
         lambda t, c: ["attack=open-write", "target=/proc/sys/kernel/core_pattern"]),
    Case("read /dev/kmsg", lambda t, c: ["attack=read-file", "target=/dev/kmsg"]),
    Case("connect to 127.0.0.1", lambda t, c: ["attack=connect-inet", "target=%d" % c["v4"].getsockname()[1]]),
    Case("connect to ::1", lambda t, c: ["attack=connect-inet6", "target=%d" % c["v6"].getsockname()[1]]),
    Case("bind on 127.0.0.1", lambda t, c: ["attack=bind-inet", "target=0"]),
    Case("bind on ::1", lambda t, c: ["attack=bind-inet6", "target=0"]),
    Case("connect to the frontend's Unix socket",
         lambda t, c: ["attack=connect-unix", "target=" + os.path.join(t, "sock")]),
    Case("exec from a C plugin", lambda t, c: ["attack=exec"]),
    Case("mount", lambda t, c: ["attack=mount", "target=" + t]),
    Case("create a user namespace (unshare)", lambda t, c: ["attack=unshare"]),
    Case("create a user namespace (clone)", lambda t, c: ["attack=clone-newuser"]),
    # Unsandboxed, a kernel without module support answers ENOSYS (this
    # one); one with it reads the file and refuses it (ENOEXEC).  Sandboxed,
    # seccomp answers EPERM first.
    Case("load a kernel module", lambda t, c: ["attack=module"]),
    Case("SCHED_FIFO", lambda t, c: ["attack=sched-fifo"]),
    Case("the frontend's environment", lambda t, c: ["attack=env", "target=" + SECRET]),
    # Landlock does not govern modes, nor (before ABI 3) truncate(2): only
    # an identity that owns nothing of the machine's stops these.
    # The baseline keeps uid 0 (without capabilities, as before the host
    # took an identity of its own): that alone lets these through.
    Case("chmod a file of root's", lambda t, c: ["attack=chmod", "target=" + outside_file(c, "chmod", 0o600)],
         lambda t, s: file_kept(CTX, "chmod", 0o600)(t, s), baseline=["--sandbox-user=root"], layered=True,
         as_root=True),
    Case("truncate a file of root's", lambda t, c: ["attack=truncate", "target=" + outside_file(c, "trunc", 0o644)],
         lambda t, s: file_kept(CTX, "trunc", 0o644)(t, s)),
    # The syscall allow-list: kernel interfaces a C plugin has no need of,
    # and that nothing refuses by name, answer ENOSYS (the baseline refuses
    # only the calls named).  io_uring is refused by name, for every plugin.
    Case("unlisted syscalls from a C plugin", lambda t, c: ["attack=unlisted"],
         baseline=[], baseline_env={"NBDCAGE_SANDBOX_WITHOUT": "allow-list"}, layered=True),
    Case("io_uring", lambda t, c: ["attack=io-uring"]),
    # Resources: a process limit that holds as root too (uid 0 is exempt
    # from it), and an address-space limit.
    Case("fork bomb", lambda t, c: ["attack=fork-bomb", "target=300"], options=["--sandbox-processes=100"],
         baseline=["--sandbox-processes=100", "--sandbox-user=root"], layered=True, as_root=True),
    Case("allocate beyond the memory limit", lambda t, c: ["attack=memory", "target=768"],
         options=["--sandbox-memory=256M"], unavailable="is not applied in an AddressSanitizer build"),
    Case("orphans left as zombies", lambda t, c: ["attack=zombies", "target=50"], baseline=None,
         note="n/a: the namespace's reaper has no switch; before it (the host its namespace's init) "
              "50 of 50 orphans stayed zombies"),
    Case("a setsid grandchild outlives nbdcage", lambda t, c: ["attack=orphan"], no_orphan, effect_only=True),
    # The frontend's own defences: deadlines, and a host that breaks the
    # protocol is killed and replaced.
    Case("hang in pread", lambda t, c: ["attack=hang"], options=DEADLINE, baseline=NO_DEADLINE),
    Case("hang in open", lambda t, c: ["when=open", "attack=hang"], options=DEADLINE, baseline=NO_DEADLINE),
    # Slow enough a deadline that "at once" is unmistakable.
    Case("hang in close", lambda t, c: ["when=close", "attack=hang"], close_hang_bounded,
         options=["--request-timeout=6"], baseline=None, effect_only=True, prompt=True,
         note="n/a: no switch; before (close on the host's RPC thread, waited for by the connection), "
              "the next client's open waited for the deadline"),
    Case("hang in list_exports", lambda t, c: ["when=list", "attack=hang"], list_hang_bounded,
         options=["--request-timeout=6"], baseline=None, effect_only=True, prompt=True,
         note="n/a: no switch; before (list_exports on the host's RPC thread), the next client's open "
              "waited for the deadline"),
    Case("the host stops itself", lambda t, c: ["attack=stop-self"], options=DEADLINE,
         baseline=["--no-sandbox"] + NO_DEADLINE, effect_only=True),
    Case("the host stops itself while idle", lambda t, c: ["when=ready", "attack=stop-later"], stopped_host_found,
         options=["--request-timeout=30"], baseline=None, effect_only=True, prompt=True,
         note="n/a: no switch; before the liveness check, the next client waited for its open's deadline"),
    Case("the host shuts its control socket", lambda t, c: ["attack=close-rpc"], options=DEADLINE, baseline=None,
         effect_only=True),
    Case("doorbell abuse", lambda t, c: ["attack=bells"], attacked_export_bounded, options=DEADLINE,
         baseline=None, effect_only=True),
    Case("spin 8 threads", lambda t, c: ["attack=spin"], options=DEADLINE, baseline=None, effect_only=True,
         note="n/a: shows only that the frontend and other clients go on (nothing to switch off)"),
    Case("stderr flood", lambda t, c: ["attack=flood-stderr"], log_bounded, options=DEADLINE,
         baseline=DEADLINE + ["-v"], effect_only=True),
    Case("ring corruption", lambda t, c: ["attack=corrupt-rings"], attacked_export_bounded, options=DEADLINE,
         baseline=None, effect_only=True, note="n/a: rings have been validated since the first version"),
]


# Which layer holds where: the sandbox cases again, as on kernels that lack
# layers (nbdcage's testing switches, nbdcage(1) SANDBOX).  A case listed
# as a hole needs the layer named; every other case must still hold.
SIGNALS = "a PID namespace, or Landlock ABI 6 signal scoping, or (as root) the host's own uid"


def nobody_reaches(path):
    """Can uid nobody walk to `path` and read it, as the files are (with
    no mount namespace, nothing can be remounted for it)?"""
    path = os.path.abspath(path)
    st = os.stat(path)
    if not st.st_mode & 0o004:
        return False
    d = os.path.dirname(path)
    while True:
        if not os.stat(d).st_mode & 0o001:
            return False
        if d == "/":
            return True
        d = os.path.dirname(d)


# As root, the host drops to uid nobody.  Without a mount namespace it can
# do so only if it reaches the plugin as the files are; otherwise it stays
# uid 0 (the log says why) and what only that identity stops gets through.
IDENTITY_WITHOUT_MOUNT_NS = os.geteuid() == 0 and nobody_reaches(HOSTILE)
SIGNAL_HOLES = {
    # Every host of every nbdcage shares the identity: the others are in reach.
    "kill(-1)": "a PID namespace, or Landlock ABI 6 signal scoping (processes of the host's own uid, such as "
                "other plugin hosts, are in reach)"}
if not IDENTITY_WITHOUT_MOUNT_NS:
    SIGNAL_HOLES.update({"kill-frontend": SIGNALS, "kill-frontend at config": SIGNALS,
                         "kill-frontend at get_ready": SIGNALS, "kill-frontend at open": SIGNALS,
                         "stop-frontend": SIGNALS, "kill(-1)": SIGNALS})
IDENTITY = "a mount namespace (idmapped mounts), since uid nobody cannot reach the plugin's file as it is"
IDENTITY_HOLES = {} if IDENTITY_WITHOUT_MOUNT_NS or os.geteuid() != 0 else {
    "chmod a file of root's": IDENTITY, "fork bomb": IDENTITY,
}
IDENTITY_ABI2_HOLES = dict(IDENTITY_HOLES)
if IDENTITY_HOLES:
    IDENTITY_ABI2_HOLES["truncate a file of root's"] = IDENTITY + ", and Landlock ABI 3 (truncate)"
LAYER_CONFIGS = [
    ("Landlock ABI 2 (Debian 12's own kernel)", {"NBDCAGE_LANDLOCK_ABI_MAX": "2"}, {}),
    ("no namespaces (a kernel or container that refuses them)", {"NBDCAGE_SANDBOX_WITHOUT": "namespaces"}, dict({
        "connect to the frontend's Unix socket": "a mount namespace, or Landlock ABI 9 (path Unix sockets)",
        "a setsid grandchild outlives nbdcage": "a PID namespace",
    }, **IDENTITY_HOLES)),
    ("no namespaces and Landlock ABI 2", {"NBDCAGE_SANDBOX_WITHOUT": "namespaces", "NBDCAGE_LANDLOCK_ABI_MAX": "2"},
     dict({
         "connect to the frontend's Unix socket": "a mount namespace, or Landlock ABI 9 (path Unix sockets)",
         "a setsid grandchild outlives nbdcage": "a PID namespace",
     }, **SIGNAL_HOLES, **IDENTITY_ABI2_HOLES)),
]


class Unavailable(Exception):
    """The build cannot apply the case's defence (the host said so)."""


def attempt(case, ctx, options, layers=None):
    with tempfile.TemporaryDirectory(prefix="nbdcage-hostile.") as tmp:
        line, problems, srv = run_attack(tmp, case.params(tmp, ctx), options, layers)
        try:
            # An effect that is a matter of time comes before frontend_ok,
            # whose patient retries would outwait it.
            effect, alive = (lambda: case.effect(tmp, srv)), (lambda: frontend_ok(srv))
            checks = (effect, alive) if case.prompt else (alive, effect)
            problems += [p for p in (check() for check in checks) if p]
        finally:
            srv.stop()
    if case.unavailable and case.unavailable in srv.text:
        raise Unavailable(case.unavailable)
    if problems:
        problems.append("nbdcage's log ends: " + " / ".join(srv.text.splitlines()[-6:]))
    return line, problems


CTX = {}


def main():
    ctx = CTX
    ctx["v4"] = listener(socket.AF_INET, "127.0.0.1")
    # Not under /tmp or /var/tmp, which the host sees as its own (empty) ones.
    outside = tempfile.TemporaryDirectory(prefix="nbdcage-hostile-outside.", dir="/var")
    ctx["outside"] = outside.name
    try:
        ctx["v6"] = listener(socket.AF_INET6, "::1")
    except OSError:
        ctx["v6"] = None
    layers_mode = "--layers" in sys.argv[1:]
    only = [a for a in sys.argv[1:] if a != "--layers"]
    failed = []
    if layers_mode:
        for label, env, holes in LAYER_CONFIGS:
            print("== %s" % label)
            for case in CASES:
                if not case.layered or (only and case.name not in only) or (case.as_root and os.geteuid() != 0):
                    continue  # the frontend's own defences do not depend on the kernel
                if "::1" in case.name and ctx["v6"] is None:
                    continue
                try:
                    line, problems = attempt(case, ctx, case.options, env)
                except Unavailable as e:
                    print("  %-40s skipped: %s" % (case.name, e))
                    continue
                held = (line.startswith("blocked") or line.startswith("error") or case.effect_only) and not problems
                if case.name in holes:
                    verdict = "HOLE (needs %s)" % holes[case.name] if not held else "held (listed as a hole)"
                else:
                    verdict = "held" if held else "FAIL: " + line + "; " + "; ".join(problems)
                    if not held:
                        failed.append("%s [%s]" % (case.name, label))
                print("  %-40s %s" % (case.name, verdict))
        cases = []
    else:
        cases = CASES
    for case in cases:
        if only and case.name not in only:
            continue
        if "::1" in case.name and ctx["v6"] is None:
            print("SKIP %-40s no IPv6 loopback here" % case.name)
            continue
        if case.as_root and os.geteuid() != 0:
            print("SKIP %-40s not root: the host keeps the caller's uid" % case.name)
            continue
        try:
            line, problems = attempt(case, ctx, case.options)
        except Unavailable as e:
            print("SKIP %-40s this build: %s" % (case.name, e))
            continue
        contained = (line.startswith("blocked") or line.startswith("error") or case.effect_only) and not problems
        shown, bare = True, case.note
        if case.baseline is not None:
            bare_line, bare_problems = attempt(case, ctx, case.baseline, case.baseline_env)
            shown = bare_line.startswith("escaped") or bool(bare_problems)
            bare = bare_line + ("; " + "; ".join(bare_problems) if bare_problems else "")
        print("%s %-40s contained: %s%s | %s: %s" % (
            "PASS" if contained and shown else "FAIL", case.name, line,
            "; " + "; ".join(problems) if problems else "",
            " ".join(list(case.baseline or []) + ["%s=%s" % kv for kv in (case.baseline_env or {}).items()]) or "baseline",
            bare))
        if not contained:
            failed.append(case.name)
        elif not shown:
            failed.append(case.name + " (the attack does not work even without the defence: the test proves nothing)")
    for s in (ctx["v4"], ctx["v6"]):
        if s:
            s.close()
    outside.cleanup()
    if failed:
        print("FAIL: %d attacks not contained: %s" % (len(failed), ", ".join(failed)))
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
