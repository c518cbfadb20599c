"""What a first-time user reads in the widgets at laptop sizes: names that say something where cut."""

from PySide6.QtGui import QFont, QFontMetricsF

from widgets.graph_canvas import MIN_LABEL_PX, _last_names


def test_a_parameter_label_too_long_for_its_node_keeps_its_last_name(qtbot):  # qtbot: a QApplication for fonts
    # a fitted demo graph drew fc1.weight as "…eight"; the module box around it already says fc1
    font = QFont()
    font.setPixelSize(MIN_LABEL_PX)
    metrics = QFontMetricsF(font)
    room = metrics.horizontalAdvance("weight") + 2
    assert _last_names("fc1.weight", metrics, room) == "weight"
    assert _last_names("fc1.weight", metrics, room * 3) == "fc1.weight"
    assert _last_names("blocks.0.attn.out_proj.weight", metrics, room) == "weight"


def test_a_second_models_parameter_keeps_its_root_name_when_cut(qtbot):
    # TD3's target network: "Actor_2.net.0.weight" beside the online "net.0.weight" read "…net…" or "weight"
    font = QFont()
    font.setPixelSize(MIN_LABEL_PX)
    metrics = QFontMetricsF(font)
    room = metrics.horizontalAdvance("Actor_2\u20260.weight") + 1
    assert _last_names("Actor_2.net.0.weight", metrics, room) == "Actor_2\u20260.weight"
    tight = metrics.horizontalAdvance("Actor_2\u2026weight") + 1
    assert _last_names("Actor_2.net.0.weight", metrics, tight) == "Actor_2\u2026weight"
    # narrower still: the root stays, and the painter cuts the last name's end
    narrow = metrics.horizontalAdvance("weight") + 1
    assert _last_names("Actor_2.net.0.weight", metrics, narrow) == "Actor_2\u2026weight"
    assert _last_names("net.0.weight", metrics, metrics.horizontalAdvance("0.weight") + 1) == "0.weight"  # as before
