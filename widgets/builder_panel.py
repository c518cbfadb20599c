"""The model builder panel: a palette of layers, the layer sequence as a tree with nested blocks, an
argument editor, data and training choices, live shape checks, Build / Save / Load / Export.

    panel = BuilderPanel(services)               # services: app.builder.PanelServices (plain data in/out)
    panel.buildRequested.connect(window.build)   # the spec as JSON text, only when it checks out
    panel.set_document(doc); panel.document()    # the build document as a dict

The panel knows the build only as its JSON document. Every change asks `services.check(doc)` (after a
short pause in typing) and shows the answer at the layers: each row's output shape, or in red the
reason its input does not fit. Layers are added by double-click or by dragging from the palette, and
reordered by dragging (into Residual and Repeat blocks too) or with the arrow buttons. The palette sits beside
the layer list where the panel is wide enough for both; in a narrower panel "+ Add…" (Ins) pops it up.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QEvent, QPoint, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStyle,
    QTabWidget,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from widgets.arg_form import ArgForm
from widgets.build_setup import DataForm, TrainingForm
from widgets.elided_label import ElidedLabel
from widgets.layer_tree import ROLE, LayerTree, PaletteTree, path_of
from widgets.theme import ERROR_FIELD, ERROR_TEXT, MUTED_TEXT, OK_TEXT, SECONDARY_TEXT, follow_palette, pick, tint

PALETTE_CHARS = 17  # the palette's width beside the list, in average characters (longer names elide in the middle)
LIST_CHARS = 40  # the least width of the layer list beside the palette: "Conv2d(1, 8, 3, padding=1)  (N, 8, 28, 28)"
ADD_TIPS = {  # "+ Add…", with the palette beside the list (True) or popped up from the button (False)
    True: "Add a layer after the selected one (Ins): type a few letters of its name in the filter beside the list "
          "and press Enter, or double-click it in the palette",
    False: "Add a layer after the selected one (Ins): pick it from the palette, or type a few letters of its name "
           "and press Enter",
}


class BuilderPanel(QWidget):
    """The builder; see the module docstring. `services` answers in plain data (app.builder.PanelServices).

    Signals: buildRequested(spec_json) when Build is pressed on a build that checks out;
    documentChanged() after every edit.
    """

    buildRequested = Signal(str)
    documentChanged = Signal()

    def __init__(self, services, parent=None, check_delay_ms: int = 150) -> None:
        super().__init__(parent)
        self.services = services
        self.catalog = services.palette()
        self._layer_info = {e["type"]: e for e in self.catalog["layers"]}
        self._name = "model"
        self._report: dict = {"ok": False, "problems": [], "layers": []}
        self._loading = False
        self._timer = QTimer(self, singleShot=True, interval=check_delay_ms)
        self._timer.timeout.connect(self.check_now)
        self._palette_popup = _PalettePopup(self)

        self.tabs = QTabWidget()
        self.tabs.addTab(self._model_tab(), "Model")
        self.data = DataForm(self.catalog["datasets"], self.catalog["tasks"])
        self.data.changed.connect(self._changed)
        self.data.starterRequested.connect(self._use_starter)
        self.training = TrainingForm(self.catalog["losses"], self.catalog["optimizers"], self.catalog["schedulers"])
        self.training.changed.connect(self._changed)
        for form in self.training.forms.values():
            form.rejected.connect(self.check_now)
        self.tabs.addTab(self.data, "Data")
        self.tabs.addTab(self.training, "Training")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.build_button = QPushButton("Build")
        self.build_button.setDefault(True)
        self.build_button.setToolTip("Build the model, reset the session and pause at its first op")
        self.build_button.clicked.connect(self.request_build)
        buttons = QHBoxLayout()
        # tool buttons, as wide as their words: push buttons of 80 pixels or more each made the panel 385 wide
        for text, tip, slot in (("Save\u2026", "Save the build as a .json file", self._save_dialog),
                                ("Load\u2026", "Load a build saved as .json", self._load_dialog),
                                ("Export\u2026", "Export the build as a runnable Python script (.py)",
                                 self._export_dialog)):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.setSizePolicy(QSizePolicy.Policy.Minimum, self.build_button.sizePolicy().verticalPolicy())
            b.clicked.connect(slot)
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.build_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.set_document(services.default())

    # ---- the model tab ----------------------------------------------------------------------------
    def _model_tab(self) -> QWidget:
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter layers")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._filter_palette)
        self.palette = PaletteTree()
        self.palette.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # "LazyConv…pose2d": the kind and the dims
        self.palette.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.palette.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        groups: dict[str, QTreeWidgetItem] = {}
        for entry in self.catalog["layers"]:
            group = groups.get(entry["group"])
            if group is None:
                group = groups[entry["group"]] = QTreeWidgetItem(self.palette, [entry["group"]])
                group.setFlags(Qt.ItemFlag.ItemIsEnabled)
                group.setExpanded(entry["group"] in ("Blocks", "Linear", "Activations"))
            item = QTreeWidgetItem(group, [entry["type"]])
            item.setData(0, ROLE, entry["type"])
            item.setToolTip(0, f"{entry['type']}: {entry['doc']}")  # the name too: a narrow palette elides it
        follow_palette(self.palette, lambda: [group.setForeground(0, QBrush(QColor(pick(MUTED_TEXT))))
                                              for group in groups.values()])
        self.palette.itemDoubleClicked.connect(self._palette_activated)
        self.palette.dragStarting.connect(self._palette_popup.hide)  # the drop lands in the list under it
        for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):  # the keyboard's double-click
            enter = QShortcut(QKeySequence(key), self.palette, context=Qt.ShortcutContext.WidgetShortcut)
            enter.activated.connect(lambda: self._palette_activated(self.palette.currentItem()))
        self.filter.returnPressed.connect(self._to_palette)
        self.palette_box = QWidget()
        lv = QVBoxLayout(self.palette_box)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.filter)
        lv.addWidget(self.palette, 1)

        self.tree = LayerTree()
        self.tree.moved.connect(lambda src, parent, row: self.move_layer(src, parent, row))
        self.tree.dropped.connect(lambda kind, parent, row: self.add_layer(kind, [*parent, row]))
        self.tree.currentItemChanged.connect(lambda *_: self._show_args())
        follow_palette(self.tree, lambda: self._show_report(), now=False)  # its rows' colours
        tools = QHBoxLayout()
        tools.setContentsMargins(0, 0, 0, 0)
        self.add_button = QToolButton()
        self.add_button.setText("+ Add\u2026")
        self.add_button.setToolTip(ADD_TIPS[False])
        self.add_button.clicked.connect(self.show_palette)
        tools.addWidget(self.add_button)
        for text, tip, slot in (("\u2191", "Move up (Alt+Up)", lambda: self._nudge(-1)),
                                ("\u2193", "Move down (Alt+Down)", lambda: self._nudge(1)),
                                ("\u2715", "Remove (Del)", self._remove_current)):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            tools.addWidget(b)
        self.summary = ElidedLabel()  # "5 layers · 1,218 parameters", or "5 layers" where that does not fit
        self.summary.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        tint(self.summary, MUTED_TEXT)
        tools.addWidget(self.summary, 1)
        QShortcut(QKeySequence.StandardKey.Delete, self.tree, self._remove_current)
        QShortcut(QKeySequence(Qt.Key.Key_Insert), self.tree, self.show_palette,
                  context=Qt.ShortcutContext.WidgetShortcut)
        for keys, step in (("Alt+Up", -1), ("Alt+Down", 1)):
            QShortcut(QKeySequence(keys), self.tree, lambda s=step: self._nudge(s),
                      context=Qt.ShortcutContext.WidgetShortcut)
        middle = QWidget()
        mv = QVBoxLayout(middle)
        mv.setContentsMargins(0, 0, 0, 0)
        mv.addLayout(tools)  # above the list, level with the filter above the palette
        mv.addWidget(self.tree, 1)

        # the palette sits beside the list where the panel has the room for both (from about 430 pixels);
        # in a narrower panel it pops up from "+ Add…": beside a 200-pixel list it read "Hardshrin" and "LeakyReL"
        self._top = QSplitter(Qt.Orientation.Horizontal)
        self._top.setChildrenCollapsible(False)
        self._top.addWidget(middle)
        self._top.setStretchFactor(0, 1)
        self._palette_inline = False
        self._palette_popup.layout().addWidget(self.palette_box)

        self.args_box = QGroupBox("Arguments")
        self.layer_args = ArgForm()
        self.layer_args.changed.connect(self._layer_args_changed)
        self.layer_args.rejected.connect(self.check_now)
        self._args_scroll = QScrollArea()
        self._args_scroll.setWidgetResizable(True)
        self._args_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self._args_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._args_scroll.setWidget(self.layer_args)
        self.layer_doc = QLabel()
        self.layer_doc.setWordWrap(True)
        tint(self.layer_doc, SECONDARY_TEXT)
        bv = QVBoxLayout(self.args_box)
        bv.addWidget(self.layer_doc)
        bv.addWidget(self._args_scroll, 1)
        self._split = QSplitter(Qt.Orientation.Vertical)
        self._split.setChildrenCollapsible(False)
        self._split.addWidget(self._top)
        self._split.addWidget(self.args_box)
        self._split.setStretchFactor(0, 1)
        self._split.setStretchFactor(1, 0)
        self._split_by_person = False  # the person dragged the line between list and arguments: theirs from then on
        self._split.splitterMoved.connect(lambda *_: setattr(self, "_split_by_person", True))
        self._split.installEventFilter(self)  # the Model tab's page: resized, it places the palette
        return self._split

    # ---- where the palette goes --------------------------------------------------------------------
    def inline_width(self) -> int:
        """The least width of the panel at which the palette sits beside the layer list."""
        # the panel's margins and the tabs' frame around the page, as laid out (an estimate before the first show)
        around = self.width() - self._split.width() if self._split.width() < self.width() else 24
        return self._inline_page_width() + around

    def _inline_page_width(self) -> int:
        """The least width of the Model tab's page with the palette beside the list."""
        chars = self.fontMetrics().averageCharWidth()
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self)
        return (PALETTE_CHARS + LIST_CHARS) * chars + 2 * bar + 4 * self.tree.frameWidth() + self._top.handleWidth()

    def palette_inline(self) -> bool:
        """Whether the palette sits beside the layer list (else "+ Add…" pops it up)."""
        return self._palette_inline

    def show_palette(self) -> None:
        """Where a layer is picked to add: the filter beside the list, or the palette popped up under "+ Add…"."""
        if not self._palette_inline:
            popup, button = self._palette_popup, self.add_button
            size = QSize(self._popup_width(),
                         max(min(self.tree.height() + self.args_box.height(), 40 * self.fontMetrics().height()),
                             14 * self.fontMetrics().height()))
            below = button.mapToGlobal(QPoint(0, button.height()))
            screen = button.screen().availableGeometry() if button.screen() is not None else None
            if screen is not None and below.y() + size.height() > screen.bottom():  # above the button instead
                below.setY(max(screen.top(), button.mapToGlobal(QPoint(0, 0)).y() - size.height()))
            popup.setGeometry(QRect(below, size))
            popup.show()
        self.filter.setFocus()
        self.filter.selectAll()

    def _popup_width(self) -> int:
        """The popped-up palette's width: its longest name whole ("TransformerEncoderLayer"), as it has the room."""
        metrics, tree = self.palette.fontMetrics(), self.palette
        names = max(metrics.horizontalAdvance(name) for name in self._layer_info)
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self)
        return names + 2 * tree.indentation() + bar + 2 * tree.frameWidth() + 4 * metrics.averageCharWidth()

    def _place_palette(self) -> None:
        """Put the palette beside the list where the Model tab has the room, else in the popup."""
        inline = self._split.width() >= self._inline_page_width()
        if inline == self._palette_inline:
            return
        self._palette_inline = inline
        if inline:
            self._palette_popup.hide()
            self._top.insertWidget(0, self.palette_box)
            self._top.setStretchFactor(0, 0)
            self._top.setStretchFactor(1, 1)
            chars = self.fontMetrics().averageCharWidth()
            palette = PALETTE_CHARS * chars + self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
            self._top.setSizes([palette, max(self._top.width() - palette, 1)])
        else:
            self._palette_popup.layout().addWidget(self.palette_box)
        self.palette_box.show()
        self.add_button.setToolTip(ADD_TIPS[inline])

    def _fit_args(self) -> None:
        """Give the arguments under the list the height they ask for (at most half the tab), until the person
        sets the line between them: at 1024x640 the list kept three fifths and Linear's form showed two rows."""
        if self._split_by_person or not self._split.isVisible():
            return
        total = sum(self._split.sizes())
        # the box's title, its doc line and margins as laid out now, and the form's rows
        want = self.args_box.height() - self._args_scroll.height() + self.layer_args.sizeHint().height()
        args = min(want, total // 2)
        if total > 0 and abs(self._split.sizes()[1] - args) > 2:
            self._split.setSizes([total - args, args])

    def eventFilter(self, watched, event) -> bool:
        if watched is self._split and event.type() in (QEvent.Type.Resize, QEvent.Type.Show):
            self._place_palette()
            self._fit_args()
        return False

    # ---- the document ---------------------------------------------------------------------------
    def document(self) -> dict:
        """The build document as a dict (see app.builder.spec)."""
        return {"format": "tapescope-build", "version": 1, "name": self._name,
                "layers": [self._layer_of(self.tree.topLevelItem(i)) for i in range(self.tree.topLevelItemCount())],
                "data": self.data.values(), "training": self.training.values()}

    def document_json(self) -> str:
        """The build document as indented JSON text."""
        return json.dumps(self.document(), indent=2)

    def _layer_of(self, item: QTreeWidgetItem) -> dict:
        stored = item.data(0, ROLE)
        layer = {"type": stored["type"]}
        if stored.get("args"):
            layer["args"] = dict(stored["args"])
        children = [self._layer_of(item.child(i)) for i in range(item.childCount())]
        if children:
            layer["children"] = children
        return layer

    def set_document(self, doc: dict) -> None:
        """Show a build document (as read by services.load) and check it."""
        self._loading = True
        try:
            self._name = doc.get("name", "model")
            self.tree.clear()
            for layer in doc.get("layers", []):
                self._add_item(None, -1, layer)
            self.tree.expandAll()
            self.data.set_values(doc.get("data", {}))
            self.training.set_values(doc.get("training", {}))
        finally:
            self._loading = False
        if self.tree.topLevelItemCount():
            self.tree.setCurrentItem(self.tree.topLevelItem(0))
        self._show_args()
        self._changed()

    def _add_item(self, parent: QTreeWidgetItem | None, row: int, layer: dict) -> QTreeWidgetItem:
        item = QTreeWidgetItem([layer["type"], ""])
        item.setData(0, ROLE, {"type": layer["type"], "args": dict(layer.get("args", {}))})
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled
        if self._layer_info.get(layer["type"], {}).get("children"):
            flags |= Qt.ItemFlag.ItemIsDropEnabled
        item.setFlags(flags)
        item.setText(0, self._label(item.data(0, ROLE)))
        siblings = parent.childCount() if parent is not None else self.tree.topLevelItemCount()
        row = siblings if row < 0 or row > siblings else row
        if parent is None:
            self.tree.insertTopLevelItem(row, item)
        else:
            parent.insertChild(row, item)
        for child in layer.get("children", []):
            self._add_item(item, -1, child)
        return item

    def _label(self, layer: dict) -> str:
        """'Conv2d(1, 8, 3, padding=1)': the type with its set arguments, read as the constructor call would:
        positional while they follow the signature's order without a gap, by name after one."""
        args = layer.get("args", {})
        if layer["type"] == "Repeat":
            return f"Repeat \u00d7{args.get('times', 2)}"
        # the row's dict came back through Qt sorted by name: the palette's list gives the signature order
        order = [a["name"] for a in self._layer_info.get(layer["type"], {}).get("args", [])]
        names = [n for n in order if n in args] + [n for n in args if n not in order]
        parts, gap = [], False
        for i, name in enumerate(names):
            gap = gap or i >= len(order) or order[i] != name
            value = args[name]
            text = f"({', '.join(map(str, value))})" if isinstance(value, list) else str(value)
            parts.append(f"{name}={text}" if gap else text)
        parts = parts[:4]
        if len(args) > 4:
            parts.append("\u2026")
        return f"{layer['type']}({', '.join(parts)})" if parts else layer["type"]

    def item_at(self, path: list[int]) -> QTreeWidgetItem | None:
        """The tree row of the layer at `path`."""
        item = None
        for i in path:
            count = item.childCount() if item is not None else self.tree.topLevelItemCount()
            if not 0 <= i < count:
                return None
            item = item.child(i) if item is not None else self.tree.topLevelItem(i)
        return item

    # ---- editing the sequence ---------------------------------------------------------------------
    def add_layer(self, kind: str, path: list[int] | None = None) -> list[int]:
        """Insert a new `kind` layer at `path` (default: after the selected row); returns its path."""
        if path is None:
            path = self._insertion_path()
        parent = self.item_at(path[:-1]) if len(path) > 1 else None
        if len(path) > 1 and (parent is None or not parent.flags() & Qt.ItemFlag.ItemIsDropEnabled):
            return []
        self.check_now()  # the incoming shape must be current to size the layer
        layer = self.services.new_layer(self.document(), kind, path)
        item = self._add_item(parent, path[-1], layer)
        if parent is not None:
            parent.setExpanded(True)
        self.tree.setCurrentItem(item)
        self._changed()
        return path_of(item)

    def _insertion_path(self) -> list[int]:
        current = self.tree.currentItem()
        if current is None:
            return [self.tree.topLevelItemCount()]
        if current.flags() & Qt.ItemFlag.ItemIsDropEnabled and current.childCount() == 0:
            return [*path_of(current), 0]  # an empty block: fill it
        path = path_of(current)
        return [*path[:-1], path[-1] + 1]

    def remove_layer(self, path: list[int]) -> None:
        """Delete the layer at `path` (with its children)."""
        item = self.item_at(path)
        if item is None:
            return
        parent = item.parent()
        (parent.removeChild(item) if parent is not None else
         self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item)))
        self._changed()

    def move_layer(self, source: list[int], parent_path: list[int], row: int) -> list[int]:
        """Move the layer at `source` to position `row` under `parent_path` ([] = top level); its new path."""
        item = self.item_at(source)
        parent = self.item_at(parent_path) if parent_path else None
        if item is None or (parent_path and (parent is None or not parent.flags() & Qt.ItemFlag.ItemIsDropEnabled)):
            return source
        if parent_path[:len(source)] == source:  # into itself or its own children
            return source
        old_parent = item.parent()
        if old_parent is parent and source[-1] < row:
            row -= 1  # taking the row out shifts the later rows up
        if old_parent is not None:
            old_parent.removeChild(item)
        else:
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
        count = parent.childCount() if parent is not None else self.tree.topLevelItemCount()
        row = max(0, min(row, count))
        if parent is not None:
            parent.insertChild(row, item)
            parent.setExpanded(True)
        else:
            self.tree.insertTopLevelItem(row, item)
        _expand(item)
        self.tree.setCurrentItem(item)
        self._changed()
        return path_of(item)

    def _nudge(self, step: int) -> None:
        item = self.tree.currentItem()
        if item is None:
            return
        path = path_of(item)
        siblings = item.parent().childCount() if item.parent() else self.tree.topLevelItemCount()
        target = path[-1] + step
        if 0 <= target < siblings:
            self.move_layer(path, path[:-1], target + (step > 0))

    def _remove_current(self) -> None:
        item = self.tree.currentItem()
        if item is not None:
            self.remove_layer(path_of(item))

    def _to_palette(self) -> None:
        """Enter in the filter: the layer it names becomes current in the palette, which takes focus; the
        layer named exactly ("tanh": Tanh, not Hardtanh), else one whose name starts so, else the first shown."""
        text = self.filter.text().strip().lower()
        shown = [group.child(i) for g in range(self.palette.topLevelItemCount())
                 if not (group := self.palette.topLevelItem(g)).isHidden()
                 for i in range(group.childCount()) if not group.child(i).isHidden()]
        if shown:
            best = min(range(len(shown)), key=lambda i: (shown[i].text(0).lower() != text,
                                                         not shown[i].text(0).lower().startswith(text), i))
            self.palette.setCurrentItem(shown[best])
            self.palette.setFocus()

    def _palette_activated(self, item: QTreeWidgetItem | None) -> None:
        kind = item.data(0, ROLE) if item is not None else None
        if kind:
            self.add_layer(kind)
            if self._palette_popup.isVisible():  # picked: the popup goes, the new layer's arguments show
                self._palette_popup.hide()
                self.tree.setFocus()

    def _filter_palette(self, text: str) -> None:
        text = text.strip().lower()
        for g in range(self.palette.topLevelItemCount()):
            group = self.palette.topLevelItem(g)
            visible = 0
            for i in range(group.childCount()):
                child = group.child(i)
                hide = bool(text) and text not in child.text(0).lower()
                child.setHidden(hide)
                visible += not hide
            group.setHidden(visible == 0)
            if text:
                group.setExpanded(True)

    # ---- arguments --------------------------------------------------------------------------------
    def _show_args(self) -> None:
        if self.layer_args.unparsed():  # leaving a field that did not parse: its layer keeps its value
            self._timer.start()
        item = self.tree.currentItem()
        if item is None:
            self.args_box.setTitle("Arguments")
            self.layer_doc.setText("Select a layer to edit its arguments.")
            self.layer_args.set_args([], {})
            return
        layer = item.data(0, ROLE)
        info = self._layer_info.get(layer["type"], {"args": [], "doc": "unknown layer type"})
        self.args_box.setTitle(f"{layer['type']} \u2014 layer {'.'.join(map(str, path_of(item)))}")
        self.layer_doc.setText(info["doc"])
        self.layer_args.set_args(info["args"], layer.get("args", {}))
        self._mark_layer_args()
        QTimer.singleShot(0, self._fit_args)  # the form's new rows show (and measure) once the event loop turns

    def _layer_args_changed(self, values: dict) -> None:
        item = self.tree.currentItem()
        if item is None:
            return
        layer = dict(item.data(0, ROLE))
        layer["args"] = values
        item.setData(0, ROLE, layer)
        item.setText(0, self._label(layer))
        self._changed()

    # ---- data and training ----------------------------------------------------------------------
    def set_data_file(self, path: str) -> None:
        """Use a person's .npz or .csv file (the dataset follows the file's extension)."""
        self.data.set_file(path)

    def _use_starter(self, name: str) -> None:
        doc = self.services.starter(name)
        doc["data"] = {**doc["data"], **{k: v for k, v in self.data.values().items() if k != "name"}}
        self.set_document(doc)

    # ---- checking -----------------------------------------------------------------------------------
    def _changed(self) -> None:
        if self._loading:
            return
        self.build_button.setEnabled(False)  # until the check of this version says it is fine
        self._timer.start()
        self.documentChanged.emit()

    def check_now(self) -> dict:
        """Check the current document now (the panel also does so shortly after each edit)."""
        self._timer.stop()
        report = self.services.check(self.document())
        typed = self._unparsed_problems()
        if typed:  # Build would use the value from before the typing, as if the field said so
            report = {**report, "ok": False, "problems": typed + report["problems"]}
        self._report = report
        self._show_report()
        return self._report

    def _unparsed_problems(self) -> list[dict]:
        """Problem dicts for the fields whose typed text is not a value."""
        out = []
        item = self.tree.currentItem()
        if item is not None:
            path = path_of(item)
            where = f"layer {'.'.join(map(str, path))} ({item.data(0, ROLE)['type']})"
            out += [{"section": "layers", "path": path, "arg": name, "message": f"{where}: {message}"}
                    for name, message in self.layer_args.unparsed().items()]
        for kind, form in self.training.forms.items():
            out += [{"section": "training", "path": [], "arg": f"{kind}.{name}",
                     "message": f"{self.training.combos[kind].currentText()}: {message}"}
                    for name, message in form.unparsed().items()]
        return out

    def report(self) -> dict:
        """The latest check's answer (per-layer shapes and problems, plain data)."""
        return self._report

    def _show_report(self) -> None:
        r = self._report
        shapes = {tuple(s["path"]): s for s in r.get("layers", [])}
        at_layer = {tuple(p["path"]): p["message"] for p in r["problems"] if p["section"] == "layers" and p["path"]}
        stack = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while stack:
            item = stack.pop()
            stack += [item.child(i) for i in range(item.childCount())]
            path = tuple(path_of(item))
            shape = shapes.get(path)
            error = at_layer.get(path) or (shape or {}).get("error", "")
            if error:
                expected = (shape or {}).get("expected")
                got = (shape or {}).get("in")
                item.setText(1, f"\u2717 gets {got}, needs {expected}" if expected else "\u2717 does not fit")
                for col in (0, 1):
                    item.setForeground(col, QBrush(QColor(pick(ERROR_TEXT))))
                    item.setBackground(col, QBrush(QColor(pick(ERROR_FIELD))))
                    item.setToolTip(col, error)
            else:
                item.setText(1, (shape or {}).get("out") or "")
                item.setForeground(0, QBrush(self.tree.palette().text().color()))
                item.setForeground(1, QBrush(QColor(pick(MUTED_TEXT))))
                for col in (0, 1):
                    item.setData(col, Qt.ItemDataRole.BackgroundRole, None)
                tip = f"in {shape['in']} \u2192 out {shape['out']}" if shape and shape.get("out") else ""
                item.setToolTip(0, "\n".join(filter(None, (item.text(0), tip))))  # whole, where a narrow list elides it
                item.setToolTip(1, tip)
        problems = r["problems"]
        if problems:
            tint(self.status, ERROR_TEXT)
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            self.status.setText(f"\u2717 {problems[0]['message']}{more}")
        else:
            tint(self.status, OK_TEXT)
            self.status.setText(f"\u2713 Ready: {r['input']} \u2192 {r['output']}, {r['parameters']:,} parameters")
        count = sum(1 for _ in _walk(self.tree))
        params = f" \u00b7 {r['parameters']:,} parameters" if r["ok"] else ""
        self.summary.setText(f"{count} layers{params}", short=f"{count} layers")
        self.data.summary.setText(r.get("data") or "")
        self.build_button.setEnabled(bool(r["ok"]))
        self.build_button.setToolTip(problems[0]["message"] if problems else "Build and pause at the first op")
        self._mark_layer_args()
        self.training.mark(problems)
        self.data.mark(problems)

    def _mark_layer_args(self) -> None:
        item = self.tree.currentItem()
        self.layer_args.clear_marks()
        if item is None:
            return
        path = path_of(item)
        for p in self._report.get("problems", []):
            if p["section"] == "layers" and p["path"] == path and p["arg"]:
                self.layer_args.mark(p["arg"], p["message"])

    def status_text(self) -> str:
        """What the status line says."""
        return self.status.text()

    # ---- build, files -----------------------------------------------------------------------------
    def request_build(self) -> bool:
        """Emit buildRequested(spec_json) if the build checks out; else show why and return False."""
        report = self.check_now()
        if not report["ok"]:
            return False
        self.buildRequested.emit(self.document_json())
        return True

    def save_to(self, path: str) -> bool:
        """Write the document as JSON to `path`."""
        try:
            Path(path).write_text(self.services.dump(self.document()), encoding="utf-8")
        except (OSError, ValueError) as err:
            self._fail(f"cannot save {Path(path).name}: {err}")
            return False
        return True

    def load_from(self, path: str) -> bool:
        """Read a build document from `path`; a bad file leaves the build as it was and says why."""
        try:
            text = Path(path).read_text(encoding="utf-8")
            doc = self.services.load(text, Path(path).name)
        except (OSError, UnicodeDecodeError, ValueError) as err:
            self._fail(str(err) if isinstance(err, ValueError) and not isinstance(err, UnicodeDecodeError)
                       else f"{Path(path).name}: cannot be read ({type(err).__name__})")
            return False
        self.set_document(doc)
        return True

    def export_to(self, path: str) -> bool:
        """Write the build as a runnable Python script to `path`."""
        try:
            Path(path).write_text(self.services.export(self.document()), encoding="utf-8")
        except (OSError, ValueError) as err:
            self._fail(str(err))
            return False
        return True

    def _fail(self, message: str) -> None:
        tint(self.status, ERROR_TEXT)
        self.status.setText(f"\u2717 {message}")

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save build", f"{self._name}.json", "Build (*.json)")
        if path:
            self.save_to(path)

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load build", "", "Build (*.json)")
        if path:
            self.load_from(path)

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export script", f"{self._name.replace(' ', '_')}.py",
                                              "Python (*.py)")
        if path:
            self.export_to(path)


def _walk(tree: QTreeWidget):
    stack = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    while stack:
        item = stack.pop()
        yield item
        stack += [item.child(i) for i in range(item.childCount())]


def _expand(item: QTreeWidgetItem) -> None:
    item.setExpanded(True)
    for i in range(item.childCount()):
        _expand(item.child(i))


class _PalettePopup(QFrame):
    """The palette (its filter above it) popped up under "+ Add…" in a panel too narrow to show it beside the list;
    Escape closes it."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.hide)
