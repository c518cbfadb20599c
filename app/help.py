"""What the File > Open Example and Help menus show: the example scripts, the keyboard shortcuts, the About box.

    examples = find_examples()                   # resources/examples/*.py, the NaN demo first
    ShortcutsDialog(window.menuBar(), window)    # every action with a shortcut, grouped as the menus are
    AboutDialog(window)                          # versions, with a Copy button for a bug report

The examples and documents are found beside the installed packages (`pip install -e .` keeps resources/,
docs/ and README.md next to app/); a wheel without them has no examples and no documents to show.
"""

from __future__ import annotations

import ast
import html
import importlib.util
import platform
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMenu,
    QMenuBar,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

ROOT = Path(__file__).resolve().parent.parent  # the project folder: app/, resources/, docs/, README.md
EXAMPLES_DIR = ROOT / "resources" / "examples"
DOCUMENTS = {"tape_format": ROOT / "docs" / "tape-format.md", "documentation": ROOT / "README.md"}

# Known examples in menu order, with their menu text; the NaN demo is what a first debugging session wants.
# A script of the folder that is not named here is listed after these, under its file name.
KNOWN_EXAMPLES = (
    ("nan_demo", "Find Where a &NaN Starts", "F5 stops where its updates outgrow the weights (the cause), then at "
                                             "the op where the first NaN appears."),
    ("mlp_spirals", "&MLP on Two Spirals", ""),
    ("cnn_glyphs", "&CNN on Drawn Glyphs", ""),
    ("char_lstm", "Character &LSTM", ""),
    ("tiny_transformer", "Tiny &Transformer", ""),
)


@dataclass(frozen=True)
class Example:
    """One example script: its path, menu text, first docstring line and what to tell a person opening it."""

    path: Path
    text: str
    summary: str
    hint: str = ""


def find_examples(folder: Path | None = None) -> list[Example]:
    """The example scripts in `folder` (EXAMPLES_DIR), known ones first in KNOWN_EXAMPLES order; [] if the
    folder is missing."""
    folder = folder or EXAMPLES_DIR
    if not folder.is_dir():
        return []
    scripts = {p.stem: p for p in folder.glob("*.py") if not p.name.startswith("_")}
    examples = []
    for stem, text, hint in KNOWN_EXAMPLES:
        path = scripts.pop(stem, None)
        if path is not None:
            examples.append(Example(path, f"{text} ({path.name})", _summary(path), hint))
    return examples + [Example(path, path.name, _summary(path)) for _, path in sorted(scripts.items())]


def _summary(path: Path) -> str:
    """The first line of the script's docstring ("" when it has none or does not parse)."""
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return ""
    return doc.strip().splitlines()[0] if doc else ""


def fill_examples_menu(menu: QMenu, open_example, folder: Path | None = None) -> None:
    """One entry per example script of `folder` (EXAMPLES_DIR) calling `open_example(example)`; one disabled
    entry saying so when there are none."""
    folder = folder or EXAMPLES_DIR
    examples = find_examples(folder)
    menu.clear()
    menu.setToolTipsVisible(True)
    if not examples:
        menu.addAction(f"No examples: {folder} is missing").setEnabled(False)
        return
    for example in examples:
        action = menu.addAction(example.text)
        action.setToolTip(example.summary or example.path.name)
        action.setStatusTip(example.summary or str(example.path))
        action.triggered.connect(lambda _=False, e=example: open_example(e))
        if example.path.stem == "nan_demo" and example is not examples[-1]:
            menu.addSeparator()  # the run that goes wrong, apart from the models that train well


def action_name(action: QAction) -> str:
    """An action's text as a menu shows it: no mnemonic &, no trailing ellipsis."""
    return action.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("\u2026")


def shortcut_groups(menu_bar: QMenuBar, window: QWidget | None = None) -> list[tuple[str, list[QAction]]]:
    """(menu title, its actions that have a shortcut, submenus included) for each menu of the bar, then
    ("Other", ...) for the window's actions with a shortcut that no menu holds."""
    groups, seen = [], set()
    for top in menu_bar.actions():
        if top.menu() is None:
            continue
        actions = [a for a in _menu_actions(top.menu()) if not a.shortcut().isEmpty()]
        seen.update(actions)
        if actions:
            groups.append((action_name(top), actions))
    # QWidget.actions, not window.actions: MainWindow keeps its dict of actions under that name
    added = QWidget.actions(window) if window is not None else []
    other = [a for a in added if a not in seen and not a.shortcut().isEmpty()]
    if other:
        groups.append(("Other", other))
    return groups


def _menu_actions(menu: QMenu) -> list[QAction]:
    actions = []
    for action in menu.actions():
        if action.menu() is not None:
            actions += _menu_actions(action.menu())
        elif not action.isSeparator() and action not in actions:
            actions.append(action)
    return actions


