#!/usr/bin/python3
"""Usage: no-userns.py COMMAND [ARG...]

Executes COMMAND so that neither it nor anything it starts, root and setuid programs included,
can create a user namespace: the tests' stand-in for hosts that forbid them (Ubuntu 24.04's
kernel.apparmor_restrict_unprivileged_userns on GitHub's runners, hardened kernels, containers).

Why seccomp: the obvious knob, user.max_user_namespaces=0, needs CAP_SYS_RESOURCE, which root
lacks on the development machines. A seccomp filter is inherited across fork and execve, cannot
be removed, and also binds processes that gain privileges through sudo.

Must be started by root: loading a filter without no_new_privs needs CAP_SYS_ADMIN, and
no_new_privs would stop sudo inside from working, which is exactly what the tests need.
Needs Debian's (and Ubuntu's) python3-seccomp; the TypeScript helper installs it.
"""
import errno
import os
import sys

import seccomp

CLONE_NEWUSER = 0x10000000


def main() -> None:
    if len(sys.argv) < 2:
        sys.stderr.write(__doc__)
        sys.exit(2)
    if os.geteuid() != 0:
        sys.exit("no-userns.py: run me as root (through sudo): the filter keeps sudo usable only then")
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    newuser = seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER)
    # The first argument is the flags word for both calls on x86_64 and arm64.
    rules.add_rule(seccomp.ERRNO(errno.EPERM), "unshare", newuser)
    rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", newuser)
    # clone3 passes its flags in a struct that seccomp cannot read: refuse the call as if the kernel
    # were old, and glibc (posix_spawn, fork) retries with clone, which the rule above inspects.
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    rules.set_attr(seccomp.Attr.CTL_NNP, False)
    rules.load()
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    except OSError as e:
        sys.exit(f"no-userns.py: {sys.argv[1]}: {e.strerror}")


if __name__ == "__main__":
    main()
