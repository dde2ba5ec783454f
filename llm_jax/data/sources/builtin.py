"""The `builtin` corpus: English prose (and some code) read from the Python standard library's files.

Works on any machine with Python and no network. Files are only read and parsed with `ast`; no module
is ever imported. The order is fixed (sorted paths), so a given Python installation always yields the
same documents. Parts:
  prose: the Python reference manual text in `pydoc_data/topics.py` (one document per topic), the
         docstrings of every stdlib module (one document per module: module, class and function
         docstrings under their signatures), and the stdlib's text files (LICENSE, IDLE's help page
         and notes).
  code:  the source of every stdlib module, one document per file.
Test suites (`test/`, `tests/`, `idle_test/`) and installed packages are left out.
"""

import ast
import os
import sysconfig
from collections.abc import Iterator

from datatrove.data import Document

PARTS = ("prose", "code")
_SKIP_DIRS = frozenset({"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"})
_TEXT_EXTENSIONS = (".txt", ".rst")
_HTML_EXTENSIONS = (".html", ".htm")


def stdlib_dir() -> str:
  """Folder of this interpreter's standard library."""
  return sysconfig.get_paths()["stdlib"]


def _files(root: str, extensions: tuple[str, ...]) -> list[str]:
  """Paths under `root` (relative, sorted) ending in one of `extensions`, test suites excluded."""
  found = []
  for folder, dirs, names in os.walk(root):
    dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
    rel = os.path.relpath(folder, root)
    found.extend(os.path.normpath(os.path.join(rel, n)) for n in names if n.endswith(extensions))
  return sorted(found)


def _read(path: str) -> str | None:
  try:
    with open(path, encoding="utf-8") as f:
      return f.read()
  except (OSError, UnicodeDecodeError):
    return None


def _topics(root: str) -> Iterator[tuple[str, str]]:
  """(name, text) of each topic of the reference manual stored in `pydoc_data/topics.py`."""
  source = _read(os.path.join(root, "pydoc_data", "topics.py"))
  if source is None:
    return
  for node in ast.parse(source).body:
    if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
      for key, value in zip(node.value.keys, node.value.values):
        if isinstance(key, ast.Constant) and isinstance(value, ast.Constant):
          yield str(key.value), str(value.value)


def _signature(node: ast.AST, qualname: str) -> str:
  if isinstance(node, ast.ClassDef):
    return f"class {qualname}"
  return f"{qualname}({ast.unparse(node.args)})"


def _docstrings(tree: ast.Module, module: str) -> str:
  """Module docstring, then each class/function docstring under its signature, in source order."""
  blocks = []
  doc = ast.get_docstring(tree)
  if doc:
    blocks.append(f"Module {module}\n\n{doc}")

  def visit(body: list[ast.stmt], prefix: str) -> None:
    for node in body:
      if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        qualname = f"{prefix}{node.name}"
        doc = ast.get_docstring(node)
        if doc:
          blocks.append(f"{_signature(node, qualname)}\n\n{doc}")
        if isinstance(node, ast.ClassDef):
          visit(node.body, qualname + ".")

  visit(tree.body, module + ".")
  return "\n\n".join(blocks)


def _module_name(rel_path: str) -> str:
  name = rel_path[:-3].replace(os.sep, ".")
  return name[: -len(".__init__")] if name.endswith(".__init__") else name


def _prose(root: str) -> Iterator[Document]:
  for name, text in _topics(root):
    yield Document(text=text, id=f"builtin:topics/{name}", metadata={"path": "pydoc_data/topics.py"})
  for rel in _files(root, (".py",)):
    source = _read(os.path.join(root, rel))
    try:
      tree = ast.parse(source) if source else None
    except (SyntaxError, ValueError):
      tree = None
    text = _docstrings(tree, _module_name(rel)) if tree else ""
    if text:
      yield Document(text=text, id=f"builtin:docstrings/{rel}", metadata={"path": rel})
  for rel in _files(root, _TEXT_EXTENSIONS + _HTML_EXTENSIONS):
    text = _read(os.path.join(root, rel))
    if text and text.strip():
      fmt = "html" if rel.endswith(_HTML_EXTENSIONS) else "text"
      yield Document(text=text, id=f"builtin:text/{rel}", metadata={"path": rel, "format": fmt})


def _code(root: str) -> Iterator[Document]:
  for rel in _files(root, (".py",)):
    text = _read(os.path.join(root, rel))
    if text and text.strip():
      yield Document(text=text, id=f"builtin:code/{rel}", metadata={"path": rel})


def iter_builtin(part: str, root: str | None = None) -> Iterator[Document]:
  """Documents of one part of the builtin corpus ('prose' or 'code'), in a fixed order."""
  if part not in PARTS:
    raise ValueError(f"builtin:{part} is unknown; use one of builtin:{', builtin:'.join(PARTS)}")
  root = root or stdlib_dir()
  return _prose(root) if part == "prose" else _code(root)
