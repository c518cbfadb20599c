"""The model builder without a display: catalog, build document, shape checks, data, training, export."""

import ast
import inspect
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engine
import engine.nn.layers as engine_layers
from app.builder import (
    BuildError,
    BuildSpec,
    Data,
    DataError,
    Layer,
    SpecError,
    Training,
    build,
    catalog,
    check,
    compute_preview,
    export_script,
    from_json,
    load,
    make_training_callable,
    spec,
    starter,
    untraced,
)
from app.builder.blocks import make_model
from app.builder.catalog import ArgError
from app.builder.services import PanelServices
from engine.events import OptimizerEvent, hub


def mlp(hidden=200, classes=2, inputs=2, activation="ReLU"):
    return [Layer("Linear", {"in_features": inputs, "out_features": hidden}), Layer(activation),
            Layer("Linear", {"in_features": hidden, "out_features": classes})]


def spirals_spec(epochs=40, **training):
    """Linear-ReLU-Linear on 800 spiral points (640 to train on: 40 batches of 16)."""
    return BuildSpec(mlp(), Data(name="spirals", n=800, noise=0.05, batch_size=16),
                     Training(epochs=epochs, optimizer_args={"lr": 0.02}, **training), "spirals-mlp")


def one_line(err) -> str:
    text = str(err.value if hasattr(err, "value") else err)
    assert "\n" not in text and text
    return text


# ---- the catalog ----------------------------------------------------------------------------------
def test_the_palette_offers_every_engine_layer_with_its_signature():
    offered = set(catalog.LAYERS)
    expected = {n for n in engine_layers.__all__ if not n.endswith("Loss")} - set(catalog.NOT_OFFERED)
    assert expected <= offered and {"Residual", "Repeat"} <= offered
    linear = catalog.LAYERS["Linear"]
    assert linear.names() == ["in_features", "out_features", "bias"]  # device and dtype are the builder's
    assert linear.arg("in_features").required and linear.arg("in_features").kind == "int"
    assert catalog.LAYERS["Conv2d"].arg("kernel_size").kind == "size"
    # ranges come from the classes' own settings where they have them
    assert catalog.LAYERS["Dropout"].arg("p").allowed() == "a number in [0, 1]"
    assert catalog.LAYERS["GELU"].arg("approximate").choices == ("none", "tanh")
    assert catalog.LAYERS["LSTM"].tuple_output and catalog.LAYERS["MultiheadAttention"].inputs == 3
    assert set(catalog.LOSSES) >= {"CrossEntropyLoss", "MSELoss"} and "Adam" in catalog.OPTIMIZERS
    assert catalog.SCHEDULERS["OneCycleLR"].extra["step"] == "batch"
    json.dumps(catalog.palette())  # plain data all the way


def test_argument_values_are_checked_with_one_line_messages():
    linear = catalog.LAYERS["Linear"]
    assert linear.check_args({"in_features": 2, "out_features": 8.0}) == \
        {"in_features": 2, "out_features": 8, "bias": True}
    with pytest.raises(ArgError, match=r"Linear: out_features must be an integer >= 1, got 0") as err:
        linear.check_args({"in_features": 2, "out_features": 0})
    one_line(err)
    with pytest.raises(ArgError, match="unknown argument 'outfeatures'"):
        linear.check_args({"in_features": 2, "outfeatures": 3})
    with pytest.raises(ArgError, match="in_features is required"):
        linear.check_args({})
    conv = catalog.LAYERS["Conv2d"]
    assert conv.check_args({"in_channels": 1, "out_channels": 4, "kernel_size": [3, 5], "padding": "same"}
                           )["kernel_size"] == (3, 5)
    with pytest.raises(ArgError, match="kernel_size must be an integer or a tuple of integers, each >= 1"):
        conv.check_args({"in_channels": 1, "out_channels": 4, "kernel_size": [3, 0]})
    with pytest.raises(ArgError, match="bias must be true or false, got 1"):
        linear.check_args({"in_features": 2, "bias": 1})


