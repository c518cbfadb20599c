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
def test_in_a_smaller_window_a_cut_name_keeps_its_layer(qtbot, make_window, size):
    window = make_window(size)
    names = shown_names(qtbot, window)
    shown = [names[f"blocks.layers.{i}.self_attn.in_proj_weight"] for i in (0, 1)]
    assert shown[0] != shown[1] and ".0" in shown[0] and ".1" in shown[1]  # "b.l.0.s.in_…ght", not "blo…ght"
    row = sum(window.docks[n].width() for n in ("source", "output", "loss"))  # (a row under the left column too)
    assert window.docks["gradients"].width() > 0.25 * row
