"""A GAN's two models, which the engine names "Sequential" and "Sequential_2", read as the script calls them ("G",
"D") in the Inspector's title and the Breakpoints panel, as in the graph; a breakpoint keeps the engine's key, so it
matches as before, and one typed with the script's name matches too."""

from PySide6.QtCore import Qt

from tests.app.test_breakpoints_live import add_in_form, note, resume
from tests.app.test_window import TIMEOUT, paused, script

GAN = """
    import engine, engine.nn as nn, engine.nn.functional as F
    engine.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    D = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    opt_d, opt_g = engine.optim.Adam(D.parameters(), lr=1e-3), engine.optim.Adam(G.parameters(), lr=1e-3)
    ones, zeros = engine.ones(16, 1), engine.zeros(16, 1)
    for step in range(5):
        fake = G(engine.randn(16, 4))
        opt_d.zero_grad()
        errD = F.binary_cross_entropy_with_logits(D(engine.randn(16, 2)), ones) + \\
            F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)
        errD.backward()
        opt_d.step()
        opt_g.zero_grad()
        errG = F.binary_cross_entropy_with_logits(D(fake), ones)
        errG.backward()
        opt_g.step()
"""


def test_the_inspector_and_breakpoints_name_a_gans_models_as_the_graph_does(qtbot, window, tmp_path):
    window.run_script(script(tmp_path, "gan.py", GAN))
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: paused(window) and window.session.iteration == 1, timeout=TIMEOUT)
    assert window.canvas.view.root_names == {"Sequential": "G", "Sequential_2": "D"}
    window.canvas.select("Sequential_2.0/linear:0")
    qtbot.waitUntil(lambda: window.inspector.title.text() != "", timeout=TIMEOUT)
    title = window.inspector.title.text()
    assert title == "linear  \u00b7  D.0/linear:0" and "Sequential" not in window.inspector.meta.text()
    assert "in D.0" in window.inspector.meta.text()
    qtbot.keyClick(window, Qt.Key.Key_F9)
    assert window.breakpoints.rows() == [("op D.0/linear:0  (forward)", 0, True)]
    assert note(window) == "Breakpoint set: D.0/linear:0"
    [info] = window.session.debugger.list_breakpoints()
    assert info.spec.pattern == "Sequential_2.0/linear:0"  # keyed by the engine: it matches as it did
    resume(qtbot, window)
    assert window.session.iteration == 1 and window.session.model.current.startswith("Sequential_2.0/linear:0")
    assert window.breakpoints.rows()[0][1] == 1
    # typed as the graph names it: made into the engine's path, and listed as typed
    add_in_form(qtbot, window, "module", "G.2")
    assert window.session.debugger.list_breakpoints()[-1].spec.pattern == "Sequential.2"
    assert window.breakpoints.rows()[-1][0] == "module G.2  (enter)"
    window.breakpoints.list.setCurrentItem(window.breakpoints.list.topLevelItem(1))
    window.breakpoints.edit_button.click()
    assert window.breakpoints.editor.pattern.text() == "G.2"
