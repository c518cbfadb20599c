"""engine.allocator: a conv net's training steps reuse freed memory instead of faulting it back in."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from engine.allocator import keep_freed_memory

# a small CNN's training steps; prints the page faults its last 10 steps took
_STEPS = textwrap.dedent("""
    import json, resource
    import numpy as np
    import engine, engine.nn as nn, engine.nn.functional as F
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(16 * 7 * 7, 10))
    opt = engine.optim.SGD(model.parameters(), lr=0.01)
    x = engine.tensor(rng.standard_normal((32, 1, 28, 28)).astype(np.float32))
    y = engine.tensor(rng.integers(0, 10, 32))
    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    for _ in range(5):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        step()
    print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
""")


def faults(**env) -> int:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "TAPESCOPE_MALLOC"}
    out = subprocess.run([sys.executable, "-c", _STEPS], capture_output=True, text=True, timeout=120,
                         env={**clean, **env}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc tunables: Linux only")
def test_a_cnn_step_reuses_freed_pages_instead_of_faulting_them_back():
    kept, returned = faults(), faults(TAPESCOPE_MALLOC="system")
    # with malloc left as it is, each step faults in megabytes of pages it freed the step before
    assert returned > 1000
    assert kept < returned / 20


def test_a_persons_own_malloc_settings_are_left_alone():
    assert not keep_freed_memory({"TAPESCOPE_MALLOC": "system"})
    assert not keep_freed_memory({"MALLOC_TRIM_THRESHOLD_": "0"})
    assert not keep_freed_memory({"GLIBC_TUNABLES": "glibc.malloc.top_pad=0"})
