"""The built-in demo: a small MLP learning to separate two interleaved spirals.

`tapescope` with no arguments runs `main()` under the debugger, paused before its first op, so the
graph grows op by op with F11 and trains live with F5. It is an ordinary training loop written
against `engine` (the same code runs without the app: `python -m app.demo`).
"""

from __future__ import annotations

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.data import DataLoader, TensorDataset, two_spirals

TITLE = "Demo: an MLP learning two spirals"


class SpiralNet(nn.Module):
    """Two coordinates in, two class scores out: three linear layers with tanh between them."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, 2)

    def forward(self, x: engine.Tensor) -> engine.Tensor:
        h = F.tanh(self.fc1(x))
        h = F.tanh(self.fc2(h))
        return self.out(h)


def main(epochs: int = 400, n: int = 512, batch_size: int = 64, lr: float = 0.01, seed: int = 0,
         verbose: bool = True) -> list[float]:
    """Train on `n` spiral points; returns the mean loss of each epoch."""
    engine.manual_seed(seed)
    x, y = two_spirals(n, noise=0.05, seed=seed)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    model = SpiralNet()
    optimizer = engine.optim.Adam(model.parameters(), lr=lr)
    history = []
    for epoch in range(1, epochs + 1):
        total, correct = 0.0, 0
        for xb, yb in loader:
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)
            # accuracy on the host, so it adds no ops to the graph
            correct += int((logits.detach().numpy().argmax(1) == yb.numpy()).sum())
        history.append(total / n)
        if verbose and (epoch == 1 or epoch % 10 == 0):
            print(f"epoch {epoch:4d}   loss {total / n:.4f}   accuracy {correct / n:6.1%}")
    return history


if __name__ == "__main__":
    main()
