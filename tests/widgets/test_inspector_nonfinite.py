"""Statistics of a tensor holding NaN or infinities say that they are of its finite values, count the infinities
by sign once the values tell it, and a mask's -inf is said to be one, not shown as a fault."""

import numpy as np
import pytest
from PySide6.QtGui import QColor

from engine.debug.summary import summarize
from widgets.tensor_inspector import GRAD, STATS, VALUE
from widgets.theme import ERROR_TEXT, pick


def causal_scores() -> np.ndarray:
    """Attention scores with a causal mask added: -inf above the diagonal of each 12x12 map."""
    scores = np.random.default_rng(0).standard_normal((16, 4, 12, 12)).astype(np.float32)
    return scores + np.triu(np.full((12, 12), -np.inf, np.float32), 1)


@pytest.fixture(autouse=True)
def quiet():
    with np.errstate(invalid="ignore"):  # a summary's sum over -inf and +inf is NaN, as it should be
        yield


def row_name(inspector, stat: str) -> str:
    return inspector.stats.verticalHeaderItem(STATS.index(stat)).text()


def test_statistics_over_finite_values_say_so_and_infinities_are_counted_by_sign(inspector):
    # "min -6.5, mean -0.12" beside "Inf 4,224" read as the whole tensor's, and "Inf" did not say which sign
    a = causal_scores()
    s = summarize(a)
    assert s.inf_count == 16 * 4 * 66
    inspector.show_summaries("LM.attn/add:0", s, summarize(np.ones_like(a)))
    for stat in ("min", "max", "mean", "std", "L2 norm"):
        assert row_name(inspector, stat) == f"{stat} (finite)"
    assert row_name(inspector, "zeros") == "zeros" and row_name(inspector, "Inf") == "\u00b1Inf"
    finite = a.size - s.inf_count
    assert (f"min, max, mean, std and L2 norm of the value: of its {finite:,} finite values ({s.inf_count:,} "
            "\u00b1Inf left out)") in inspector.meta.text()
    assert inspector.stat_text("Inf") == f"{s.inf_count:,}"  # the summary does not know the signs
    assert f"{finite:,} finite values" in inspector.stats.item(STATS.index("mean"), 0).toolTip()
    inspector.set_values(a, np.ones_like(a))
    assert inspector.stat_text("Inf") == f"{s.inf_count:,} \u2212Inf"
    assert f"({s.inf_count:,} \u2212Inf left out)" in inspector.meta.text()
    assert inspector.histograms[VALUE].bad_text() == f"{s.inf_count:,} \u2212Inf"
    both = a.copy()
    both[0, 0, 5, 0] = np.inf
    inspector.show_summaries("LM.attn/add:1", summarize(both))
    inspector.set_values(both)
    assert inspector.stat_text("Inf") == f"{s.inf_count:,} \u2212Inf, 1 +Inf"
    assert f"of its {finite - 1:,} finite values" in inspector.meta.text()


def test_a_finite_tensor_reads_as_before(inspector):
    inspector.show_summaries("fc/linear:0", summarize(np.arange(6, dtype=np.float32)))
    assert row_name(inspector, "min") == "min" and "finite" not in inspector.meta.text()
    inspector.show_summaries("fc/linear:0", summarize(np.ones(6, np.float32)), summarize(np.zeros(6, np.float32)))
    assert inspector.columns() == [VALUE, GRAD] and row_name(inspector, "mean") == "mean"


def test_a_masks_infinities_are_said_to_be_one_and_not_painted_as_a_fault(inspector):
    s = summarize(causal_scores())
    inspector.show_summaries("LM.attn/add:0", s, intended="its \u2212Inf are a mask")
    cell = inspector.stats.item(STATS.index("Inf"), 0)
    assert cell.foreground().color() != QColor(pick(ERROR_TEXT, inspector.palette())) and not cell.font().bold()
    assert "its \u2212Inf are a mask" in inspector.meta.text()
    inspector.show_summaries("LM.attn/log:0", s)  # the same infinities, not known to be a mask: red
    cell = inspector.stats.item(STATS.index("Inf"), 0)
    assert cell.foreground().color() == QColor(pick(ERROR_TEXT, inspector.palette())) and cell.font().bold()
