"""The sandbox child: `python -I -S -B -u -X utf8 child.py CONFIG_JSON`, the code on stdin (stdlib only).

It reads the code, locks itself down (lockdown.py), reports which layers held on the report fd, adds an
audit hook (a speed bump over the OS layers: it refuses process, socket and ctypes use and file access
outside the work folder), then runs the code like a REPL cell: the value of a final expression is printed.
Exit status: 0 ran, 1 the code raised, 3 a required layer did not hold.
"""

import ast
import builtins
import gc
import json
import linecache
import os
import signal
import sys
import traceback

FILENAME = "<python>"
FORBIDDEN_EVENTS = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill",
                    "os.killpg", "os.chroot", "subprocess.", "pty.", "socket.", "ctypes.", "gc.get_referrers",
                    "gc.get_referents", "gc.get_objects", "sys._current_frames", "resource.", "webbrowser.",
                    "urllib.", "_posixsubprocess")
FORBIDDEN_MODULES = {"ctypes", "_ctypes", "_posixsubprocess", "subprocess", "socket", "_socket", "ssl", "_ssl",
                     "multiprocessing", "_multiprocessing", "pty", "resource", "lockdown"}
WRITE_EVENTS = {"os.remove": 1, "os.rename": 2, "os.rmdir": 1, "os.mkdir": 1, "os.symlink": 2, "os.link": 2,
                "os.chmod": 1, "os.chown": 1, "os.truncate": 1, "os.utime": 1, "shutil.rmtree": 1,
                "shutil.copyfile": 2, "shutil.copytree": 2, "shutil.move": 2, "os.chflags": 1, "os.lchflags": 1}
READ_EVENTS = {"os.listdir": 1, "os.scandir": 1, "os.chdir": 1, "glob.glob": 1}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _within(path, roots: tuple[str, ...]) -> bool:
  if isinstance(path, int):
    return True  # an already open descriptor
  try:
    real = os.path.realpath(os.fsdecode(os.fspath(path)))
  except (TypeError, ValueError):
    return False
  return any(real == r or real.startswith(r.rstrip("/") + "/") for r in roots)


def make_audit_hook(work_dir: str, read_roots: tuple[str, ...]):
  """An audit hook that raises PermissionError on what sandboxed code must not do."""
  writable, readable = (work_dir,), (work_dir,) + read_roots

  def hook(event: str, args: tuple) -> None:
    if event == "import":
      if str(args[0]).split(".")[0] in FORBIDDEN_MODULES:
        raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
    elif event.startswith(FORBIDDEN_EVENTS):
      raise PermissionError(f"sandbox: {event} is not allowed")
    elif event == "open":
      path, mode, flags = (tuple(args) + (None, None))[:3]
      write = any(c in str(mode or "") for c in "wax+") or bool((flags or 0) & _WRITE_FLAGS)
      if not _within(path, writable if write else readable):
        raise PermissionError(f"sandbox: no access to {path!r} (only the current folder)")
    elif event in WRITE_EVENTS or event in READ_EVENTS:
      roots = writable if event in WRITE_EVENTS else readable
      for path in args[:WRITE_EVENTS.get(event) or READ_EVENTS[event]]:
        if path is not None and not _within(path, roots):
          raise PermissionError(f"sandbox: {event} outside the current folder is not allowed")

  return hook


def run_cell(code: str) -> int:
  """Run `code` as one REPL cell in a fresh namespace; print the last expression's value or the error."""
  namespace = {"__name__": "__main__", "__builtins__": builtins}
  linecache.cache[FILENAME] = (len(code), None, code.splitlines(True), FILENAME)
  try:
    tree = ast.parse(code, FILENAME)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, FILENAME, "exec"), namespace)  # pylint: disable=exec-used
    if last is not None:
      value = eval(compile(ast.Expression(last.value), FILENAME, "eval"), namespace)  # pylint: disable=eval-used
      if value is not None:
        print(repr(value))
    return 0
  except SystemExit as e:
    return 0 if e.code in (None, 0) else 1
  except BaseException as e:  # pylint: disable=broad-except  (the error is the cell's output)
    try:
      frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == FILENAME][-1:]  # the last
      head = ["Traceback (most recent call last):\n"] + traceback.format_list(frames) if frames else []
      sys.stdout.write("".join(head + traceback.format_exception_only(type(e), e)))
    except BaseException:  # pylint: disable=broad-except  (e.g. the output file is full)
      pass
    return 1


def read_roots() -> tuple[str, ...]:
  """What the interpreter may read after lock-down: its own files and the system libraries."""
  roots = {sys.base_prefix, sys.base_exec_prefix, os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
  roots |= {"/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib", "/dev/urandom", "/dev/null"}
  return tuple(sorted(r for r in roots if os.path.exists(r)))


def main() -> None:
  config = json.loads(sys.argv[1])
  code = sys.stdin.buffer.read().decode("utf-8", "replace")
  devnull = os.open(os.devnull, os.O_RDONLY)
  os.dup2(devnull, 0)  # input() sees end of file at once
  os.close(devnull)
  work_dir, roots = config["work_dir"], read_roots()
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  import lockdown  # pylint: disable=g-import-not-at-top
  sys.path.pop(0)
  signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past RLIMIT_FSIZE fail instead of killing
  layers = lockdown.apply(work_dir, list(roots), cpu_s=config["cpu_s"], memory_mb=config["memory_mb"],
                          file_mb=config["file_mb"], open_files=config["open_files"], tmpfs_mb=config["tmpfs_mb"])
  with os.fdopen(config["report_fd"], "w") as report:
    json.dump(layers, report)
  missing = [f"{k} ({layers.get(k, 'unknown layer')})" for k in config["require"] if
             not layers.get(k, "").startswith("ok")]
  if missing:
    print(f"sandbox refused to run: required layer(s) did not hold: {', '.join(missing)}")
    sys.stdout.flush()
    os._exit(3)
  os.chdir(work_dir)
  for name in ("lockdown", "ctypes", "ctypes._endian", "_ctypes"):
    sys.modules.pop(name, None)
  del lockdown
  gc.collect()
  if config["audit_hook"]:
    sys.addaudithook(make_audit_hook(work_dir, roots))
  status = run_cell(code)
  try:
    sys.stdout.flush()
  except BaseException:  # pylint: disable=broad-except
    pass
  os._exit(status)  # no waiting for threads the code left running


if __name__ == "__main__":
  main()
