"""File > Export Tape… in the window, what `tapescope record` says about alerts, the Output panel's notes in a
narrow panel, and a first start's frame on the screen."""

import io
import json
import os
import shutil
import textwrap
import threading

import pytest
from PySide6.QtCore import Qt

import app.tape_export
import engine
import engine.nn
import engine.tape
from app.cli import main
from app.tape_export import FORMATS
from engine.debug.alert_text import KINDS
from engine.tape.export import export
from tests.app.test_window import TIMEOUT
from tests.shots import shoot

# log of a negative number inside a module, in the third step
NAN_SCRIPT = """
    import numpy as np
    import engine
    import engine.nn as nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x, step):
            h = self.fc(x)
            return (h * 0.0 - 1.0).log() if step == 2 else h


    model = nn.Sequential(Net())
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x = engine.randn(4, 3)
    for step in range(4):
        opt.zero_grad()
        with np.errstate(invalid="ignore"):
            loss = model[0](x, step).sum()
        loss.backward()
        opt.step()
"""
CLEAN_SCRIPT = """
    import engine
    import engine.nn as nn

    fc = nn.Linear(3, 2)
    opt = engine.optim.SGD(fc.parameters(), lr=0.01)
    x = engine.randn(4, 3)
    for step in range(3):
        opt.zero_grad()
        fc(x).pow(2).mean().backward()
        opt.step()
"""


def _script(folder, name: str, body: str) -> str:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return str(path)