@pytest.mark.parametrize("kind", sorted(k for k, e in catalog.LAYERS.items() if not e.takes_children))
def test_every_palette_layer_can_be_dropped_in_and_constructed(kind):
    layer = spec.new_layer(kind, in_shape=(3, 4, 8), facts={"vocab": 20})
    module = make_model([layer])
    assert isinstance(module, engine.nn.Module)


# ---- the document ---------------------------------------------------------------------------------
def test_a_build_with_nested_blocks_round_trips_through_json():
    s = spirals_spec()
    s.layers[2:2] = [Layer("Residual", {}, [Layer("Linear", {"in_features": 200, "out_features": 200}),
                                            Layer("Tanh")]),
                     Layer("Repeat", {"times": 2}, [Layer("Linear", {"in_features": 200, "out_features": 200}),
                                                    Layer("ReLU")])]
    s.training.scheduler, s.training.scheduler_args = "StepLR", {"step_size": 5}
    text = s.to_json()
    assert from_json(text) == s
    doc = json.loads(text)
    assert doc["version"] == 1 and doc["layers"][2]["children"][1] == {"type": "Tanh"}
    assert check(s).ok


@pytest.mark.parametrize("text, message", [
    ("{", "not valid JSON (line 1, column 2"),
    ("[1, 2]", "expected a JSON object at the top, got a list"),
    ('{"version": 7}', "written by a newer Tapescope (version 7)"),
    ('{"layers": {"type": "Linear"}}', "'layers' must be a list, got an object"),
    ('{"layers": [{"type": "Linear", "args": {"in_features": {"a": 1}}}]}', "argument 'in_features' must be"),
    ('{"layers": [{"kind": "Linear"}]}', "layer 0: unknown key(s) 'kind'"),
    ('{"data": {"n": "many"}}', "data.n must be an integer, got 'many'"),
    ('{"training": {"lr": 0.1}}', "unknown key(s) in 'training': 'lr'"),
    ('{"name": "x\\"\\"\\"; import os"}', "name must be 1-60 letters"),
])
def test_bad_build_files_give_one_line_errors(text, message):
    with pytest.raises(SpecError) as err:
        from_json(text, "my.json")
    assert message in one_line(err) and one_line(err).startswith("my.json: ")


def test_values_that_do_not_fit_are_reported_at_their_place():
    s = spirals_spec()
    s.layers[0].args["out_features"] = -1
    s.layers.insert(1, Layer("Linaer"))
    s.data.batch_size = 0
    s.training.optimizer = "Adamm"
    found = {(p.section, p.path, p.arg): p.message for p in spec.problems(s)}
    assert found[("layers", (0,), "out_features")].startswith("layer 0: Linear: out_features must be")
    assert "did you mean 'Linear'?" in found[("layers", (1,), "")]
    assert "batch_size must be in [1, 100000]" in found[("data", (), "batch_size")]
    assert "did you mean 'Adam'?" in found[("training", (), "optimizer")]


# ---- shapes ---------------------------------------------------------------------------------------
def test_shapes_are_inferred_per_layer_against_the_dataset():
    report = check(starter("glyphs"))
    assert report.ok, report.first_problem()
    shapes = {s["path"][0]: (s["in"], s["out"]) for s in report.to_dict()["layers"]}
    assert shapes[0] == ("(N, 1, 16, 16)", "(N, 8, 16, 16)")
    assert shapes[6] == ("(N, 16, 4, 4)", "(N, 256)")
    assert report.to_dict()["output"] == "(N, 10)" and report.parameters == 3818


def test_a_shape_mismatch_is_refused_naming_the_layer_and_both_shapes():
    s = spirals_spec()
    s.layers[2].args["in_features"] = 64
    report = check(s)
    assert [p.path for p in report.problems] == [(2,)]
    assert report.layers[(2,)].error == "layer 2 (Linear) expects (N, 64) (in_features=64) but gets (N, 200)"
    with pytest.raises(BuildError, match=r"layer 2 \(Linear\) expects \(N, 64\).*gets \(N, 200\)"):
        build(s)
    with pytest.raises(BuildError):
        make_training_callable(s)()


