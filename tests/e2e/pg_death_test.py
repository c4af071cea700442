#!/usr/bin/python3
"""A PgCluster dies with the process that started it (pg_cluster.py, child_setup):

1. a child process starts a cluster and is SIGKILLed (no cleanup runs): within a few
   seconds the postmaster and every process it forked are gone, and so are its
   shared memory segments (the SysV one, /proc/sysvipc/shm, and the dynamic shared
   memory control file, /dev/shm/PostgreSQL.*): the postmaster got SIGQUIT, its own
   immediate shutdown;
2. the same with SIGKILL as the death signal, for comparison: the processes go too
   (the children notice the postmaster's death), but the shared memory stays; this run
   removes it itself (printed, not asserted: it is why SIGQUIT is the default);
3. a child whose parent is no longer the one it was forked from (the parent died
   before prctl took effect) exits 126 instead of running.

    pg_death_test.py        exit 0 when every check passed
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pg_cluster import child_setup  # noqa: E402

CHECKS = []


def check(name, ok, detail=""):
    CHECKS.append(ok)
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, (": " + detail) if detail and not ok else ""), flush=True)


def stat_fields(pid):
    """(state, ppid, starttime) of /proc/PID/stat, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[19])


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = stat_fields(int(d))
            if st and st[1] == pid:
                out.append((int(d), st[2]))
    return out


def running(procs):
    """Those of (pid, starttime) still running (not a zombie, not a reused PID)."""
    left = []
    for pid, start in procs:
        st = stat_fields(pid)
        if st and st[2] == start and st[0] not in "ZX":
            left.append(pid)
    return left


def sysv_segments(creator):
    with open("/proc/sysvipc/shm") as f:
        lines = f.read().splitlines()
    head = lines[0].split()
    return [l.split()[head.index("shmid")] for l in lines[1:] if int(l.split()[head.index("cpid")]) == creator]


def sysv_alive(shmids):
    with open("/proc/sysvipc/shm") as f:
        have = {l.split()[1] for l in f.read().splitlines()[1:]}
    return [s for s in shmids if s in have]


def orphaned_server(death_signal):
    """Starts a cluster from a child process, SIGKILLs the child; returns what was
    running and what is left: (processes, left, segments, segments_left, dsm, dsm_left, s)."""
    tmp = tempfile.mkdtemp(prefix="banyan-pgdeath-")
    code = ("import sys, time; sys.path.insert(0, %r); from pg_cluster import PgCluster; "
            "c = PgCluster(%r, death_signal=%d).start(); print(c.proc.pid, flush=True); time.sleep(300)"
            % (HERE, os.path.join(tmp, "pg"), int(death_signal)))
    starter = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = starter.stdout.readline()
        if not line.strip():
            raise RuntimeError("the child did not start a cluster")
        pm = int(line)
        procs = [(pm, stat_fields(pm)[2])] + children(pm)
        with open("/proc/%d/maps" % pm) as f:
            dsm = sorted(set(re.findall(r"/dev/shm/PostgreSQL\.\d+", f.read())))
        segments = sysv_segments(pm)
    finally:
        starter.kill()  # SIGKILL: nothing of the child's runs any more
        starter.wait()
    t0 = time.time()
    while running(procs) and time.time() - t0 < 10:
        time.sleep(0.05)
    took = time.time() - t0
    left = running(procs)
    if left:  # the check fails; leave nothing running either (SIGQUIT first: it frees the memory)
        os.kill(procs[0][0], signal.SIGQUIT)
        deadline = time.time() + 8
        while running(procs) and time.time() < deadline:
            time.sleep(0.05)
        for pid in running(procs):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    seg_left, dsm_left = sysv_alive(segments), [d for d in dsm if os.path.exists(d)]
    shutil.rmtree(tmp, ignore_errors=True)
    return procs, left, segments, seg_left, dsm, dsm_left, took


def main():
    procs, left, segs, segs_left, dsm, dsm_left, took = orphaned_server(signal.SIGQUIT)
    check("the cluster ran a postmaster and its children (%d processes), a SysV segment and a DSM file"
          % len(procs), len(procs) >= 3 and segs and dsm, "%s %s %s" % (procs, segs, dsm))
    check("after its starter is SIGKILLed the postmaster and its children are gone within 5 s (%.2f s)" % took,
          not left and took < 5, "still running: %s" % left)
    check("... and so is its shared memory (SysV segment, /dev/shm file)", not segs_left and not dsm_left,
          "%s %s" % (segs_left, dsm_left))

    procs, left, segs, segs_left, dsm, dsm_left, took = orphaned_server(signal.SIGKILL)
    check("with SIGKILL as the death signal the processes go too (%.2f s)" % took, not left,
          "still running: %s" % left)
    print("info with SIGKILL as the death signal, shared memory left behind: SysV %s, DSM %s "
          "(removed now; SIGQUIT removes it itself)" % (segs_left, dsm_left), flush=True)
    for shmid in segs_left:
        subprocess.run(["ipcrm", "-m", shmid], check=False)
    for path in dsm_left:
        os.unlink(path)

    r = subprocess.run(["/bin/true"], preexec_fn=child_setup(signal.SIGKILL, parent=os.getppid()))
    check("a child whose parent changed before prctl exits 126 instead of running", r.returncode == 126,
          str(r.returncode))
    r = subprocess.run(["/bin/true"], preexec_fn=child_setup(signal.SIGKILL))
    check("a child of a living parent runs", r.returncode == 0, str(r.returncode))

    failed = CHECKS.count(False)
    print("%d checks, %d failed" % (len(CHECKS), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
