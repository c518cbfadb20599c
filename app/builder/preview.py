"""What a model predicts, as plain numpy data for the prediction view (widgets.decision_boundary).

    preview = compute_preview(model, loaded, "index")   # on the engine thread, between iterations
    # {"kind": "boundary", "probs": (H, W, C), "extent": (x0, x1, y0, y1), "points": ..., "labels": ...}
    # {"kind": "curve", "x": ..., "y": ..., "x_curve": ..., "y_curve": ...}
    # {"kind": "images", "images": (K, H, W), "predicted": (K,), "labels": (K,), "names": [...]}

The model runs under no_grad in eval mode, and `untraced()` keeps these ops out of the debugger's graph
and the tape: they are the app's own look at the model, not part of the person's training step.
"""

from __future__ import annotations

import numpy as np

import engine
from app.builder.data import LoadedData
from engine.events import hub

MAX_POINTS = 1000
IMAGES = 16


def untraced():
    """Run a block on the engine thread without emitting events (ops, module calls) to any listener."""
    return hub.silenced()


def predict(model, x: np.ndarray) -> np.ndarray:
    """The model's raw output for a numpy batch, untraced, in eval mode (the mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        with untraced(), engine.no_grad():
            return np.asarray(model(engine.tensor(x)), dtype=np.float32)
    finally:
        model.train(was_training)


def probabilities(output: np.ndarray, targets: str, threshold: float | None = None) -> np.ndarray:
    """Class probabilities (..., C) from the output a loss scores: softmax of scores, or a 0/1 output."""
    if targets == "binary":
        p = 1 / (1 + np.exp(-output[..., 0])) if threshold == 0.0 else np.clip(output[..., 0], 0, 1)
        return np.stack([1 - p, p], -1)
    z = output - output.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def boundary(model, points: np.ndarray, labels: np.ndarray, targets: str = "index",
             threshold: float | None = None, resolution: int = 96, margin: float = 0.15) -> dict:
    """Class probabilities on a resolution x resolution grid around 2-D points, and the points."""
    lo, hi = points.min(0), points.max(0)
    pad = (hi - lo) * margin + 1e-6
    x0, y0 = lo - pad
    x1, y1 = hi + pad
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)
    probs = probabilities(predict(model, grid), targets, threshold).reshape(resolution, resolution, -1)
    return {"kind": "boundary", "probs": probs.astype(np.float32), "extent": (float(x0), float(x1), float(y0),
            float(y1)), "points": points[:MAX_POINTS], "labels": labels[:MAX_POINTS]}


def curve(model, x: np.ndarray, y: np.ndarray, steps: int = 200) -> dict:
    """The model's curve over the range of 1-D inputs, with the data points."""
    grid = np.linspace(x.min(), x.max(), steps, dtype=np.float32)[:, None]
    out = predict(model, grid)
    return {"kind": "curve", "x": x[:MAX_POINTS, 0], "y": y[:MAX_POINTS].reshape(len(y[:MAX_POINTS]), -1)[:, 0],
            "x_curve": grid[:, 0], "y_curve": out.reshape(steps, -1)[:, 0]}


def images(model, x: np.ndarray, labels: np.ndarray, names: tuple[str, ...], count: int = IMAGES) -> dict:
    """The first `count` images (first channel) with predicted and true labels."""
    out = predict(model, x[:count])
    return {"kind": "images", "images": x[:count, 0], "predicted": out.argmax(-1), "labels": labels[:count],
            "names": list(names)}


def compute_preview(model, loaded: LoadedData, targets: str = "index", threshold: float | None = None) -> dict | None:
    """The preview that fits the data: a decision boundary, a regression curve, or labelled images."""
    if loaded.kind == "points" and loaded.task == "classification":
        return boundary(model, loaded.x, loaded.y, targets, threshold)
    if loaded.kind == "curve":
        return curve(model, loaded.x, loaded.y)
    if loaded.kind == "images" and loaded.task == "classification":
        return images(model, loaded.x, loaded.y, loaded.class_names)
    return None