def test_mismatches_inside_blocks_are_shown_at_the_inner_layer():
    s = spirals_spec()
    s.layers.insert(2, Layer("Residual", {}, [Layer("Linear", {"in_features": 200, "out_features": 32})]))
    assert "a residual block must keep the shape" in check(s).first_problem()
    assert check(s).problems[0].path == (2,)
    s.layers[2] = Layer("Repeat", {"times": 3}, [Layer("Linear", {"in_features": 200, "out_features": 32})])
    problem = check(s).problems[0]
    assert problem.path == (2, 0) and "in copy 2 of 3 expects (N, 200)" in problem.message
    s.layers[2] = Layer("Residual", {}, [Layer("ReLU"), Layer("Linear", {"in_features": 12, "out_features": 128})])
    assert check(s).problems[0].path == (2, 1)


def test_the_output_must_fit_the_loss_and_the_labels():
    s = spirals_spec()
    s.layers[-1].args["out_features"] = 3
    assert check(s).first_problem() == ("layer 2 (Linear) gives (N, 3), but CrossEntropyLoss needs (N, 2): one "
                                        "score per class (2 classes in spirals)")
    s = starter("sine")
    s.training.loss = "CrossEntropyLoss"
    assert "needs class labels, but sine has values to regress: choose" in check(s).first_problem()
    s = spirals_spec()
    s.layers[0].args["in_features"] = 3
    assert check(s).first_problem().startswith("layer 0 (Linear) expects (N, 3)")
    s = spirals_spec()
    s.layers.insert(0, Layer("Conv2d", {"in_channels": 2, "out_channels": 4, "kernel_size": 3}))
    assert check(s).first_problem().startswith("layer 0 (Conv2d) cannot take (N, 2): ")


@pytest.mark.parametrize("name", ["spirals", "moons", "circles", "xor", "sine", "glyphs", "text"])
def test_every_built_in_dataset_has_a_starter_that_checks_out(name):
    report = check(starter(name))
    assert report.ok, report.first_problem()


# ---- training -------------------------------------------------------------------------------------
def test_linear_relu_linear_learns_spirals_above_90_percent():
    history = make_training_callable(spirals_spec(epochs=20), verbose=False)()
    assert len(history) == 20
    assert history[0]["test_accuracy"] < 0.8 < 0.9 < history[-1]["test_accuracy"]


def test_the_training_callable_steps_the_optimizer_each_batch_and_previews_untraced():
    s = spirals_spec(epochs=2)
    s.data.n = 100
    events = []
    off = hub.subscribe(events.append)
    try:
        previews = []
        make_training_callable(s, on_progress=previews.append, preview_every=2, verbose=False)()
    finally:
        off()
    assert sum(isinstance(e, OptimizerEvent) for e in events) == 10  # 80 samples in batches of 16, twice
    assert [p.iteration for p in previews if p.metrics is None] == [0, 2, 4, 6, 8, 10]
    assert [(p.epoch, p.iteration) for p in previews if p.metrics] == [(1, 5), (2, 10)]
    assert all(p.preview["kind"] == "boundary" for p in previews)
    model = build(s).model
    events.clear()
    off = hub.subscribe(events.append)
    try:
        preview = compute_preview(model, load(s.data))
        with untraced():
            model(engine.randn(4, 2))
    finally:
        off()
    assert events == [] and hub.active == hub.listened()
    probs = preview["probs"]
    assert probs.shape == (96, 96, 2) and np.allclose(probs.sum(-1), 1, atol=1e-5)


def test_data_settings_reach_the_loaders():
    s = spirals_spec()
    s.data = Data(name="moons", n=123, noise=0.3, batch_size=10, seed=4, test_fraction=0.2)
    run = build(s)
    assert len(run.loader.dataset) == 98 and len(run.test[0]) == 25 and len(run.loader) == 10
    quiet = load(Data(name="moons", n=123, noise=0.0, seed=4)).x
    assert not np.allclose(run.data.x, quiet)


