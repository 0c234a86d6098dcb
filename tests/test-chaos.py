#!/usr/bin/python3
"""Chaos: the plugin host is killed over and over (SIGKILL, SIGSEGV,
SIGABRT, and SIGSTOP followed by SIGKILL) under a verifying random
read/write load on a file export over four connections.

Must hold: nbdcage never dies; no read returns bytes that were never
written there (a write that failed may or may not have landed: both are
allowed until the block is read again); every request is answered (no
client waits longer than the request deadline allows); nbdcage's
descriptors and threads do not grow.  Prints the figures, including the
time from each kill until a client is served again.

    test-chaos.py [KILLS]      (default 150; the suite's figure)
"""
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

import nbd

NBDCAGE = os.environ["NBDCAGE"]
BLOCK = 4096
BLOCKS = 2048  # an 8 MiB disk
CLIENTS = 4
DEADLINE = 3   # --request-timeout: a stopped host is given up on after this
kills_wanted = int(sys.argv[1]) if len(sys.argv) > 1 else 150


def children(pid):
    """The plugin hosts of nbdcage `pid`: its children, or in a PID
    namespace the child of the namespace's reaper (whose signals, as an
    init's, would be dropped or passed on)."""
    out = []
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                kids = [int(p) for p in f.read().split()]
        except OSError:
            continue
        for k in kids:
            try:
                with open("/proc/%d/comm" % k) as f:
                    comm = f.read().strip()
            except OSError:
                continue
            out += children(k) if comm == "nbdcage-reaper" else [k]
    return out


def count(path):
    try:
        return len(os.listdir(path))
    except OSError:
        return -1


