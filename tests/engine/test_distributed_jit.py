"""torch.distributed and torch.jit as a one-process, eager engine has them: guards take the single-process path,
decorated code runs op by op, and what cannot exist here says so."""

import pytest

import engine
import engine.distributed as dist
import engine.nn as nn
from engine.debug import Debugger
from engine.debug.records import OpRecord


def test_a_rank_zero_guard_takes_the_single_process_path():
    printed = []

    def log(text):
        if not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0:
            printed.append(text)

    log("epoch 1")
    assert printed == ["epoch 1"] and not dist.is_torchelastic_launched()
    assert dist.ReduceOp.SUM and dist.Backend.NCCL == "nccl"


@pytest.mark.parametrize("call", [dist.get_rank, dist.get_world_size, dist.barrier,
                                  lambda: dist.all_reduce(engine.ones(1), op=dist.ReduceOp.SUM)])
def test_collectives_raise_torchs_error_for_a_group_never_made(call):
    with pytest.raises(ValueError, match=r"^Default process group has not been initialized.*one process"):
        call()


def test_init_process_group_is_refused_saying_why():
    with pytest.raises(RuntimeError, match="runs in one process"):
        dist.init_process_group("gloo", rank=0, world_size=1)


def test_scripted_and_traced_code_runs_eagerly_and_the_debugger_sees_its_ops():
    @engine.jit.script
    def fused_gelu(x):
        return x * 0.5 * (1.0 + engine.tanh(0.79788456 * (x + 0.044715 * x * x * x)))

    model = engine.jit.trace(nn.Linear(3, 2), engine.ones(1, 3))
    assert isinstance(model, nn.Linear) and not engine.jit.is_scripting() and not engine.jit.is_tracing()
    with Debugger("structure") as dbg:
        fused_gelu(model(engine.ones(4, 3))).sum()
    assert "tanh" in {r.event.op for r in dbg.history if isinstance(r, OpRecord)}
    assert engine.jit.ignore(fused_gelu) is fused_gelu and engine.jit.unused(fused_gelu) is fused_gelu
    assert engine.jit.ignore(drop=True)(fused_gelu) is fused_gelu and engine.jit.annotate(list, [1]) == [1]
    with pytest.raises(TypeError, match="expected a function or module"):
        engine.jit.trace(3, ())
    with pytest.raises(RuntimeError, match="no TorchScript archives: save the model's state_dict"):
        engine.jit.save(model, "model.pt")