@pytest.mark.parametrize("scheduler, args", [("OneCycleLR", {"max_lr": 0.05}), ("ReduceLROnPlateau", {}),
                                             ("CosineAnnealingLR", {}), ("StepLR", {"step_size": 1})])
def test_schedulers_step_as_they_should(scheduler, args):
    s = spirals_spec(epochs=2, scheduler=scheduler, scheduler_args=args)
    s.data.n = 100
    history = make_training_callable(s, verbose=False)()
    assert len(history) == 2 and all(np.isfinite(h["train_loss"]) for h in history)
    if scheduler in ("OneCycleLR", "StepLR", "CosineAnnealingLR"):
        assert history[1]["lr"] != history[0]["lr"]


def test_text_and_image_builds_train():
    for name in ("text", "glyphs"):
        s = starter(name)
        s.data.n, s.training.epochs = 64, 1
        history = make_training_callable(s, verbose=False)()
        assert np.isfinite(history[0]["test_loss"])
    preview = build(s).preview()
    assert preview["kind"] == "images" and preview["images"].shape == (16, 16, 16)


# ---- data files -----------------------------------------------------------------------------------
def npz_data(tmp_path, **arrays):
    path = tmp_path / "mine.npz"
    np.savez(path, **arrays)
    return Data(name="npz", path=str(path))


def test_a_persons_npz_and_csv_are_loaded(tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 2))
    loaded = load(npz_data(tmp_path, features=x, labels=(x[:, 0] > 0).astype(np.int64)))
    assert loaded.task == "classification" and loaded.classes == 2 and loaded.kind == "points"
    csv = tmp_path / "iris.csv"
    csv.write_text("a,b,species\n1,2,setosa\n3,4,virginica\n5,6,setosa\n")
    loaded = load(Data(name="csv", path=str(csv), label_column="species"))
    assert loaded.class_names == ("setosa", "virginica") and loaded.y.tolist() == [0, 1, 0]
    assert loaded.x.tolist() == [[1, 2], [3, 4], [5, 6]]
    csv.write_text("1.5,2,0.25\n3,4,0.5\n")  # no header; float labels: regression
    loaded = load(Data(name="csv", path=str(csv)))
    assert loaded.task == "regression" and loaded.y.tolist() == [0.25, 0.5]


@pytest.mark.parametrize("arrays, message", [
    ({"a": np.zeros(3)}, "mine.npz: needs arrays named x and y (or features and labels); found a"),
    ({"x": np.zeros((3, 2)), "y": np.zeros(4)}, "mine.npz: x has 3 samples but y has 4"),
    ({"x": np.array([[1.0, np.nan]]), "y": np.zeros(1)}, "mine.npz: x holds NaN or infinite values"),
    ({"x": np.array(["a", "b"]), "y": np.zeros(2)}, "mine.npz: array 'x' must hold numbers, not <U1"),
    ({"x": np.zeros((2, 2)), "y": np.array([-1, 0])}, "mine.npz: class labels must be 0, 1, 2, ...; found -1"),
])
def test_bad_npz_files_give_one_line_errors(tmp_path, arrays, message):
    with pytest.raises(DataError) as err:
        load(npz_data(tmp_path, **arrays))
    assert one_line(err) == message


def test_npz_files_that_are_not_archives_or_hold_objects_are_refused(tmp_path):
    path = tmp_path / "mine.npz"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match=r"^mine.npz: not a .npz file") as err:
        load(Data(name="npz", path=str(path)))
    one_line(err)
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object), y=np.zeros(2))
    with pytest.raises(DataError, match="holds Python objects; save numeric arrays") as err:
        load(Data(name="npz", path=str(path)))
    with pytest.raises(DataError, match=r"^missing.npz: no such file$"):
        load(Data(name="npz", path=str(tmp_path / "missing.npz")))


