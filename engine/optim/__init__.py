"""Optimizers and learning-rate schedulers with PyTorch's names and math (`engine.optim.Adam`, ...)."""

from engine.optim import lr_scheduler
from engine.optim.adadelta import Adadelta
from engine.optim.adafactor import Adafactor
from engine.optim.adagrad import Adagrad
from engine.optim.adam import Adam, AdamW
from engine.optim.adam_variants import Adamax, NAdam, RAdam
from engine.optim.asgd import ASGD
from engine.optim.lbfgs import LBFGS
from engine.optim.optimizer import Optimizer
from engine.optim.rmsprop import RMSprop
from engine.optim.rprop import Rprop
from engine.optim.sgd import SGD
from engine.optim.sparse_adam import SparseAdam

__all__ = ["ASGD", "LBFGS", "SGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "NAdam",
           "Optimizer", "RAdam", "RMSprop", "Rprop", "SparseAdam", "lr_scheduler", "swa_utils"]


def __getattr__(name: str):
    # swa_utils builds on engine.nn (AveragedModel is a Module), which `import engine` loads only on first use
    if name == "swa_utils":
        import importlib

        return importlib.import_module("engine.optim.swa_utils")
    raise AttributeError(f"module 'engine.optim' has no attribute {name!r}")
