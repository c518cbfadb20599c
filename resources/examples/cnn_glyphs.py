"""A small CNN that recognises 10 kinds of drawn glyphs (16x16, see engine.data.GLYPH_NAMES).

    python resources/examples/cnn_glyphs.py

Two conv-ReLU-maxpool blocks and a linear classifier, trained with Adam on jittered, noisy drawings
(ring, bar, dash, plus, cross, square, triangle, slash, equals, corner). With the defaults
(4 epochs of 2000 images, batch 32; about 3 s on one CPU core) it reaches about 99% accuracy on
500 fresh images (measured: 100.0% test accuracy, test loss 0.012; 97% after the first epoch).
"""

from __future__ import annotations

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.data import GLYPH_NAMES, DataLoader, TensorDataset, glyphs


class GlyphNet(nn.Module):
    """conv(1->8) -> pool -> conv(8->16) -> pool -> linear(16*4*4 -> 10)."""

    def __init__(self, classes: int = len(GLYPH_NAMES)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 4 * 4, classes)

    def forward(self, x: engine.Tensor) -> engine.Tensor:
        x = self.pool(F.relu(self.conv1(x)))   # (N, 8, 8, 8)
        x = self.pool(F.relu(self.conv2(x)))   # (N, 16, 4, 4)
        return self.fc(x.flatten(1))


def build_model() -> nn.Module:
    """The classifier: a (N, 1, 16, 16) image batch in, 10 class scores out."""
    return GlyphNet()


def evaluate(model: nn.Module, x: engine.Tensor, y: engine.Tensor) -> tuple[float, float]:
    """(mean loss, accuracy) on a whole set, without recording a graph."""
    model.eval()
    with engine.no_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y).item()
        accuracy = (logits.argmax(1) == y).float().mean().item()
    model.train()
    return loss, accuracy


def main(epochs: int = 4, n: int = 2000, batch_size: int = 32, lr: float = 0.003, seed: int = 0,
         verbose: bool = True) -> dict:
    """Train on `n` glyphs, test on 500 fresh ones; returns the final metrics."""
    engine.manual_seed(seed)
    x_train, y_train = glyphs(n, seed=seed)
    x_test, y_test = glyphs(500, seed=seed + 1)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True)

    model = build_model()
    optimizer = engine.optim.Adam(model.parameters(), lr=lr)
    history = []
    for epoch in range(1, epochs + 1):
        total, correct, seen = 0.0, 0, 0
        for images, labels in loader:
            logits = model(images)
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(labels)
            correct += (logits.argmax(1) == labels).sum().item()
            seen += len(labels)
        test_loss, test_acc = evaluate(model, x_test, y_test)
        history.append(total / seen)
        if verbose:
            print(f"epoch {epoch:2d}  loss {total / seen:.4f}  train acc {correct / seen:6.1%}  "
                  f"test loss {test_loss:.4f}  test acc {test_acc:6.1%}")
    return {"train_loss": history, "test_loss": test_loss, "test_accuracy": test_acc}


if __name__ == "__main__":
    main()
