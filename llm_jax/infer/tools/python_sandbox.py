"""The python tool: run model-written code in a separate, locked-down process and return its output.

Model output is hostile: this is a security boundary. Each call gets a fresh, empty folder and a fresh
interpreter (`python -I -S`: no site-packages, no environment variables, no user site) in its own process
group and session, with a minimal environment and stdin at end of file. Before the code runs, the child
locks itself down (sandbox/lockdown.py: namespaces, rlimits, capabilities, Landlock, seccomp) and adds an
audit hook (sandbox/child.py). The parent kills the whole process group at the wall-time limit and reads
at most `output_chars` of the output, which goes to a file capped by RLIMIT_FSIZE. Every failure comes
back as text for the model (`SandboxResult.text`); nothing here raises because of what the code did.
"""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox", "child.py")
LAYERS = ("namespaces", "rlimits", "caps", "landlock", "seccomp")
_SIGNAL_ERRORS = {signal.SIGXCPU: "cpu_limit", signal.SIGSEGV: "crashed", signal.SIGSYS: "forbidden",
                  signal.SIGKILL: "killed"}


@dataclasses.dataclass(frozen=True)
class SandboxLimits:
  wall_s: float = 5.0  # real time before the process group is killed
  cpu_s: int = 3  # CPU seconds (RLIMIT_CPU: SIGXCPU, SIGKILL one second later)
  memory_mb: int = 512  # address space (RLIMIT_AS): larger allocations raise MemoryError
  file_mb: int = 4  # largest file the code writes, its output included (RLIMIT_FSIZE)
  tmpfs_mb: int = 16  # size of the work folder, where a private tmpfs can be mounted
  open_files: int = 64  # RLIMIT_NOFILE
  max_code_chars: int = 32_768  # longer code is refused
  output_chars: int = 2000  # output returned to the model; the rest is cut with a marker
  require: tuple[str, ...] = ("rlimits",)  # layers that must hold, or the code does not run (see LAYERS)
  audit_hook: bool = True  # the in-interpreter speed bump; off only to test that the OS layers hold alone


@dataclasses.dataclass
class SandboxResult:
  output: str  # what the code printed (cut to output_chars)
  status: str  # ok | error (the code raised) | timeout | cpu_limit | killed | crashed | forbidden | refused
  seconds: float
  truncated: bool
  layers: dict  # {layer: "ok..." or why it did not hold}, from the child

  @property
  def text(self) -> str:
    """What the model sees: the output, then one line naming a limit that stopped the code."""
    note = {"timeout": "Error: timed out; the code was stopped",
            "cpu_limit": "Error: CPU time limit exceeded; the code was stopped",
            "killed": "Error: killed (CPU time or memory limit)",
            "crashed": "Error: the interpreter crashed (e.g. recursion too deep)",
            "forbidden": "Error: a forbidden system call stopped the code"}.get(self.status, "")
    return "\n".join(t for t in (self.output, note) if t)


def _remove_tree(path: str) -> None:
  """rmtree that also removes what the code made unreadable (chmod 000) where no tmpfs held its files."""
  def retry(func, p, _):
    os.chmod(os.path.dirname(p), 0o700)
    if os.path.isdir(p):
      os.chmod(p, 0o700)
    func(p)
  try:
    shutil.rmtree(path, onerror=retry)
  except OSError:
    shutil.rmtree(path, ignore_errors=True)


class PythonSandbox:
  """`sandbox(code) -> text`; `sandbox.run(code) -> SandboxResult`. Safe to call from several threads."""

  def __init__(self, limits: SandboxLimits = SandboxLimits(), python: str | None = None):
    unknown = set(limits.require) - set(LAYERS)
    if unknown:
      raise ValueError(f"unknown sandbox layer(s) {sorted(unknown)} in require; choose from {LAYERS}")
    self.limits, self.python = limits, python or sys.executable

  def __call__(self, code: str) -> str:
    return self.run(code).text

  def _wait(self, proc: subprocess.Popen) -> bool:
    """Wait for the child to exit without reaping it (its pid keeps naming the group); True if it did."""
    deadline, pause = time.monotonic() + self.limits.wall_s, 0.002
    while time.monotonic() < deadline:
      if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
        return True
      time.sleep(pause)
      pause = min(pause * 1.5, 0.02)
    return False

  def run(self, code: str) -> SandboxResult:
    lim = self.limits
    if len(code) > lim.max_code_chars:
      return SandboxResult(f"Error: code of {len(code)} characters is longer than the limit of "
                           f"{lim.max_code_chars}", "refused", 0.0, False, {})
    root = tempfile.mkdtemp(prefix="llm_jax_python_")
    work = os.path.join(root, "work")
    os.mkdir(work, 0o700)
    start = time.monotonic()
    try:
      with open(os.path.join(root, "output"), "wb") as out, open(os.path.join(root, "layers.json"), "w+") as report:
        config = dict(work_dir=work, report_fd=report.fileno(), cpu_s=lim.cpu_s, memory_mb=lim.memory_mb,
                      file_mb=lim.file_mb, open_files=lim.open_files, tmpfs_mb=lim.tmpfs_mb, require=lim.require,
                      audit_hook=lim.audit_hook)
        env = {"PATH": "/usr/bin:/bin", "HOME": work, "TMPDIR": work, "LANG": "C.UTF-8"}
        proc = subprocess.Popen(
            [self.python, "-I", "-S", "-B", "-u", "-X", "utf8", CHILD, json.dumps(config)], stdin=subprocess.PIPE,
            stdout=out, stderr=subprocess.STDOUT, cwd=work, env=env, start_new_session=True,
            pass_fds=(report.fileno(),))
        try:
          proc.stdin.write(code.encode("utf-8", "replace"))
        except BrokenPipeError:
          pass
        finally:
          proc.stdin.close()
        exited = self._wait(proc)
        try:
          os.killpg(proc.pid, signal.SIGKILL)  # whatever the code left behind, before the pid is reaped
        except (ProcessLookupError, PermissionError):
          pass
        returncode = proc.wait()
        seconds = time.monotonic() - start
        report.seek(0)
        try:
          layers = json.loads(report.read() or "{}")
        except json.JSONDecodeError:
          layers = {}
      return self._result(os.path.join(root, "output"), exited, returncode, seconds, layers)
    finally:
      _remove_tree(root)

  def _result(self, path: str, exited: bool, returncode: int, seconds: float, layers: dict) -> SandboxResult:
    limit = self.limits.output_chars
    size = os.path.getsize(path)
    with open(path, "rb") as f:
      raw = f.read(4 * limit + 4)
    text = raw.decode("utf-8", "replace")
    truncated = size > len(raw) or len(text) > limit
    if truncated:
      text = text[:limit] + f"\n[output truncated: {size} bytes in all]"
    text = text.rstrip()
    if not exited:
      status = "timeout"
    elif returncode < 0:
      status = _SIGNAL_ERRORS.get(-returncode, "killed")
    else:
      status = {0: "ok", 3: "refused"}.get(returncode, "error")
    return SandboxResult(text, status, seconds, truncated, layers)


def probe(limits: SandboxLimits = SandboxLimits(require=())) -> dict:
  """{layer: status} on this machine (runs an empty cell)."""
  return PythonSandbox(limits).run("").layers