def pattern(block, gen):
    head = b"%08d:%08d:" % (block, gen)
    return (head * (BLOCK // len(head) + 1))[:BLOCK]


class Model:
    """What each block may hold: the set of contents it can have now."""

    def __init__(self):
        self.possible = [{bytes(BLOCK)} for _ in range(BLOCKS)]
        self.gen = [0] * BLOCKS


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = self.errors = self.wrong = self.slow = 0
        self.last_ok = time.monotonic()
        self.notes = []


def client(sock, model, blocks, stats, stop):
    rnd = random.Random(blocks[0])
    h = None
    while not stop.is_set():
        try:
            if h is None:
                h = nbd.NBD()
                h.connect_unix(sock)
            b = rnd.choice(blocks)
            start = time.monotonic()
            if rnd.random() < 0.5:
                model.gen[b] += 1
                data = pattern(b, model.gen[b])
                model.possible[b].add(data)  # in flight: it may land
                h.pwrite(data, b * BLOCK)
                model.possible[b] = {data}
            else:
                got = bytes(h.pread(BLOCK, b * BLOCK))
                if got not in model.possible[b]:
                    with stats.lock:
                        stats.wrong += 1
                        stats.notes.append("block %d read %r" % (b, got[:20]))
                model.possible[b] = {got} if got in model.possible[b] else model.possible[b]
            with stats.lock:
                stats.ok += 1
                stats.last_ok = time.monotonic()
                if time.monotonic() - start > DEADLINE + 10:
                    stats.slow += 1
        except nbd.Error:
            with stats.lock:
                stats.errors += 1
            h = None  # a new connection, served by the next host
            time.sleep(0.01)


def main():
    with tempfile.TemporaryDirectory(prefix="nbdcage-chaos.") as tmp:
        disk = os.path.join(tmp, "disk")
        with open(disk, "wb") as f:
            f.truncate(BLOCKS * BLOCK)
        sock = os.path.join(tmp, "sock")
        log = open(os.path.join(tmp, "log"), "w+", errors="replace")
        proc = subprocess.Popen([NBDCAGE, "-f", "-U", sock, "--request-timeout=%d" % DEADLINE, "file", disk],
                                stderr=log, stdout=log)
        deadline = time.time() + 30
        while not os.path.exists(sock):
            assert proc.poll() is None and time.time() < deadline, "nbdcage did not start"
            time.sleep(0.02)
        time.sleep(0.5)
        # Idle, with its first host: the figures to come back to.
        fds0, threads0 = count("/proc/%d/fd" % proc.pid), count("/proc/%d/task" % proc.pid)
        model, stats, stop = Model(), Stats(), threading.Event()
        threads = [threading.Thread(target=client, args=(sock, model, list(range(i, BLOCKS, CLIENTS)), stats, stop))
                   for i in range(CLIENTS)]
        for t in threads:
            t.start()

        rnd = random.Random(7)
        kills, recovery, problems = 0, [], []
        sigs = [signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT, signal.SIGSTOP]
        while kills < kills_wanted:
            if proc.poll() is not None:
                problems.append("nbdcage died (status %s)" % proc.returncode)
                break
            hosts = children(proc.pid)
            if not hosts:
                time.sleep(0.02)
                continue
            sig = rnd.choice(sigs)
            killed_at = time.monotonic()
            try:
                os.kill(hosts[0], sig)
                if sig == signal.SIGSTOP:
                    time.sleep(0.2)
                    os.kill(hosts[0], signal.SIGKILL)
            except ProcessLookupError:
                continue
            kills += 1
            # Recovery: until a request succeeds after the kill.
            while stats.last_ok < killed_at and time.monotonic() - killed_at < 30 and proc.poll() is None:
                time.sleep(0.005)
            recovery.append(stats.last_ok - killed_at if stats.last_ok >= killed_at else 30.0)
            time.sleep(rnd.uniform(0.05, 0.15))
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join(DEADLINE + 20)
            if t.is_alive():
                problems.append("a client never got an answer")
        # Everything on disk is what the model allows.
        if proc.poll() is None:
            h = nbd.NBD()
            h.connect_unix(sock)
            for b in range(BLOCKS):
                got = bytes(h.pread(BLOCK, b * BLOCK))
                if got not in model.possible[b]:
                    stats.wrong += 1
                    stats.notes.append("final: block %d holds %r" % (b, got[:20]))
            h.shutdown()
            del h
            time.sleep(0.5)
            fds1, threads1 = count("/proc/%d/fd" % proc.pid), count("/proc/%d/task" % proc.pid)
        else:
            fds1 = threads1 = -1
        proc.kill()
        proc.wait()
        log.seek(0)
        text = log.read()

    recovery.sort()
    p50 = recovery[len(recovery) // 2] if recovery else 0
    p99 = recovery[min(len(recovery) - 1, int(len(recovery) * 0.99))] if recovery else 0
    print("kills %d, requests ok %d, errors %d, wrong reads %d, slow answers %d" %
          (kills, stats.ok, stats.errors, stats.wrong, stats.slow))
    print("recovery after a kill: median %.0f ms, p99 %.0f ms, max %.0f ms" %
          (p50 * 1000, p99 * 1000, (recovery[-1] if recovery else 0) * 1000))
    print("nbdcage descriptors %d -> %d, threads %d -> %d" % (fds0, fds1, threads0, threads1))
    if stats.wrong:
        problems.append("%d wrong reads: %s" % (stats.wrong, "; ".join(stats.notes[:5])))
    if stats.slow:
        problems.append("%d requests took longer than the deadline allows" % stats.slow)
    if kills < kills_wanted:
        problems.append("only %d kills" % kills)
    if fds1 > fds0 + 4 or threads1 > threads0 + 4:
        problems.append("nbdcage grew: descriptors %d -> %d, threads %d -> %d" % (fds0, fds1, threads0, threads1))
    if stats.ok < kills:
        problems.append("too few requests served (%d)" % stats.ok)
    if problems:
        print("log ends:", " / ".join(text.splitlines()[-8:]))
        errors = [l for l in text.splitlines() if "ERROR: " in l or "runtime error" in l or l.lstrip().startswith("#")]
        if errors:
            print("sanitizer report:", "\n".join(errors[:40]))
        print("FAIL: " + "; ".join(problems))
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