def _submenus(menu: QMenu, path: str = "") -> dict[QAction, str]:
    """Each action of `menu`'s submenus -> the submenus it is in ("Go to Panel"), as the help names it."""
    found = {}
    for action in menu.actions():
        sub = action.menu()
        if sub is not None:
            inner = f"{path} \u203a {action_name(action)}" if path else action_name(action)
            found.update({a: inner for a in sub.actions() if a.menu() is None})
            found.update(_submenus(sub, inner))
    return found


def native(action: QAction) -> str:
    """The action's shortcuts in the platform's own notation (Ctrl+F; ⌘F on macOS)."""
    return ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts())


class ShortcutsDialog(QDialog):
    """Every action with a shortcut, read from the menus when the dialog opens, so it never goes stale."""

    def __init__(self, menu_bar: QMenuBar, window: QWidget | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent if parent is not None else window)
        self.setWindowTitle("Keyboard Shortcuts")
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Action", "Shortcut"])
        self.tree.setRootIsDecorated(False)
        self.tree.setItemsExpandable(False)
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.NoSelection)
        self.tree.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        bold = self.tree.font()
        bold.setBold(True)
        groups = shortcut_groups(menu_bar, window)
        # an item of a submenu says which ("Go to Panel \u203a Alerts"): "Alerts" alone read as the Alerts panel's own
        where = {a: path for top in menu_bar.actions() if top.menu() is not None
                 for a, path in _submenus(top.menu()).items()}
        for title, actions in groups:
            group = QTreeWidgetItem(self.tree, [title])
            group.setFont(0, bold)
            group.setFirstColumnSpanned(True)
            for action in actions:
                name = f"{where[action]} \u203a {action_name(action)}" if action in where else action_name(action)
                item = QTreeWidgetItem(group, [name, native(action)])
                item.setToolTip(0, action.statusTip())
        self.tree.expandAll()
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)
        self.tree.resizeColumnToContents(1)
        self.tree.setColumnWidth(1, self.tree.columnWidth(1) + 24)  # not flush with the frame
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        box = QVBoxLayout(self)
        box.addWidget(self.tree)
        box.addWidget(buttons)
        rows = sum(1 + len(actions) for _, actions in groups)
        row = self.tree.sizeHintForRow(0) or 20
        self.resize(440, min(720, row * (rows + 2) + 70))

    def rows(self) -> list[tuple[str, str, str]]:
        """(group, action, shortcut) for each row shown."""
        tree = self.tree
        return [(tree.topLevelItem(g).text(0), tree.topLevelItem(g).child(i).text(0),
                 tree.topLevelItem(g).child(i).text(1))
                for g in range(tree.topLevelItemCount()) for i in range(tree.topLevelItem(g).childCount())]


def about_lines() -> list[str]:
    """Tapescope's version and those of what it runs on, one per line, as a bug report wants them."""
    import numpy
    import pyqtgraph
    import PySide6
    from PySide6.QtCore import qVersion

    import engine

    return [f"Tapescope {engine.__version__}",
            f"Python {platform.python_version()}",
            f"OS {platform.platform()}",
            f"numpy {numpy.__version__}",
            f"CuPy {_cupy_version()}",
            f"GPU {_gpu()}",
            f"PySide6 {PySide6.__version__} (Qt {qVersion()})",
            f"pyqtgraph {pyqtgraph.__version__}"]


def _cupy_version() -> str:
    if importlib.util.find_spec("cupy") is None:
        return "not installed"
    from engine import backend

    cp = backend.cupy_module()
    return cp.__version__ if cp is not None else "installed, but it does not import"


def _gpu() -> str:
    from engine import cuda

    count = cuda.device_count()
    if count == 0:
        return "none usable"
    try:
        name = cuda.get_device_name(0)
    except Exception as err:  # a driver that sees a device but cannot describe it
        name = f"device 0 ({err})"
    return name + (f" (+{count - 1} more)" if count > 1 else "")


class AboutDialog(QDialog):
    """Tapescope's version and its dependencies', with Copy for a bug report."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Tapescope")
        self.lines = about_lines()
        title = QLabel("<h2>Tapescope</h2>A visual debugger for dynamic computational graphs.")
        title.setWordWrap(True)
        rows = "".join(f"<tr><td style='padding-right:14px'><b>{key}</b></td><td>{html.escape(value)}</td></tr>"
                       for key, _, value in (line.partition(" ") for line in self.lines))
        self.versions = QLabel(f"<table>{rows}</table>")
        self.versions.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = buttons.addButton("&Copy", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.setToolTip("Copy these versions, for a bug report")
        self.copy_button.clicked.connect(self.copy)
        buttons.rejected.connect(self.reject)
        box = QVBoxLayout(self)
        box.setSpacing(12)
        box.addWidget(title)
        box.addWidget(self.versions)
        box.addWidget(buttons)

    def copy(self) -> None:
        """Put the version lines on the clipboard."""
        QGuiApplication.clipboard().setText("\n".join(self.lines) + "\n")
