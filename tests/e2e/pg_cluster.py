"""A throwaway PostgreSQL cluster for the end-to-end scripts: initdb in a directory of
the caller's (as the `postgres` user when we run as root: PostgreSQL refuses root),
TCP on 127.0.0.1 with a free port, its socket in that directory, trust auth, a
database `banyan`. Tuned for speed (fsync off) unless made `durable` (stock settings,
for benchmarks whose write numbers must be honest): never for data anyone wants to
keep. stop() ends the server by its PID; the directory is the caller's to remove.

The server also dies with the process that started it (a crashed or killed script
leaves no postgres behind): the child asks the kernel for a parent-death signal with
prctl(PR_SET_PDEATHSIG) *after* switching to the postgres user, since Linux clears
that setting when the credentials change. The postmaster gets SIGQUIT, its own
immediate shutdown: it takes its children down and removes its shared memory, which
SIGKILL would leave behind (pg_death_test.py shows both). The kernel sends it when the
*thread* that called start() exits: call it from the main thread (or one that outlives
the cluster).
"""
import ctypes
import os
import pwd
import signal
import subprocess
import time

from local_procs import free_port, stop_process

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def child_setup(pdeath_signal, uid=None, gid=None, parent=None):
    """A preexec_fn: become uid/gid (when given), then ask for pdeath_signal when the
    parent (the thread that forks) dies. The order matters: setuid() clears the
    parent-death signal. If the parent died before prctl took effect, getppid() is no
    longer PARENT: exit instead of running an orphan. Only raw system calls here (the
    child of a fork runs just this before exec)."""
    parent = os.getpid() if parent is None else parent

    def setup():
        if gid is not None:
            os.setgroups([])
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)
        if _libc.prctl(_PR_SET_PDEATHSIG, int(pdeath_signal), 0, 0, 0) != 0:
            os._exit(126)
        if os.getppid() != parent:
            os._exit(126)
    return setup


def _bin_dir():
    root = "/usr/lib/postgresql"
    for version in sorted(os.listdir(root), key=lambda v: [int(x) for x in v.split(".") if x.isdigit()],
                          reverse=True):
        cand = os.path.join(root, version, "bin")
        if os.path.exists(os.path.join(cand, "initdb")):
            return cand
    raise RuntimeError("PostgreSQL server binaries not found under " + root)


class PgCluster:
    def __init__(self, directory, durable=False, max_connections=100, death_signal=signal.SIGQUIT):
        self.dir = directory
        self.death_signal = death_signal  # what the postmaster gets when our process dies
        self.durable = durable
        self.max_connections = max_connections
        self.bin = _bin_dir()
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.dir, "postgres.log")

    def _demote(self, pdeath_signal):
        """The preexec_fn of initdb and postgres: the postgres user when we are root,
        and death with this process (pdeath_signal)."""
        if os.geteuid() != 0:
            return child_setup(pdeath_signal)
        pw = pwd.getpwnam("postgres")
        return child_setup(pdeath_signal, uid=pw.pw_uid, gid=pw.pw_gid)

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            # The postgres user must reach its directory through the caller's.
            os.chmod(os.path.dirname(self.dir), 0o755)
        data = os.path.join(self.dir, "data")
        r = subprocess.run([self.bin + "/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                            "--locale=C"] + ([] if self.durable else ["--no-sync"]), capture_output=True, text=True,
                           preexec_fn=self._demote(signal.SIGKILL), timeout=180)
        if r.returncode != 0:
            raise RuntimeError("initdb failed: " + r.stderr)
        for _ in range(5):  # a free port can be taken between choosing and binding it
            self.port = free_port()
            log = open(self.log_path, "a")
            fast = [] if self.durable else ["-c", "fsync=off", "-c", "synchronous_commit=off",
                                            "-c", "full_page_writes=off"]
            self.proc = subprocess.Popen(
                [self.bin + "/postgres", "-D", data, "-p", str(self.port), "-h", "127.0.0.1", "-k", self.dir]
                + fast + ["-c", "max_connections=%d" % self.max_connections, "-c", "logging_collector=off"],
                stdout=log, stderr=subprocess.STDOUT, preexec_fn=self._demote(self.death_signal))
            log.close()
            deadline = time.time() + 60
            while time.time() < deadline and self.proc.poll() is None:
                if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode == 0:
                    break
                time.sleep(0.1)
            if self.proc.poll() is None:
                break
            self.proc = None
        if self.proc is None:
            raise RuntimeError("postgres did not start; see " + self.log_path)
        self.psql("CREATE DATABASE banyan")
        return self

    def psql(self, sql, db="postgres"):
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db,
                            "-v", "ON_ERROR_STOP=1", "-qAtc", sql], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("psql failed: " + r.stderr)
        return r.stdout

    def url(self):
        return "postgresql://postgres@127.0.0.1:%d/banyan" % self.port

    def stop(self):
        if self.proc is None:
            return
        stop_process(self.proc, signal.SIGINT, 30)  # SIGINT: fast shutdown
        self.proc = None
