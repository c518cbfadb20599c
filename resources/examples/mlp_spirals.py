"""Two interleaved spirals, separated by a small MLP (2-64-64-2, tanh), trained with Adam.

    python resources/examples/mlp_spirals.py

The classic toy that a linear model cannot solve: the network has to bend its decision boundary
around both arms. With the defaults (30 epochs of 1000 points, batch 32; under 2 s on one CPU core)
it reaches about 98% accuracy on 1000 fresh points (measured: 98.4% test accuracy, test loss 0.045;
it passes 90% around epoch 10).
"""

from __future__ import annotations

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.data import DataLoader, TensorDataset, two_spirals


def build_model(hidden: int = 64) -> nn.Module:
    """The classifier: two coordinates in, two class scores out."""
    return nn.Sequential(
        nn.Linear(2, hidden), nn.Tanh(),
        nn.Linear(hidden, hidden), nn.Tanh(),
        nn.Linear(hidden, 2),
    )


def evaluate(model: nn.Module, x: engine.Tensor, y: engine.Tensor) -> tuple[float, float]:
    """(mean loss, accuracy) of the model on a whole set, without recording a graph."""
    model.eval()
    with engine.no_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y).item()
        accuracy = (logits.argmax(1) == y).float().mean().item()
    model.train()
    return loss, accuracy


def main(epochs: int = 30, n: int = 1000, batch_size: int = 32, lr: float = 0.01, seed: int = 0,
         verbose: bool = True) -> dict:
    """Train on `n` spiral points, test on as many fresh ones; returns the final metrics."""
    engine.manual_seed(seed)
    # Two draws of the same spirals (different noise and positions): one to learn, one to test on.
    x_train, y_train = two_spirals(n, noise=0.05, seed=seed)
    x_test, y_test = two_spirals(n, noise=0.05, seed=seed + 1)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True)

    model = build_model()
    optimizer = engine.optim.Adam(model.parameters(), lr=lr)
    history = []
    for epoch in range(1, epochs + 1):
        total, correct, seen = 0.0, 0, 0
        for xb, yb in loader:
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)
            correct += (logits.argmax(1) == yb).sum().item()
            seen += len(yb)
        test_loss, test_acc = evaluate(model, x_test, y_test)
        history.append(total / seen)
        if verbose:
            print(f"epoch {epoch:3d}  loss {total / seen:.4f}  train acc {correct / seen:6.1%}  "
                  f"test loss {test_loss:.4f}  test acc {test_acc:6.1%}")
    return {"train_loss": history, "test_loss": test_loss, "test_accuracy": test_acc}


if __name__ == "__main__":
    main()
