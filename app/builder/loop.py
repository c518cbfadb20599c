"""The training loop a build runs, written as plain engine code.

These functions are copied verbatim into exported scripts (app.builder.export), so the app and the
script train the same way; they use only `engine` and may not import anything else.
"""

from __future__ import annotations

import engine


def compute_loss(loss_fn, output, target):
    """The loss of a batch; a sequence's scores (N, L, C) are scored at every position."""
    if output.ndim == 3 and target.ndim == 2 and target.dtype == engine.int64:
        output, target = output.flatten(0, 1), target.flatten()
    return loss_fn(output, target)


def accuracy(output, target, threshold=None):
    """Fraction of right answers: output > threshold for 0/1 targets, else the top class; None for values."""
    if threshold is not None:
        return ((output > threshold).float() == target).float().mean().item()
    if target.dtype != engine.int64:
        return None
    return (output.argmax(-1) == target).float().mean().item()


def evaluate(model, loss_fn, x, y, threshold=None):
    """(mean loss, accuracy or None) of the model on a whole set, without recording a graph."""
    model.eval()
    with engine.no_grad():
        output = model(x)
        loss = compute_loss(loss_fn, output, y).item()
        acc = accuracy(output, y, threshold)
    model.train()
    return loss, acc


def print_progress(metrics):
    """One line per epoch: losses, test accuracy and learning rate."""
    line = f"epoch {metrics['epoch']:3d}   loss {metrics['train_loss']:.4f}"
    if "test_loss" in metrics:
        line += f"   test loss {metrics['test_loss']:.4f}"
    if metrics.get("test_accuracy") is not None:
        line += f"   test accuracy {metrics['test_accuracy']:6.1%}"
    print(line + f"   lr {metrics['lr']:.3g}")


def fit(model, loader, loss_fn, optimizer, epochs, scheduler=None, step="epoch", test=None, threshold=None,
        report=print_progress, on_step=None):
    """Train for `epochs` epochs with one optimizer step per batch; returns each epoch's metrics.

    step: when the scheduler steps, "epoch", "batch" or "metric" (ReduceLROnPlateau, on the test loss).
    test: (x, y) held out. report(metrics) after each epoch; on_step(epoch, batch) after each step.
    """
    history = []
    for epoch in range(1, epochs + 1):
        total, seen = 0.0, 0
        for batch, (xb, yb) in enumerate(loader):

            def closure(xb=xb, yb=yb):
                optimizer.zero_grad()
                loss = compute_loss(loss_fn, model(xb), yb)
                loss.backward()
                return loss

            if getattr(optimizer, "needs_closure", False):  # L-BFGS evaluates the batch as often as it needs
                loss = optimizer.step(closure)  # the loss of its first evaluation, as the others report
            else:
                loss = closure()
                optimizer.step()
            if scheduler is not None and step == "batch":
                scheduler.step()
            total += loss.item() * len(xb)
            seen += len(xb)
            if on_step is not None:
                on_step(epoch, batch)
        metrics = {"epoch": epoch, "train_loss": total / seen, "lr": optimizer.param_groups[0]["lr"]}
        if test is not None:
            metrics["test_loss"], metrics["test_accuracy"] = evaluate(model, loss_fn, *test, threshold)
        if scheduler is not None and step == "epoch":
            scheduler.step()
        elif scheduler is not None and step == "metric":
            scheduler.step(metrics.get("test_loss", metrics["train_loss"]))
        history.append(metrics)
        if report is not None:
            report(metrics)
    return history
