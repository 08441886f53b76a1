"""Runs `rampart top` in a pseudo-terminal of 80 columns for
tests/integration/monitor.rs: prints what the screen received before and
after the test says (a line `go` on stdin) that the admin API is gone,
then presses `q` and prints the exit code.

    python3 top_pty.py RAMPART ADMIN
"""
import base64
import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time

rampart, admin = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["TERM"] = "xterm"
    os.execve(rampart, [rampart, "top", "--admin", admin], env)


def read_for(seconds):
    out = b""
    end = time.time() + seconds
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    return out


first = read_for(2.5)
print("BEFORE " + base64.b64encode(first).decode(), flush=True)
sys.stdin.readline()
after = read_for(3.5)
print("AFTER " + base64.b64encode(after).decode(), flush=True)
os.write(fd, b"q")
deadline = time.time() + 5
code = None
while time.time() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        code = os.waitstatus_to_exitcode(status)
        break
    read_for(0.1)
print("EXIT %s" % code, flush=True)
