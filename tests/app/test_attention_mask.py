"""A causal mask's -inf, added to attention scores that a softmax turns into probabilities, is a mask: not painted
as a fault in the graph (it was amber, "±Inf only"), and said to be one in the inspector."""

import textwrap

from app.debug_panels import MASK_NOTE
from widgets.tensor_inspector import STATS

TIMEOUT = 60_000  # ms

SCRIPT = """
import engine
import engine.nn as nn
import engine.nn.functional as F

engine.manual_seed(0)
mask = nn.Transformer.generate_square_subsequent_mask(5)

class Attend(nn.Module):
    def forward(self, q):
        return F.softmax(q @ q.transpose(1, 2) + mask, dim=-1)

class Broken(nn.Module):
    def forward(self, q):
        return (q @ q.transpose(1, 2) + mask).exp().log()  # the same -inf, into no softmax

q = engine.randn(2, 5, 4, requires_grad=True)
attend, broken = Attend(), Broken()
for step in range(2):
    (attend(q).sum() + broken(q)[:, 0, 0].sum()).backward()
"""
MASKED, UNMASKED = "Attend/add:0", "Broken/add:0"


def test_a_causal_masks_minus_infinity_is_no_fault(qtbot, window, tmp_path):
    path = tmp_path / "attend.py"
    path.write_text(textwrap.dedent(SCRIPT))
    window.set_stop_on_alerts("none")
    assert window.run_script(str(path), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.canvas.view is not None and MASKED in window.canvas.view.node_of)
    model = window.session.model
    assert model.is_mask(MASKED) and MASKED not in model.nonfinite
    assert not model.is_mask(UNMASKED) and UNMASKED in model.nonfinite  # -inf not proven a mask stays amber
    window.canvas.select(MASKED)
    window.panels.worker.wait(10_000)
    qtbot.wait(50)
    inspector = window.inspector
    assert MASK_NOTE in inspector.meta.text()
    assert "\u2212Inf" in inspector.stat_text("Inf") and not inspector.stats.item(STATS.index("Inf"), 0).font().bold()
    assert inspector.stats.verticalHeaderItem(STATS.index("mean")).text() == "mean (finite)"