@pytest.mark.parametrize("text, column, message", [
    ("", -1, "data.csv: is empty"),
    ("a,b,c\n", -1, "data.csv: has a header but no samples"),
    ("a,b,c\n1,2,0\n3,4\n", -1, "data.csv: line 3 has 2 fields, expected 3"),
    ("a,b,c\n1,2,0\n3,x,1\n", -1, "data.csv: line 3, column 'b': 'x' is not a number"),
    ("a,b,c\n1,2,0\n", "label", "data.csv: no column named 'label' (a, b, c)"),
    ("1,2,0\n", 5, "data.csv: label column 5 is out of range for 3 columns"),
    ("1\n2\n", -1, "data.csv: needs at least two columns (features and a label), found 1"),
])
def test_bad_csv_files_give_one_line_errors(tmp_path, text, column, message):
    path = tmp_path / "data.csv"
    path.write_text(text)
    with pytest.raises(DataError) as err:
        load(Data(name="csv", path=str(path), label_column=column))
    assert one_line(err) == message


def test_a_bad_file_shows_as_a_data_problem_of_the_build(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b,c\n1,x,0\n")
    s = spirals_spec()
    s.data = Data(name="csv", path=str(path))
    report = check(s)
    assert [(p.section, p.message) for p in report.problems] == \
        [("data", "data.csv: line 2, column 'b': 'x' is not a number")]


# ---- export ---------------------------------------------------------------------------------------
def test_the_exported_script_runs_on_its_own_and_learns(tmp_path):
    s = spirals_spec(epochs=12, scheduler="StepLR", scheduler_args={"step_size": 8, "gamma": 0.5})
    s.layers.insert(2, Layer("Residual", {}, [Layer("Linear", {"in_features": 200, "out_features": 200}),
                                              Layer("Tanh")]))
    script = tmp_path / "spirals_mlp.py"
    script.write_text(export_script(s))
    # one BLAS thread: a fresh process on a busy 2-core machine otherwise spends its time contending
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 12 and lines[-1].endswith("lr 0.01")  # halved by StepLR after 8 epochs
    assert float(lines[-1].split("test accuracy")[1].split("%")[0]) > 90


def test_the_exported_script_trains_exactly_as_the_app(tmp_path, capsys):
    s = spirals_spec(epochs=3, scheduler="OneCycleLR", scheduler_args={"max_lr": 0.05})
    s.layers[1:1] = [Layer("Repeat", {"times": 2}, [Layer("Linear", {"in_features": 200, "out_features": 200}),
                                                    Layer("Tanh")])]
    script = tmp_path / "spirals_mlp.py"
    script.write_text(export_script(s))
    runpy.run_path(str(script), run_name="__main__")  # in this process: the same BLAS, the same sums
    from_script = capsys.readouterr().out
    make_training_callable(s)()
    assert capsys.readouterr().out == from_script and from_script.count("epoch") == 3


def test_the_exported_model_is_the_built_model(tmp_path):
    s = starter("text")
    s.layers.insert(1, Layer("Repeat", {"times": 2}, [Layer("TransformerEncoder", {"num_layers": 1}, [
        Layer("TransformerEncoderLayer", {"d_model": 32, "nhead": 4, "dim_feedforward": 16})])]))
    s.layers.insert(2, Layer("MultiheadAttention", {"embed_dim": 32, "num_heads": 4}))
    assert check(s).ok, check(s).first_problem()
    script = tmp_path / "model.py"
    script.write_text(export_script(s))
    namespace = runpy.run_path(str(script))  # defines functions; main() runs only as __main__
    engine.manual_seed(0)
    exported = namespace["build_model"]().state_dict()
    engine.manual_seed(0)
    built = make_model(s.layers).state_dict()
    assert list(exported) == list(built)
    assert all(np.array_equal(exported[k].numpy(), built[k].numpy()) for k in built)


def test_a_csv_build_exports_a_script_that_reads_the_file(tmp_path, capsys):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 2))
    rows = "\n".join(f"{a:.4f},{b:.4f},{'yes' if a * b > 0 else 'no'}" for a, b in x)
    path = tmp_path / "quadrants.csv"
    path.write_text("u,v,label\n" + rows + "\n")
    s = spirals_spec(epochs=2)
    s.data = Data(name="csv", path=str(path), label_column="label", batch_size=16)
    script = tmp_path / "quadrants.py"
    script.write_text(export_script(s))
    runpy.run_path(str(script), run_name="__main__")
    from_script = capsys.readouterr().out
    make_training_callable(s)()
    assert capsys.readouterr().out == from_script and from_script.count("epoch") == 2


