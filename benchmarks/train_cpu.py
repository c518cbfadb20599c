"""One training epoch of the example models, engine against PyTorch, on the CPU. Prints ratios.

    python benchmarks/train_cpu.py [--quick]

The CNN of resources/examples/cnn_glyphs.py (2000 glyphs, batch 32, Adam) and the MLP of
resources/examples/mlp_spirals.py (1000 points, batch 32, Adam): the same architecture in both
libraries, PyTorch's weights copied from the engine's, the same batches in the same order, and the
same loop (forward, cross-entropy, zero_grad, backward, step, loss.item() and the accuracy count).
The engine iterates its DataLoader, as the example does; PyTorch slices tensors, its fastest idiom.
Before timing, one epoch from equal weights checks that both did the same math.
Bar: engine <= 1.5x PyTorch on both.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved, report, try_torch  # first: it sets thread counts before numpy loads

# isort: split
import numpy as np

import engine
from engine.data import DataLoader, TensorDataset, glyphs, two_spirals

EXAMPLES = Path(__file__).resolve().parents[1] / "resources" / "examples"
BATCH = 32
BAR = 1.5


def load_example(name: str):
    """The example script as a module (resources/examples is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torch_glyphnet(torch):
    """cnn_glyphs.GlyphNet written in PyTorch (same layers, names and order)."""
    nn, F = torch.nn, torch.nn.functional

    class GlyphNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
            self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(16 * 4 * 4, 10)

        def forward(self, x):
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            return self.fc(x.flatten(1))

    return GlyphNet()


def torch_mlp(torch, hidden: int = 64):
    """mlp_spirals.build_model written in PyTorch."""
    nn = torch.nn
    return nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                         nn.Linear(hidden, 2))


def copy_weights(torch, source, target) -> None:
    """Load the engine model's state_dict into the PyTorch model (names match by construction)."""
    state = {k: torch.tensor(np.array(v.numpy())) for k, v in source.state_dict().items()}
    target.load_state_dict(state)


def epoch_runner(lib, model, batches: Callable, lr: float) -> Callable[[], tuple[float, int]]:
    """One epoch of the examples' loop; the same code drives both libraries (same API)."""
    F = lib.nn.functional
    optimizer = lib.optim.Adam(model.parameters(), lr=lr)

    def epoch() -> tuple[float, int]:
        total, correct = 0.0, 0
        for xb, yb in batches():
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)
            correct += (logits.argmax(1) == yb).sum().item()
        return total, correct

    return epoch


def contenders(torch, name: str, engine_model, torch_model, x, y, lr: float) -> dict[str, Callable]:
    """{'engine': epoch, 'torch': epoch} from equal weights and data; checks one epoch agrees."""
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH)
    tx, ty = torch.tensor(x.numpy()), torch.tensor(y.numpy())
    copy_weights(torch, engine_model, torch_model)
    runs = {"engine": epoch_runner(engine, engine_model, lambda: loader, lr),
            "torch": epoch_runner(torch, torch_model, lambda: zip(tx.split(BATCH), ty.split(BATCH)), lr)}
    (e_loss, e_correct), (t_loss, t_correct) = runs["engine"](), runs["torch"]()
    drift = max(float(np.abs(p.detach().numpy() - q.detach().numpy()).max())
                for p, q in zip(engine_model.parameters(), torch_model.parameters()))
    print(f"{name}: after one epoch from equal weights: mean loss engine {e_loss / len(y):.5f} torch "
          f"{t_loss / len(y):.5f}, correct {e_correct} / {t_correct}, max parameter difference {drift:.1e}")
    return runs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = parser.parse_args(argv)
    torch = try_torch()
    if torch is None:
        print("train_cpu: PyTorch is not installed; nothing to compare against")
        return
    print(f"train_cpu: numpy {np.__version__}, torch {torch.__version__}, one thread each")
    rounds = 3 if args.quick else 9
    cnn, mlp = load_example("cnn_glyphs"), load_example("mlp_spirals")

    engine.manual_seed(0)
    x, y = glyphs(2000, seed=0)
    runs = contenders(torch, "CNN", cnn.build_model(), torch_glyphnet(torch), x, y, lr=0.003)
    report(f"CNN glyphs epoch (2000 images, batch {BATCH})", interleaved(runs, rounds, 1, warmup=1),
           "torch", bar=("engine", BAR), unit=1e3, unit_name="ms")

    engine.manual_seed(0)
    x, y = two_spirals(1000, seed=0)
    runs = contenders(torch, "MLP", mlp.build_model(), torch_mlp(torch), x, y, lr=0.01)
    report(f"MLP spirals epoch (1000 points, batch {BATCH})", interleaved(runs, rounds, 3, warmup=1),
           "torch", bar=("engine", BAR), unit=1e3, unit_name="ms")


if __name__ == "__main__":
    main()
