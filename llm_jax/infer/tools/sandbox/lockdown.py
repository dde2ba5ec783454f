"""OS-level lock-down a sandbox child applies to itself before it runs untrusted code (stdlib only).

Each layer is tried in order and its outcome recorded ("ok" or why not); the child refuses to run
code when a layer the parent requires did not hold. Layers:
  namespaces  new mount + network namespaces (root, or via an unprivileged user namespace): no network
              interface but a down loopback, and the work dir becomes a size-capped tmpfs the host never sees
  rlimits     CPU seconds, address space, file size, open files, processes (0; root is exempt), no core
  caps        every capability dropped (root stays uid 0 but loses its privileges), no_new_privs set
  landlock    read-only access to the interpreter's files and system libraries, read-write to the work
              dir, nothing else; no TCP bind/connect (ABI >= 4); no signals to, or abstract unix sockets
              of, processes outside the sandbox (ABI >= 6)
  seccomp     syscall filter: no fork/exec, sockets, signals, ptrace, mounts, namespaces, bpf, io_uring,
              kernel keyrings, module loading; threads (clone with CLONE_THREAD) stay allowed
"""

import ctypes
import os
import resource

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET, CLONE_THREAD = 0x00020000, 0x10000000, 0x40000000, 0x00010000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 2, 4, 1 << 14, 1 << 18
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_SET_SECCOMP = 24, 38, 47, 22
EPERM, ENOSYS = 1, 38

# Syscalls the filter refuses, per machine (numbers from the kernel's unistd headers).
_DENIED = ("fork vfork execve execveat kill tkill tgkill rt_sigqueueinfo rt_tgsigqueueinfo pidfd_send_signal "
           "pidfd_open pidfd_getfd ptrace socket socketpair mount umount2 pivot_root chroot setns unshare bpf "
           "perf_event_open keyctl add_key request_key process_vm_readv process_vm_writev io_uring_setup "
           "io_uring_enter io_uring_register userfaultfd open_by_handle_at name_to_handle_at kexec_load "
           "kexec_file_load init_module finit_module delete_module reboot swapon swapoff open_tree move_mount "
           "fsopen fsconfig fsmount fspick mount_setattr personality acct iopl ioperm quotactl").split()
SYSCALLS = {
    "x86_64": dict(zip(_DENIED, (
        57, 58, 59, 322, 62, 200, 234, 129, 297, 424, 434, 438, 101, 41, 53, 165, 166, 155, 161, 308, 272, 321,
        298, 250, 248, 249, 310, 311, 425, 426, 427, 323, 304, 303, 246, 320, 175, 313, 176, 169, 167, 168, 428,
        429, 430, 431, 432, 433, 442, 135, 163, 172, 173, 179)), clone=56, clone3=435, capset=126),
    "aarch64": dict(zip(_DENIED, (
        None, None, 221, 281, 129, 130, 131, 138, 240, 424, 434, 438, 117, 198, 199, 40, 39, 41, 51, 268, 97, 280,
        241, 219, 217, 218, 270, 271, 425, 426, 427, 282, 265, 264, 104, 294, 105, 273, 106, 142, 224, 225, 428,
        429, 430, 431, 432, 433, 442, 92, 89, None, None, 60)), clone=220, clone3=435, capset=91),
}
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446


def _libc():
  libc = ctypes.CDLL(None, use_errno=True)
  libc.syscall.restype = ctypes.c_long
  return libc


def _arg(a):
  return ctypes.c_long(a) if isinstance(a, int) else a


def _syscall(libc, nr: int, *args) -> int:
  """syscall(2) with every integer passed as a C long (it is variadic)."""
  return libc.syscall(ctypes.c_long(nr), *map(_arg, args))


def _prctl(libc, option: int, *args) -> int:
  return libc.prctl(ctypes.c_int(option), *map(_arg, (args + (0, 0, 0, 0))[:4]))


def _check(result: int, what: str) -> int:
  if result < 0:
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}")
  return result


