"""What a fourth round of ported PyTorch programs tripped over: each case as torch behaves."""

from __future__ import annotations

import pytest

import engine
from tests.engine.oracle import needs_torch, torch


def test_a_one_element_tensor_formats_as_its_number():
    loss = engine.tensor(1.23456)
    assert f"{loss:.3f}" == "1.235" and f"{engine.tensor(7):>4}" == "   7"
    assert f"{engine.tensor([1.5])}" == str(engine.tensor([1.5]))
    with pytest.raises(TypeError, match="unsupported format string"):
        f"{engine.tensor([1.5, 2.5]):.2f}"


@needs_torch
def test_formatting_matches_torch():
    for value, spec in ((2.5, ".1e"), (3, "05d"), (0.125, "%")):
        assert format(engine.tensor(value), spec) == format(torch.tensor(value), spec)


def test_writing_in_place_into_an_expanded_view_names_the_problem():
    for write in (lambda t: t.add_(1), lambda t: t.zero_(), lambda t: t.__setitem__(0, 2.0)):
        with pytest.raises(RuntimeError, match=r"shape \(2, 3\) whose elements share memory .*clone\(\) it first"):
            write(engine.ones(1, 3).expand(2, 3))
    grown = engine.ones(1, 3).expand(2, 3).clone()
    grown.add_(1)
    assert grown.tolist() == [[2.0] * 3] * 2
