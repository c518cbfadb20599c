"""engine.cuda: what torch.cuda offers a training script, for the GPUs CuPy drives.

    if engine.cuda.is_available():
        model.to("cuda")
        ...
        engine.cuda.synchronize()
        print(engine.cuda.memory_allocated() / 2**20, "MiB in tensors")

Asking about GPUs never needs CuPy: without it (or without a driver) `is_available()` is False and
`device_count()` is 0. Everything that touches a device raises the one error of
`engine.backend.require_cuda`, which says what is missing.
"""

from __future__ import annotations

from engine import backend, kernels


def is_available() -> bool:
    """True when CuPy is installed and sees at least one CUDA device."""
    return device_count() > 0


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """False: the engine has no bfloat16 on any device (scripts choose float16 from this, as on older GPUs)."""
    return False


def device_count() -> int:
    """How many CUDA devices CuPy sees (0 without CuPy or without a working driver)."""
    cp = backend.cupy_module()
    if cp is None:
        return 0
    try:
        return int(cp.cuda.runtime.getDeviceCount())
    except Exception:  # CUDA runtime errors: no driver, no device
        return 0


def _device(device) -> backend.Device:
    """A CUDA Device from None (the current one), an index, "cuda", "cuda:N" or a Device."""
    if device is None:
        device = current_device()
    if isinstance(device, int) and not isinstance(device, bool):
        device = f"cuda:{device}"
    dev = backend.device(device)
    if dev.type != "cuda":
        raise ValueError(f"engine.cuda: expected a CUDA device, got {dev}")
    return dev


def current_device() -> int:
    """The index of the device CuPy launches on by default."""
    cp = backend.require_cuda(backend.Device("cuda", 0))
    return int(cp.cuda.Device().id)


def get_device_name(device=None) -> str:
    """The marketing name of a device, e.g. "NVIDIA H100 80GB HBM3"."""
    dev = _device(device)
    cp = backend.require_cuda(dev)
    name = cp.cuda.runtime.getDeviceProperties(dev.index)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def synchronize(device=None) -> None:
    """Wait until every kernel queued on the device has finished (do this before reading a timer)."""
    dev = _device(device)
    backend.require_cuda(dev).cuda.Device(dev.index).synchronize()
    kernels.settle_device_checks()  # the device is idle now: a failed device-side check raises here


def memory_allocated(device=None) -> int:
    """Bytes held by live arrays on the device, as CuPy's memory pool counts them."""
    dev = _device(device)
    cp = backend.require_cuda(dev)
    with cp.cuda.Device(dev.index):
        return int(cp.get_default_memory_pool().used_bytes())


def memory_reserved(device=None) -> int:
    """Bytes CuPy's memory pool holds on the device: in use plus cached for reuse."""
    dev = _device(device)
    cp = backend.require_cuda(dev)
    with cp.cuda.Device(dev.index):
        return int(cp.get_default_memory_pool().total_bytes())


def empty_cache() -> None:
    """Give the pool's cached, unused blocks back to the driver (on every device)."""
    cp = backend.cupy_module()
    if cp is not None:
        cp.get_default_memory_pool().free_all_blocks()


# ---- random numbers on the GPU (engine.random keeps one generator per device) ---------------------------
def manual_seed(seed: int) -> None:
    """Seed the current GPU's generator; without a GPU nothing happens, as in torch (a CPU-only run of a
    script that seeds both works)."""
    if is_available():
        from engine import random

        random._global(_device(None)).manual_seed(seed)


def manual_seed_all(seed: int) -> None:
    """Seed the generator of every GPU (nothing without one)."""
    from engine import random

    for i in range(device_count()):
        random._global(_device(i)).manual_seed(seed)


def get_rng_state(device=None):
    """The state of a GPU's generator (a uint8 Tensor on the CPU), for set_rng_state."""
    from engine import random

    dev = _device(device)
    backend.require_cuda(dev)
    return random._global(dev).get_state()


def set_rng_state(new_state, device=None) -> None:
    """Restore a GPU's generator from get_rng_state()."""
    from engine import random

    dev = _device(device)
    backend.require_cuda(dev)
    random._global(dev).set_state(new_state)