def enter_namespaces(libc, work_dir: str, tmpfs_mb: int) -> None:
  """New mount + network namespaces; `work_dir` becomes a private tmpfs of `tmpfs_mb` MB."""
  uid, gid = os.geteuid(), os.getegid()
  user_ns = uid != 0 or libc.unshare(ctypes.c_int(CLONE_NEWNS | CLONE_NEWNET)) != 0
  if user_ns:  # unprivileged (or a root without CAP_SYS_ADMIN): a user namespace grants what this needs
    _check(libc.unshare(ctypes.c_int(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET)), "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
      with open(f"/proc/self/{name}", "w") as f:
        f.write(text)
  _check(libc.mount(None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None), "make mounts private")
  _check(libc.mount(b"tmpfs", work_dir.encode(), b"tmpfs", ctypes.c_ulong(MS_NOSUID | MS_NODEV),
                    f"size={tmpfs_mb}m,mode=0700".encode()), "mount tmpfs")


def set_rlimits(cpu_s: int, memory_mb: int, file_mb: int, open_files: int) -> None:
  """Soft CPU limit -> SIGXCPU, hard one second later -> SIGKILL; the rest hard = soft."""
  resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
  for res, value in ((resource.RLIMIT_AS, memory_mb << 20), (resource.RLIMIT_FSIZE, file_mb << 20),
                     (resource.RLIMIT_NOFILE, open_files), (resource.RLIMIT_NPROC, 0), (resource.RLIMIT_CORE, 0)):
    resource.setrlimit(res, (value, value))


def drop_capabilities(libc) -> None:
  """Empty bounding, ambient, effective, permitted and inheritable capability sets; set no_new_privs."""
  for cap in range(64):
    if _prctl(libc, PR_CAPBSET_DROP, cap) != 0:
      break  # EINVAL past the last capability this kernel knows
  _prctl(libc, PR_CAP_AMBIENT, 4)  # PR_CAP_AMBIENT_CLEAR_ALL
  header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
  data = (ctypes.c_uint32 * 6)()  # {effective, permitted, inheritable} x 2 words, all zero
  _check(_syscall(libc, SYSCALLS[os.uname().machine]["capset"], header, data), "capset")
  _check(_prctl(libc, PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")


class _PathBeneath(ctypes.Structure):
  _pack_ = 1
  _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock(libc, read_paths: list[str], write_paths: list[str]) -> int:
  """Restrict this process (and threads it starts) to the given paths; returns the Landlock ABI used."""
  abi = _syscall(libc, SYS_LANDLOCK_CREATE_RULESET, None, 0, 1)  # LANDLOCK_CREATE_RULESET_VERSION
  _check(abi, "landlock (unsupported kernel or disabled)")
  fs = (1 << 13) - 1  # ABI 1: execute .. make_sym
  fs |= (1 << 13 if abi >= 2 else 0) | (1 << 14 if abi >= 3 else 0) | (1 << 15 if abi >= 5 else 0)
  attr = (ctypes.c_uint64 * 3)(fs, 0b11 if abi >= 4 else 0, 0b11 if abi >= 6 else 0)
  size = 8 if abi < 4 else 16 if abi < 6 else 24
  ruleset = _check(_syscall(libc, SYS_LANDLOCK_CREATE_RULESET, attr, size, 0), "landlock_create_ruleset")
  read = 0b1101  # execute, read_file, read_dir
  file_rights = 0b111 | (1 << 14 if abi >= 3 else 0) | (1 << 15 if abi >= 5 else 0)
  try:
    for path, access in [(p, read) for p in read_paths] + [(p, fs) for p in write_paths]:
      if not os.path.exists(path):
        continue
      fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
      try:
        rights = access if os.path.isdir(path) else access & file_rights
        rule = _PathBeneath(rights, fd)
        _check(_syscall(libc, SYS_LANDLOCK_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0), f"landlock rule for {path}")
      finally:
        os.close(fd)
    _check(_prctl(libc, PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
    _check(_syscall(libc, SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
  finally:
    os.close(ruleset)
  return abi


class _SockFilter(ctypes.Structure):
  _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
  _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def seccomp_program(machine: str) -> list[tuple[int, int, int, int]]:
  """Classic BPF (code, jt, jf, k): other architectures killed, denied syscalls EPERM, clone3 ENOSYS
  (so libc falls back to clone), clone allowed only for threads, everything else allowed."""
  LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06  # ld w abs, jmp jeq/jge/jset k, ret k
  ALLOW, KILL, ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
  table = SYSCALLS[machine]
  prog = [(LD, 0, 0, 4), (JEQ, 1, 0, AUDIT_ARCH[machine]), (RET, 0, 0, KILL), (LD, 0, 0, 0)]
  if machine == "x86_64":  # the x32 ABI: same arch value, numbers with bit 30 set
    prog += [(JGE, 0, 1, 0x40000000), (RET, 0, 0, ERRNO | EPERM)]
  prog += [(JEQ, 0, 1, table["clone3"]), (RET, 0, 0, ERRNO | ENOSYS)]
  prog += [(JEQ, 0, 4, table["clone"]), (LD, 0, 0, 16), (JSET, 0, 1, CLONE_THREAD), (RET, 0, 0, ALLOW),
           (RET, 0, 0, ERRNO | EPERM)]  # args[0] (flags), low 32 bits (little-endian)
  for name in _DENIED:
    if table[name] is not None:
      prog += [(JEQ, 0, 1, table[name]), (RET, 0, 0, ERRNO | EPERM)]
  return prog + [(RET, 0, 0, ALLOW)]


def seccomp(libc) -> None:
  machine = os.uname().machine
  if machine not in SYSCALLS:
    raise OSError(ENOSYS, f"no syscall table for {machine}")
  prog = seccomp_program(machine)
  filters = (_SockFilter * len(prog))(*[_SockFilter(c, t, f, k) for c, t, f, k in prog])
  fprog = _SockFprog(len(prog), filters)
  _check(_prctl(libc, PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
  _check(_prctl(libc, PR_SET_SECCOMP, 2, ctypes.byref(fprog)), "seccomp filter")  # SECCOMP_MODE_FILTER


def apply(work_dir: str, read_paths: list[str], *, cpu_s: int, memory_mb: int, file_mb: int, open_files: int,
          tmpfs_mb: int) -> dict[str, str]:
  """Every layer, in order; {layer: "ok" or the reason it did not hold}."""
  libc, layers = _libc(), {}
  steps = (("namespaces", lambda: enter_namespaces(libc, work_dir, tmpfs_mb)),
           ("rlimits", lambda: set_rlimits(cpu_s, memory_mb, file_mb, open_files)),
           ("caps", lambda: drop_capabilities(libc)),
           ("landlock", lambda: f"ok (abi {landlock(libc, read_paths, [work_dir])})"),
           ("seccomp", lambda: seccomp(libc)))
  for name, step in steps:
    try:
      layers[name] = step() or "ok"
    except (OSError, ValueError, KeyError) as e:
      layers[name] = f"failed: {e}"
  return layers
