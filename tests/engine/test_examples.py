"""The scripts in resources/examples: shortened runs that must learn, and the NaN demo that must fail."""

from __future__ import annotations

import importlib.util
import math
import sys
import warnings
from pathlib import Path

import pytest

import engine
import engine.nn as nn

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
SCRIPTS = ["mlp_spirals", "cnn_glyphs", "char_lstm", "tiny_transformer", "nan_demo"]
# Cross-entropy (nats) on the held-out text of a model that knows only each character's frequency
# in the training text: a language model below it has learned something from context.
UNIGRAM_NATS = 3.0


def load(name: str):
    """Import an example script by path, as the module `example_<name>` (the folder is no package)."""
    module_name = f"example_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_example_is_a_runnable_script_with_a_model_the_app_can_show(name):
    source = (EXAMPLES / f"{name}.py").read_text()
    assert 'if __name__ == "__main__":\n    main()' in source
    module = load(name)
    assert module.__doc__ and callable(module.main)
    model = module.build_model()
    assert isinstance(model, nn.Module) and sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_readme_lists_every_example(name):
    assert f"{name}.py" in (EXAMPLES / "README.md").read_text()


def test_mlp_separates_the_spirals_and_prints_progress_per_epoch(capsys):
    result = load("mlp_spirals").main(epochs=15)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 15 and all("loss" in line and "acc" in line for line in lines)
    assert result["test_accuracy"] > 0.9  # chance is 0.5; a linear model stays near 0.6
    assert result["train_loss"][-1] < 0.5 * result["train_loss"][0]


def test_cnn_recognises_glyphs_after_two_short_epochs():
    result = load("cnn_glyphs").main(epochs=2, n=600, verbose=False)
    assert result["test_accuracy"] > 0.7  # 10 classes: chance is 0.1
    assert result["train_loss"][-1] < 0.8 * result["train_loss"][0]


def test_char_lstm_beats_character_frequencies_and_samples_text():
    result = load("char_lstm").main(epochs=2, batches_per_epoch=10, seq_len=24, sample_length=30,
                                    verbose=False)
    assert result["held_out_loss"] < UNIGRAM_NATS - 0.2
    assert result["sample"].startswith("The ") and len(result["sample"]) == 34


def test_tiny_transformer_beats_character_frequencies_and_samples_text():
    result = load("tiny_transformer").main(epochs=2, max_batches=15, seq_len=32, sample_length=30,
                                           verbose=False)
    assert result["held_out_loss"] < UNIGRAM_NATS - 0.2
    assert result["sample"].startswith("The ") and len(result["sample"]) == 34


def test_tiny_transformer_is_causal():
    engine.manual_seed(0)
    model = load("tiny_transformer").build_model().eval()
    ids = engine.randint(0, 59, (1, 12))
    changed = ids.clone()
    changed[0, 8:] = (ids[0, 8:] + 1) % 59
    with engine.no_grad():
        before, after = model(ids), model(changed)
    # changing later characters leaves the predictions at earlier positions alone
    assert (before[0, :8] - after[0, :8]).abs().max().item() < 1e-5
    assert (before[0, 8:] - after[0, 8:]).abs().max().item() > 1e-3


def test_nan_demo_loss_turns_non_finite_after_a_few_steps_and_cross_entropy_stays_finite(capsys):
    demo = load("nan_demo")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's "divide by zero encountered in log"
        result = demo.main()
    step = result["first_nonfinite_step"]
    assert step is not None and 2 < step <= 10
    assert all(math.isfinite(v) for v in result["losses"][:step - 1])
    assert not math.isfinite(result["losses"][-1])
    assert "nan" in capsys.readouterr().out
    fixed = demo.main(naive=False, steps=step + 2, verbose=False)
    assert fixed["first_nonfinite_step"] is None
