"""The import rules of DESIGN.md: `engine` knows nothing of Qt or the app; `widgets` never imports `app`.

Every import counts, including those inside functions and `importlib.import_module("...")` calls,
because a lazy import of Qt in the engine still breaks a headless training script.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
QT = ("PySide6", "PyQt5", "PyQt6", "PySide2", "shiboken6", "shiboken2", "pyqtgraph")
RULES = {
    "engine": (*QT, "app", "widgets"),
    "widgets": ("app",),
}
# the Qt-free parts of `app`: models that test without a display
QT_FREE_APP = ("app/graph_model.py", "app/layout.py")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file, wherever it appears."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this file's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            if module:
                found.append((node.lineno, module))
            found += [(node.lineno, ".".join(filter(None, (module, alias.name)))) for alias in node.names]
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found.append((node.lineno, node.args[0].value))
    return sorted(found)


def _is_dynamic_import(func: ast.expr) -> bool:
    return (isinstance(func, ast.Name) and func.id == "__import__") or \
        (isinstance(func, ast.Attribute) and func.attr == "import_module")


def _forbidden(module: str, banned: tuple[str, ...]) -> bool:
    top = module.split(".")[0]
    return top in banned


def violations(package: str) -> list[str]:
    """'file:line imports module' for each import that breaks the package's rule."""
    banned = RULES[package]
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in imported_modules(path):
            if _forbidden(module, banned):
                out.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return out


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_imports_follow_the_rules(package):
    assert (ROOT / package).is_dir()
    assert violations(package) == [], f"{package} may not import {', '.join(RULES[package])}"


@pytest.mark.parametrize("path", QT_FREE_APP)
def test_qt_free_app_modules_import_no_qt(path):
    banned = (*QT, "widgets")
    assert [m for _, m in imported_modules(ROOT / path) if _forbidden(m, banned)] == []
    module = path[:-3].replace("/", ".")
    code = f"import {module}, sys; print(sorted(n for n in sys.modules if n.split('.')[0] in {banned!r}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"importing {module} loaded {result.stdout.strip()}"


def test_the_checker_sees_every_kind_of_import(tmp_path, monkeypatch):
    fake = tmp_path / "engine" / "sub"
    fake.mkdir(parents=True)
    (fake / "mod.py").write_text(
        "import numpy\n"
        "def lazy():\n"
        "    import pyqtgraph as pg\n"
        "    from PySide6 import QtCore\n"
        "    from ... import app\n"
        "    importlib.import_module('shiboken6')\n"
        "    __import__('widgets.graph')\n"
        "from .. import ops\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = [v.split(" imports ")[1] for v in violations("engine")]
    assert found == ["pyqtgraph", "PySide6", "PySide6.QtCore", "app", "shiboken6", "widgets.graph"]


CHECK_NO_QT = """
import importlib, pkgutil, sys
import engine
loaded = {name for name in sys.modules if name.split('.')[0] in BANNED}
for info in pkgutil.walk_packages(engine.__path__, 'engine.'):
    try:
        importlib.import_module(info.name)
    except Exception:  # a module that fails to import is its own tests' business
        pass
loaded |= {name for name in sys.modules if name.split('.')[0] in BANNED}
print(sorted(loaded))
"""


def test_importing_the_engine_loads_no_qt():
    banned = RULES["engine"]
    result = subprocess.run([sys.executable, "-c", f"BANNED = {banned!r}\n" + CHECK_NO_QT], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"importing engine loaded {result.stdout.strip()}"