@pytest.fixture(scope="module")
def nan_tape(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nan")
    tape = folder / "nan.tape"
    assert main(["record", _script(folder, "nan_run.py", NAN_SCRIPT), "-o", str(tape)]) == 0
    return str(tape)


@pytest.fixture(scope="module")
def big_tape(tmp_path_factory):
    """1,000 small training steps, 7,000 events: an export reports its progress a few times."""
    tape = tmp_path_factory.mktemp("big") / "big.tape"
    fc = engine.nn.Linear(2, 1)
    opt = engine.optim.SGD(fc.parameters(), lr=0.01)
    x = engine.ones(1, 2)
    with engine.tape.record(tape, "structure", max_bytes=0):
        for _ in range(1000):
            opt.zero_grad()
            fc(x).sum().backward()
            opt.step()
    return str(tape)


@pytest.fixture
def slow_export(monkeypatch):
    """The export worker waits at its second progress report until the event returned is set: a big tape,
    caught while it is being written."""
    go_on = threading.Event()
    progress = app.tape_export.ExportJob._progress

    def held(job, n):
        if job._done:
            assert go_on.wait(TIMEOUT / 1000)
        progress(job, n)

    monkeypatch.setattr(app.tape_export.ExportJob, "_progress", held)
    yield go_on
    go_on.set()


def _exported(tape: str, fmt: str) -> str:
    """What engine.tape.export writes for `tape` (what `tapescope export` writes)."""
    out = io.StringIO()
    with engine.tape.open(tape) as t:
        export(t, fmt, out)
    return out.getvalue()


def _message(window) -> str:
    return window.message_bar.text()


# ---- tapescope record: the summary names the alerts --------------------------------------------------
def test_record_says_where_the_first_nan_came_from(tmp_path, capsys):
    tape = tmp_path / "run.tape"
    assert main(["record", _script(tmp_path, "nan_run.py", NAN_SCRIPT), "-o", str(tape)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("tapescope record: ") and "written to" in err[0]
    # one kind: the header names it, once, and its line says where it first appeared
    assert err[1:] == ["  1 alert: NaN/Inf (forward)",
                       "    NaN/Inf (forward)  first at iteration 2  log in Sequential.0 (nan_run.py:14)"]


def test_record_says_which_layer_or_parameter_an_optimizer_steps_alert_is_about(tmp_path, capsys):
    # the example's Sequential names its layers '1' and '3': "first in '3'" read like a number
    example = os.path.join(os.path.dirname(app.__file__), "..", "resources", "examples", "nan_demo.py")
    assert main(["record", example, "-o", str(tmp_path / "nan.tape")]) == 0
    err = capsys.readouterr().err.splitlines()
    # (and where to change it: the line that makes the optimizer with its lr)
    assert "    learning rate too high  first at iteration 2  layer '3' (nan_demo.py:54)" in err


MANY_KINDS_SCRIPT = """
    import engine
    import engine.nn as nn
    import engine.nn.functional as F


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.the_stack_of_layers_under_a_name_long_enough_to_need_eliding = nn.Sequential(
                nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))

        def forward(self, x):
            return self.the_stack_of_layers_under_a_name_long_enough_to_need_eliding(x)


    engine.manual_seed(0)
    x, y = engine.randn(256, 64) * 4, engine.randint(0, 10, (256,))
    model = Net()
    opt = engine.optim.SGD(model.parameters(), lr=3.0)
    for step in range(40):
        idx = engine.randperm(256)[:64]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
"""


def test_record_counts_the_alerts_per_kind_then_says_where_each_kind_first_appeared(tmp_path, capsys):
    # the lines read "1 alert: non-finite values first at ..." / "3 alerts: updates too large ... first in
    # layer '8'": counts and findings run together, no header, and a deep module path ran past the terminal
    tape = tmp_path / "many.tape"
    assert main(["record", _script(tmp_path, "many.py", MANY_KINDS_SCRIPT), "-o", str(tape)]) == 0
    err = capsys.readouterr().err.splitlines()
    with engine.tape.open(tape) as t:
        alerts = t.alerts()
    kinds = {}
    for a in alerts:
        kinds.setdefault(a.kind, []).append(a)
    assert len(kinds) >= 3 and any(len(found) > 1 for found in kinds.values())
    header, *rest = err[1:]
    assert header.startswith(f"  {len(alerts)} alerts of {len(kinds)} kinds: ")
    rows = [line for line in rest if "first at iteration" in line]
    continued = rest[:len(rest) - len(rows)]  # the header's counts, wrapped
    counts = " ".join([header, *continued])
    for kind, found in kinds.items():
        name = KINDS[kind][0]
        assert f"{name} \u00d7{len(found)}" in counts
        (row,) = [line for line in rows if line.startswith(f"    {name}  ")]
        assert f"first at iteration {found[0].iteration} " in row
    assert rows[0].startswith("    NaN/Inf (forward)")  # the first NaN leads
    assert len(rows) == len(kinds)
    assert all(len(line) <= 100 for line in err[1:])
    nan_row = rows[0]
    assert nan_row.endswith("(many.py:15)") and "\u2026" in nan_row  # the module path gave way, not the line
    # the rows' columns line up
    assert len({row.index("first at") for row in rows}) == 1


def test_record_is_quiet_without_alerts_and_says_when_none_were_checked(tmp_path, capsys):
    script = _script(tmp_path, "clean.py", CLEAN_SCRIPT)
    assert main(["record", script, "-o", str(tmp_path / "a.tape")]) == 0
    assert capsys.readouterr().err.splitlines()[1:] == []  # the summary line alone
    assert main(["record", _script(tmp_path, "nan_run.py", NAN_SCRIPT), "-o", str(tmp_path / "b.tape"),
                 "--capture", "structure"]) == 0
    assert capsys.readouterr().err.splitlines()[1:] == [
        "  alerts: none checked (--capture structure records no values)"]


# ---- File > Export Tape… -------------------------------------------------------------------------------
def test_export_is_offered_only_with_a_tape(qtbot, window, nan_tape):
    export_action = window.actions["export"]
    assert export_action in window.menuBar().actions()[0].menu().actions()  # in the File menu
    assert not export_action.isEnabled()
    window.open_demo()  # live, not recording: nothing to export
    assert not export_action.isEnabled()
    assert window.open_tape(nan_tape)
    assert export_action.isEnabled()


def test_export_dialog_writes_each_format_as_the_command_line_does(qtbot, window, nan_tape, tmp_path):
    assert window.open_tape(nan_tape)
    for fmt in FORMATS:
        window.actions["export"].trigger()
        dialog = window.exporter.dialog
        qtbot.waitUntil(dialog.isVisible, timeout=TIMEOUT)
        assert dialog.nameFilters() == [f.name_filter for f in FORMATS]
        dialog.selectNameFilter(fmt.name_filter)
        dialog.filterSelected.emit(fmt.name_filter)  # what choosing it in the dialog's list does
        assert dialog.selectedFiles()[0].endswith("nan" + fmt.suffix)  # the name follows the format
        target = tmp_path / f"out-{fmt.name}"  # typed without an ending: the format's is added
        dialog.selectFile(str(target))
        dialog.accept()
        written = str(target) + fmt.suffix
        qtbot.waitUntil(lambda: not window.exporter.busy, timeout=TIMEOUT)
        assert _message(window).startswith(f"Exported nan.tape to {written} ({fmt.title}"), _message(window)
        with open(written, encoding="utf-8") as f:
            text = f.read()
        assert text == _exported(nan_tape, fmt.name)
        if fmt.name != "dot":
            json.loads(text)
        assert not window.exporter.progress.isVisible()
        assert window.actions["export"].isEnabled()
    assert sorted(os.listdir(tmp_path)) == sorted(["settings.ini", "out-perfetto.trace.json", "out-dot.dot",
                                                   "out-json.json"])  # no part files left


def test_a_big_export_shows_progress_off_the_gui_thread_and_cancel_writes_nothing(qtbot, window, big_tape,
                                                                                   tmp_path, slow_export):
    window.resize(1280, 720)
    assert window.open_tape(big_tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    target = tmp_path / "big.trace.json"
    target.write_text("what was there before")
    assert window.exporter.start(str(target), "perfetto")
    progress = window.exporter.progress
    assert progress.isVisible() and "Exporting big.tape as Perfetto trace" in progress.label.text()
    assert not window.actions["export"].isEnabled()  # one export at a time
    # the worker is held mid-export, and the window goes on: the bar moves, the Cancel button answers
    qtbot.waitUntil(lambda: progress.percent() > 0, timeout=TIMEOUT)
    assert 0 < progress.percent() < 100 and window.exporter.busy
    shoot(window, "export-progress.png")
    qtbot.mouseClick(progress.cancel_button, Qt.MouseButton.LeftButton)
    slow_export.set()
    qtbot.waitUntil(lambda: not window.exporter.busy, timeout=TIMEOUT)
    assert target.read_text() == "what was there before"
    assert sorted(os.listdir(tmp_path)) == ["big.trace.json", "settings.ini"]  # no part file left either
    assert window.status_panel.note.text() == "Export cancelled: nothing was written"
    assert not progress.isVisible() and window.actions["export"].isEnabled()
    # and the same export, not cancelled, completes
    assert window.exporter.start(str(target), "perfetto")
    qtbot.waitUntil(lambda: not window.exporter.busy, timeout=TIMEOUT)
    assert target.read_text() == _exported(big_tape, "perfetto")


def test_export_errors_are_one_line_in_the_window(qtbot, window, nan_tape, tmp_path):
    assert window.open_tape(nan_tape)
    cases = [
        (str(tmp_path / "no-such-folder" / "out.json"), "Cannot export: the folder "),
        (str(tmp_path), f"Cannot export: {tmp_path} is a folder"),
        (nan_tape, f"Cannot export: {nan_tape} is the tape being exported"),
    ]
    for path, message in cases:
        assert not window.exporter.start(path, "json")
        assert _message(window).startswith(message) and "\n" not in _message(window)
    # one the worker meets: a name longer than the file system allows
    assert window.exporter.start(str(tmp_path / ("x" * 300 + ".json")), "json")
    qtbot.waitUntil(lambda: not window.exporter.busy, timeout=TIMEOUT)
    assert _message(window).startswith("Export failed: cannot write ") and "name too long" in _message(window)
    assert window.message_bar.level == "error" and "\n" not in _message(window)
    assert sorted(os.listdir(tmp_path)) == ["settings.ini"]


def test_a_tape_damaged_after_it_was_opened_fails_with_a_message(qtbot, window, nan_tape, tmp_path):
    tape = tmp_path / "copy.tape"
    shutil.copy(nan_tape, tape)
    assert window.open_tape(str(tape))
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    tape.write_bytes(b"not a tape at all" * 100)
    assert window.exporter.start(str(tmp_path / "out.json"), "json")
    qtbot.waitUntil(lambda: not window.exporter.busy, timeout=TIMEOUT)
    assert _message(window).startswith("Export failed: ") and "copy.tape" in _message(window)
    assert not (tmp_path / "out.json").exists()


def test_a_live_session_exports_its_recording(qtbot, window, tmp_path):
    script = _script(tmp_path, "clean.py", CLEAN_SCRIPT)
    tape = str(tmp_path / "live.tape")
    assert window.run_script(script, run=True, record=tape)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    assert window.actions["export"].isEnabled()
    assert window.exporter.start(str(tmp_path / "live.dot"), "dot")
    qtbot.waitUntil(lambda: not window.exporter.busy, timeout=TIMEOUT)
    assert (tmp_path / "live.dot").read_text() == _exported(tape, "dot")


# ---- the Output panel's notes wrap ---------------------------------------------------------------------
def test_the_replaying_note_wraps_in_a_narrow_output_panel(qtbot, window, nan_tape):
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: window.width() == 1280)
    window.output.append_text("stdout", "epoch   1  loss 0.693147  accuracy 0.5000  lr 0.100000  time 0.01 s "
                                        "grad-norm 1.2345\n")
    assert window.open_tape(nan_tape)
    output = window.output
    window.docks["output"].raise_()  # at 1280x720 it shares a place with the Source panel, as a tab
    qtbot.waitUntil(lambda: output.isVisible() and output.viewport().width() < 420)  # a narrow panel
    doc = output.document()
    note = next(doc.findBlockByNumber(i) for i in range(doc.blockCount())
                if doc.findBlockByNumber(i).text().startswith("Replaying"))
    console = doc.findBlockByNumber(0)
    assert console.text().startswith("epoch   1")
    qtbot.waitUntil(lambda: note.layout().lineCount() > 1)
    room = output.viewport().width()
    lines = [note.layout().lineAt(i) for i in range(note.layout().lineCount())]
    assert all(line.naturalTextWidth() <= room for line in lines)  # every word of it shows
    assert console.layout().lineCount() == 1  # the script's own columns stay on one line, scrolling sideways
    assert output.horizontalScrollBar().maximum() > 0
    shoot(window, "replaying-note.png")


# ---- a first start fits the screen, frame and all --------------------------------------------------------
def test_a_first_start_keeps_the_title_bar_on_the_screen(make_window):
    window = make_window(size=None)
    room = window.screen().availableGeometry()
    frame = window.frameGeometry()
    assert frame.width() > window.width()  # the platform draws a frame
    assert room.contains(frame), (room, frame)