def test_export_writes_only_checked_values_and_never_runs_text(tmp_path):
    s = spirals_spec()
    tricky = str(tmp_path / 'x"); import os; os.system("echo owned.csv')
    s.data = Data(name="csv", path=tricky)
    text = export_script(s)
    tree = ast.parse(text)
    assert tricky in [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    assert not any(isinstance(n, ast.Call) and getattr(n.func, "id", "") in ("eval", "exec", "__import__")
                   for n in ast.walk(tree))
    assert "import os" not in [line.strip() for line in text.splitlines()]
    s.layers[0].args["out_features"] = "__import__('os')"
    with pytest.raises(ValueError, match="cannot export: layer 0: Linear: out_features must be an integer"):
        export_script(s)


def test_the_helpers_copied_into_scripts_are_self_contained():
    from app.builder import blocks, data, loop

    allowed = {"engine", "nn", "np", "csv", "Path", "print_progress", "compute_loss", "accuracy", "evaluate"}
    builtins = set(dir(__builtins__)) if isinstance(__builtins__, dict) is False else set(__builtins__)
    for fn in (blocks.Residual, blocks.OutputOf, data.read_npz, data.read_csv, data.char_windows,
               data.as_targets, data.split, loop.compute_loss, loop.accuracy, loop.evaluate, loop.fit):
        tree = ast.parse(inspect.getsource(fn))
        local = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        local |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments)
                  for a in [*n.args, *n.kwonlyargs, n.vararg, n.kwarg] if a is not None}
        local |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)}
        local |= {n.name for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler) and n.name}
        free = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        assert free - local - allowed - builtins - {"self", "super"} == set(), fn.__name__


def test_panel_services_speak_plain_data():
    services = PanelServices()
    doc = services.default()
    json.dumps(services.palette())
    report = services.check(doc)
    assert report["ok"] and report["layers"][0]["out"] == "(N, 32)"
    layer = services.new_layer(doc, "Linear", [5])  # after the last layer: sized to its output
    assert layer["args"]["in_features"] == 2
    assert services.new_layer(doc, "LayerNorm", [2])["args"]["normalized_shape"] == 32
    bad = services.check({"layers": "nope"})
    assert not bad["ok"] and "'layers' must be a list" in bad["problems"][0]["message"]
    assert services.load(services.dump(doc)) == json.loads(services.dump(doc))
    assert "def build_model" in services.export(doc)


def test_the_builder_imports_no_qt():
    code = ("import sys, app.builder; "
            "print(sorted(n for n in sys.modules if n.split('.')[0] in ('PySide6', 'pyqtgraph', 'widgets')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_every_offered_optimizer_trains_a_build_and_only_optimizers_are_offered():
    # engine.optim exports modules too (lr_scheduler, swa_utils): the palette must offer classes only, and
    # L-BFGS, whose step needs a closure, must train as the others do
    assert all(issubclass(entry.cls, engine.optim.Optimizer) for entry in catalog.OPTIMIZERS.values())
    assert "LBFGS" in catalog.OPTIMIZERS
    for name in catalog.OPTIMIZERS:
        s = spirals_spec(epochs=1, optimizer=name)
        s.data.n = 64
        s.training.optimizer_args = {"lr": 0.5} if name == "LBFGS" else {}
        history = make_training_callable(s, verbose=False)()
        assert len(history) == 1 and np.isfinite(history[0]["train_loss"]), name
