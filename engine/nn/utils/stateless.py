"""torch.nn.utils.stateless: functional_call lives in engine.func; this is its older address."""

from engine.func import functional_call

__all__ = ["functional_call"]
