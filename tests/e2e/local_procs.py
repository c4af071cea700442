"""Small helpers the e2e scripts and pg_cluster.py share: a free port on 127.0.0.1,
and stopping a process this script started, by its Popen (never by name)."""
import signal
import socket
import subprocess


def free_port(kind=socket.SOCK_STREAM):
    """A port on 127.0.0.1 that was free a moment ago (TCP, or UDP with SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc, sig=signal.SIGTERM, timeout=20):
    """Sends SIG to PROC if it still runs and waits for it; SIGKILL after TIMEOUT s."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
