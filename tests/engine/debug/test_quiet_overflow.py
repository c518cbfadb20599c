"""Values that overflow while a debugger or recorder watches: numpy's RuntimeWarnings from the debugger's own
norms and checks would read as if the user's script raised them (engine code makes inf and NaN silently)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import numpy as np
import engine, engine.nn as nn
from engine.debug import Debugger
m = nn.Linear(4, 1)
opt = engine.optim.SGD(m.parameters(), lr=1.0)
with Debugger("summary", model=m, optimizer=opt):
    for _ in range(3):
        opt.zero_grad()
        (m(engine.full((2, 4), 1e30)).sum() * 1e8).backward()   # gradients whose squares overflow float32
        opt.step()
np.log(np.zeros(1))   # the user's own numpy call still warns
"""


def test_overflow_under_the_debugger_prints_no_warning_of_the_engines_own():
    done = subprocess.run([sys.executable, "-W", "default", "-c", SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    warned = [line for line in done.stderr.splitlines() if "Warning" in line]
    assert len(warned) == 1 and "divide by zero encountered in log" in warned[0], done.stderr
