import ctypes, fcntl, os, signal, socket, struct, subprocess, sys, threading

# uml-launcher.py HELPER PROXY_SOCKET PROXY_PORT UML_KERNEL ARG...
# libslirp-helper (UML's network) gets one end of a socketpair, linux.uml the other. PROXY_SOCKET non-empty:
# libslirp-helper runs in a network namespace of its own, with nothing but a loopback where PROXY_PORT leads to the
# run's apt proxy (its unix socket): the guest reaches the proxy at 10.0.2.2:PROXY_PORT and nothing else.
helper, proxy_socket, proxy_port, argv = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
fa = fcntl.fcntl(a.fileno(), fcntl.F_DUPFD_CLOEXEC, 20)
fb = fcntl.fcntl(b.fileno(), fcntl.F_DUPFD_CLOEXEC, 20)
a.close(); b.close()

def say(text):
    # Our stdout is the builder's console (UML's con0): the run reads this line from there.
    sys.stdout.write("debian-vm-ci-uml-network: %s\n" % text)
    sys.stdout.flush()

def spawn(cmd, fd, **kw):
    # subprocess closes every fd not in pass_fds after preexec_fn: put the end on fd 3 here instead.
    os.dup2(fd, 3, inheritable=False)
    try:
        return subprocess.Popen(cmd, pass_fds=(3,), **kw)
    finally:
        os.close(3)

def own_network():
    """A network namespace with only a loopback, up; a user namespace too when we are not root."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.geteuid(), os.getegid()
    flags = 0x40000000 | (0 if uid == 0 else 0x10000000)  # CLONE_NEWNET | CLONE_NEWUSER
    if libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    if uid != 0:
        for name, text in (("setgroups", "deny"), ("uid_map", "0 %d 1" % uid), ("gid_map", "0 %d 1" % gid)):
            with open("/proc/self/" + name, "w") as f:
                f.write(text)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", 0x1 | 0x8 | 0x40))  # SIOCSIFFLAGS: UP LOOPBACK RUNNING

def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    try: dst.shutdown(socket.SHUT_WR)
    except OSError: pass

def join_to_proxy(conn):
    try:
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        up.connect(proxy_socket)
    except OSError:
        conn.close()
        return
    t = threading.Thread(target=pump, args=(up, conn), daemon=True)
    t.start()
    pump(conn, up)
    t.join()
    conn.close(); up.close()

def forward(server):
    while True:
        conn, _ = server.accept()
        threading.Thread(target=join_to_proxy, args=(conn,), daemon=True).start()

def walled_slirp():
    """libslirp-helper in a network namespace of its own, from a child of ours that forwards the proxy's port."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.close(fb)
        try:
            own_network()
        except OSError as e:
            os.write(w, ("not walled: no network namespace of its own (%s)" % e).encode())
            os._exit(3)
        # Before the listening socket exists: spawn() puts slirp's end on fd 3, which that socket could hold.
        slirp = spawn([helper, "--fd=3", "--exit-with-parent"], fa, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        try:
            server = socket.create_server(("127.0.0.1", proxy_port))
        except OSError as e:
            slirp.kill()
            os.write(w, ("not walled: the proxy's port in the builder's namespace (%s)" % e).encode())
            os._exit(3)
        os.write(w, b"walled")
        os.close(w)
        threading.Thread(target=forward, args=(server,), daemon=True).start()
        signal.signal(signal.SIGTERM, lambda *_: (slirp.kill(), os._exit(143)))
        os._exit(slirp.wait())
    os.close(w)
    with os.fdopen(r, "rb") as f:
        status = f.read().decode()
    if status == "walled":
        say("walled: the builder reaches the run's apt proxy and nothing else")
        return pid
    os.waitpid(pid, 0)
    say(status)
    return None

class Child:
    def __init__(self, pid): self.pid = pid
    def kill(self):
        try: os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError: pass
    def terminate(self):
        try: os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError: pass
    def wait(self, timeout=None):
        for _ in range(int((timeout or 1e9) * 10)):
            if os.waitpid(self.pid, os.WNOHANG)[0]:
                return
            threading.Event().wait(0.1)
        raise subprocess.TimeoutExpired("libslirp-helper", timeout)

walled = walled_slirp() if proxy_socket else None
if walled:
    slirp = Child(walled)
else:
    if not proxy_socket:
        say("open: vm-network is open")
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
