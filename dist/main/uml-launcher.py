import fcntl, os, signal, socket, subprocess, sys

helper, argv = sys.argv[1], sys.argv[2:]
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
fa = fcntl.fcntl(a.fileno(), fcntl.F_DUPFD_CLOEXEC, 20)
fb = fcntl.fcntl(b.fileno(), fcntl.F_DUPFD_CLOEXEC, 20)
a.close(); b.close()

def spawn(cmd, fd, **kw):
    # subprocess closes every fd not in pass_fds after preexec_fn: put the end on fd 3 here instead.
    os.dup2(fd, 3, inheritable=False)
    try:
        return subprocess.Popen(cmd, pass_fds=(3,), **kw)
    finally:
        os.close(3)

slirp = spawn([helper, "--fd=3", "--exit-with-parent"], fa, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
uml = spawn(argv, fb, stdin=subprocess.DEVNULL)
os.close(fa); os.close(fb)

def stop(signum, frame):
    for p in (uml, slirp):
        try: p.kill()
        except ProcessLookupError: pass
    sys.exit(128 + signum)

signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
rc = uml.wait()
slirp.terminate()
try: slirp.wait(timeout=5)
except subprocess.TimeoutExpired: slirp.kill()
sys.exit(rc)
