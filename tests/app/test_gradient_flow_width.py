"""Gradient Flow gets the width its names need in the default layout: at 1920x1080 a transformer's parameters
("blocks.layers.0.self_attn.in_proj_weight") read whole once the model is known; in a smaller window, where the row
under the graph has no room for them, the names keep their layer index."""

import pathlib

import pytest

from tests.app.test_window import TIMEOUT, paused

TRANSFORMER = str(pathlib.Path(__file__).parents[2] / "resources" / "examples" / "tiny_transformer.py")


def shown_names(qtbot, window) -> dict[str, str]:
    """Each parameter's name as the chart writes it, once an optimizer step is drawn."""
    window.run_script(TRANSFORMER)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: paused(window) and window.session.iteration == 1, timeout=TIMEOUT)
    window.docks["gradients"].raise_()
    chart = window.gradient_flow
    qtbot.waitUntil(lambda: len(chart.bars()[0]) > 10, timeout=TIMEOUT)
    qtbot.wait(50)  # (the dock's new width laid out)
    return {name: chart.shown_label(name) for name in chart.bars()[0]}


def test_at_1920x1080_every_parameter_name_reads_whole(qtbot, make_window):
    window = make_window((1920, 1080))
    names = shown_names(qtbot, window)
    assert "blocks.layers.0.self_attn.in_proj_weight" in names
    assert [name for name, shown in names.items() if shown != name] == []
    row = [window.docks[name].width() for name in ("source", "output", "loss")]
    assert min(row[:2]) >= 250  # the source and the output still read


@pytest.mark.parametrize("size", [(1440, 900), (1280, 720)])
def test_in_a_smaller_window_a_cut_name_keeps_its_layer_its_module_and_its_own_name(qtbot, make_window, size):
    # at 1280x720 every module was cut to its initial and the parameter's own name in its middle: the rows read
    # "b.l.0.s.in_\u2026ght", "b.l.0.l.weight" (linear1 and linear2 alike): only the layer index told them apart
    window = make_window(size)
    names = shown_names(qtbot, window)
    assert len(set(names.values())) == len(names), names  # every row its own name
    for name, shown in names.items():
        parts, pieces = name.split("."), shown.split(".")
        assert pieces[-1] == parts[-1], (name, shown)  # "in_proj_weight", "weight", "bias" whole
        if name.startswith("blocks.layers."):
            # its layer, and the module it is in ("linear1", "norm2"), whole or cut at its right ("out_\u2026", beside
            # "self_attn" as "s"): "self_attn" may be its initial beside "in_proj_weight", a name no other module has
            assert parts[2] in [piece.lstrip("\u2026") for piece in pieces[:-2]], (name, shown)
            module = pieces[-2].rstrip("\u2026")
            assert module and parts[-2].startswith(module), (name, shown)
    # the value axis's name inside the axis under the bars (beside names given half the chart it read "gradient L2
    # norm (log scal"): its metric at least
    axis = window.gradient_flow.plot.getAxis("bottom")
    label, margin = axis.label, axis.label.document().documentMargin()
    drawn = label.mapRectToParent(label.boundingRect()).adjusted(margin, 0, -margin, 0)
    assert axis.labelText.startswith("gradient L2 norm") and drawn.left() >= 0 and drawn.right() <= axis.width()
    row = sum(window.docks[n].width() for n in ("source", "output", "loss"))  # (a row under the left column too)
    assert window.docks["gradients"].width() > 0.25 * row
