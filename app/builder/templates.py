"""Starting builds, one per built-in dataset: a model that fits the data's shapes and learns it."""

from __future__ import annotations

from app.builder.data import DATASETS, load
from app.builder.spec import BuildSpec, Data, Layer, Training


def _mlp(inputs: int, hidden: int, outputs: int, activation: str) -> list[Layer]:
    return [Layer("Linear", {"in_features": inputs, "out_features": hidden}), Layer(activation),
            Layer("Linear", {"in_features": hidden, "out_features": hidden}), Layer(activation),
            Layer("Linear", {"in_features": hidden, "out_features": outputs})]


def _cnn(channels: int, size: int, classes: int) -> list[Layer]:
    conv = {"kernel_size": 3, "padding": 1}
    return [Layer("Conv2d", {"in_channels": channels, "out_channels": 8, **conv}), Layer("ReLU"),
            Layer("MaxPool2d", {"kernel_size": 2}),
            Layer("Conv2d", {"in_channels": 8, "out_channels": 16, **conv}), Layer("ReLU"),
            Layer("MaxPool2d", {"kernel_size": 2}), Layer("Flatten"),
            Layer("Linear", {"in_features": 16 * (size // 4) ** 2, "out_features": classes})]


def _char_model(vocab: int) -> list[Layer]:
    return [Layer("Embedding", {"num_embeddings": vocab, "embedding_dim": 32}),
            Layer("LSTM", {"input_size": 32, "hidden_size": 64, "batch_first": True}),
            Layer("Linear", {"in_features": 64, "out_features": vocab})]


def starter(name: str) -> BuildSpec:
    """A working build for built-in dataset `name`: an MLP, a small CNN or a character LSTM."""
    source = DATASETS[name]
    data = Data(name=name, n=source.n, noise=source.noise)
    loaded = load(data)
    if source.kind == "points":
        return BuildSpec(_mlp(2, 32, loaded.classes, "ReLU"), data, Training(epochs=40), f"{name}-mlp")
    if source.kind == "curve":
        return BuildSpec(_mlp(1, 32, 1, "Tanh"), data, Training(loss="MSELoss", epochs=60), f"{name}-mlp")
    if source.kind == "images":
        channels, size = loaded.x.shape[1], loaded.x.shape[2]
        return BuildSpec(_cnn(channels, size, loaded.classes), data,
                         Training(optimizer_args={"lr": 0.003}, epochs=4), f"{name}-cnn")
    if source.kind == "text":
        return BuildSpec(_char_model(len(loaded.vocab)), data, Training(epochs=6), f"{name}-lstm")
    raise ValueError(f"no starting build for {name!r}: load a file, then add layers from the palette")
