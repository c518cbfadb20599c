"""Module: the base class of layers and models, with PyTorch's nn.Module API.

Parameters, buffers and submodules assigned as attributes are kept in `_parameters`, `_buffers` and
`_modules` (found again by `__getattr__`), which is what state_dict, `to()` and the module tree walk.
Every call enters the module's path in the event hub, so ops inside get stable keys such as
"MLP.fc1/linear:0", and emits ModuleEvents when somebody listens.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from engine import backend, dtypes, zero_grads
from engine.autograd.grad_mode import no_grad
from engine.events import ModuleEvent, hub, next_seq
from engine.nn.buffer import Buffer, unmark
from engine.nn.hooks import BackwardHookCall, RemovableHandle, add_hook, tensor_ids
from engine.nn.parameter import Parameter
from engine.nn.settings import Setting
from engine.tensor import Tensor, parse_to
from engine.user_warning import warn


class _CallStack(threading.local):
    """The module calls running on this thread, innermost last, as (module, path) pairs."""

    def __init__(self) -> None:
        self.calls: list[tuple[Module, str]] = []


_running = _CallStack()


def running_modules() -> list[tuple[Module, str]]:
    """The module calls in progress on this thread, outermost first, as (module, path) pairs."""
    return list(_running.calls)


def innermost_call() -> tuple[Module, str] | None:
    """The innermost module call in progress on this thread, (module, path), or None: running_modules()[-1] without
    the copy, for a check that runs at every module call."""
    calls = _running.calls
    return calls[-1] if calls else None


# child module -> (the module it was first added to, its name there); weakly: neither keeps the other alive
_holders: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _held(module: Module) -> tuple[Module | None, list[str]]:
    """The outermost module holding `module` (None when none does) and the names down to it."""
    names, holder, seen = [], None, {id(module)}
    while (entry := _holders.get(module)) is not None:
        parent = entry[0]()
        if parent is None or id(parent) in seen or parent._modules.get(entry[1]) is not module:
            break  # gone, a cycle, or no longer its child there
        names.append(entry[1])
        seen.add(id(parent))
        holder = module = parent
    return holder, names[::-1]


def outermost(module: Module) -> Module:
    """The module that holds `module` as a child, and the one that holds that, ..., up to one no module holds:
    the model behind a submodule a script calls directly (a flow's coupling layers, called from its log_prob)."""
    return _held(module)[0] or module


def _root_path(module: Module) -> str:
    """The path of a call no other module call is around: the root name of the model that holds the module, then
    the module's names in it ("Tagger.lstm" when a script calls model.lstm itself), else its own root name."""
    holder, names = _held(module) if module in _holders else (None, ())
    return _named(module) if holder is None else ".".join((_named(holder), *names))


# a model no module holds -> the name its calls' paths start with, and that name -> the model; weakly, so a name
# comes free when its model is gone (a loss module made anew each iteration stays "CrossEntropyLoss")
_root_names: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_named_roots: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
ROOT_NUMBER = "_"  # "Sequential_2": not "#", which numbers the repeated calls of one module in the app's graph
# a second (third, ...) model's root name, "Actor_2", as it starts a path: group 1 is the name
NUMBERED_ROOT = re.compile(rf"([^.]+{re.escape(ROOT_NUMBER)}(?:[2-9]|[1-9]\d+))(?:\.|$)")


def root_name(module: Module) -> str:
    """The name the paths of `module`'s calls start with when it is the model: its class name ("Sequential"), or
    for a second model of that class alive at once (a teacher and a student) "Sequential_2", in order of first
    call, so that two models of one class never share module paths, parameter names or graph groups. A model
    not called yet is named by its class."""
    return _root_names.get(module) or type(module).__name__


def _named(module: Module) -> str:
    """root_name, given to `module` at its first call as a model."""
    name = _root_names.get(module)
    if name is None:
        cls = name = type(module).__name__
        n = 1
        while _named_roots.get(name) is not None:
            n += 1
            name = f"{cls}{ROOT_NUMBER}{n}"
        _root_names[module] = name
        _named_roots[name] = module
    return name


# modules called inside another module's forward without being its submodules -> that module's class name
_unregistered: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def unregistered_calls() -> list[tuple[Module, str]]:
    """(module, the class whose forward called it) for modules run inside a module they are not registered in:
    held in a plain list or dict (model.parameters() leaves them out), or another model's, called from here."""
    return list(_unregistered.items()) if len(_unregistered) else []


def forget_root_names() -> None:
    """Number the models anew from their next call: a debugger does when a session starts, so a script run again
    in one process (the app's Restart, a test after another) names its model "MLP", whatever is still alive."""
    _root_names.clear()
    _named_roots.clear()
    _unregistered.clear()


class IncompatibleKeys(NamedTuple):
    """What `load_state_dict` returns: keys the model has that were missing, and keys it has not."""

    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"  # what PyTorch prints after a clean load
        return f"IncompatibleKeys(missing_keys={self.missing_keys}, unexpected_keys={self.unexpected_keys})"


class Module:
    """Base class of every layer and model; subclasses set attributes in `__init__` and define `forward`."""

    settings: tuple[Setting, ...] = ()  # runtime-editable attributes; see engine.nn.settings
    training: bool

    def __init__(self, *args, **kwargs) -> None:
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments; Module takes none")
        self.__dict__.update(
            training=True, _parameters={}, _buffers={}, _non_persistent_buffers=set(), _modules={},
            _forward_pre_hooks={}, _forward_hooks={}, _backward_hooks={}, _backward_pre_hooks={},
            _hooks_with_kwargs=set(),
            _call_name=None,
        )

    def forward(self, *args, **kwargs):
        """The computation of one call; every subclass defines it."""
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function')

    # ---- calling --------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        calls = _running.calls
        if calls:
            parent, parent_path = calls[-1]
            path = parent_path + "." + self._name_under(parent)
        else:
            path = _root_path(self)
        calls.append((self, path))
        hub.enter_module(path)
        try:
            if self._forward_pre_hooks or self._forward_hooks or self._backward_hooks or self._backward_pre_hooks:
                return self._call_with_hooks(path, args, kwargs)
            if hub.active:
                return self._call_traced(path, args, kwargs)
            return self.forward(*args, **kwargs)
        finally:
            hub.exit_module()
            calls.pop()

    def _param_pairs(self, path: str) -> tuple:
        """(tensor id, dotted name) of this module's direct parameters, named from the root ("fc1.weight")."""
        params = self._parameters
        if not params:
            return ()
        names = self.__dict__.get("_pair_names")
        if names is None or names[0] != path or names[1] != params.keys():
            prefix = path.partition(".")[2]  # the path starts with the root's name
            prefix = prefix + "." if prefix else ""
            names = self.__dict__["_pair_names"] = (path, params.keys() | set(), {n: prefix + n for n in params})
        full = names[2]
        return tuple([(p._id or p.id, full[name]) for name, p in params.items() if p is not None])

    def _name_under(self, parent: Module) -> str:
        """This module's dotted name below `parent` (its attribute name when a direct child)."""
        cached = self._call_name
        if cached is not None and cached[0] == id(parent):
            node = parent
            for part in cached[2]:
                node = node._modules.get(part)
                if node is None:
                    break
            if node is self:
                return cached[1]
        name = _find_descendant(parent, self)
        if name is None:  # called by a parent it is not registered in: named by its class
            if len(_unregistered) < 256:  # (a plain list of layers: engine.debug asks whether any optimizer has them)
                _unregistered.setdefault(self, type(parent).__name__)
            return type(self).__name__
        self.__dict__["_call_name"] = (id(parent), name, tuple(name.split(".")))
        return name

    def _enter_event(self, path: str, args: tuple, kwargs: dict) -> None:
        arg = args[0] if len(args) == 1 and not kwargs else None
        ids = (arg._id or arg.id,) if arg.__class__ is Tensor else tensor_ids((args, kwargs))
        hub.emit(ModuleEvent(next_seq(), path, self.__class__.__name__, True, ids, self._param_pairs(path)))

    def _exit_event(self, path: str, out) -> None:
        ids = (out._id or out.id,) if out.__class__ is Tensor else tensor_ids(out)
        hub.emit(ModuleEvent(next_seq(), path, self.__class__.__name__, False, ids))

    def _call_traced(self, path: str, args: tuple, kwargs: dict):
        """A call without hooks while somebody listens: forward between an enter and an exit event."""
        self._enter_event(path, args, kwargs)
        out = None
        try:
            out = self.forward(*args, **kwargs)
            return out
        finally:
            if hub.active:  # also after an exception, so every enter has its exit
                self._exit_event(path, out)

    def _call_with_hooks(self, path: str, args: tuple, kwargs: dict):
        entered = hub.active  # an exit event only follows an enter event, even if listeners change meanwhile
        if entered:
            self._enter_event(path, args, kwargs)
        out = None
        try:
            for hid, hook in tuple(self._forward_pre_hooks.items()):
                if hid in self._hooks_with_kwargs:
                    result = hook(self, args, kwargs)
                    if result is not None:
                        args, kwargs = result
                else:
                    result = hook(self, args)
                    if result is not None:
                        args = result if isinstance(result, tuple) else (result,)
            backward_call = None
            if self._backward_hooks or self._backward_pre_hooks:
                backward_call = BackwardHookCall(self, list(self._backward_hooks.values()),
                                                 list(self._backward_pre_hooks.values()))
                args = backward_call.wrap_inputs(args)
            out = self.forward(*args, **kwargs)
            for hid, hook in tuple(self._forward_hooks.items()):
                if hid in self._hooks_with_kwargs:
                    result = hook(self, args, kwargs, out)
                else:
                    result = hook(self, args, out)
                if result is not None:
                    out = result
            if backward_call is not None:
                out = backward_call.wrap_outputs(out)
            return out
        finally:
            if entered and hub.active:  # also after an exception, so every enter has its exit
                self._exit_event(path, out)

    # ---- hooks ------------------------------------------------------------------------------
    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call `hook(module, args)` before forward; a returned value replaces args."""
        handle = add_hook(self._forward_pre_hooks, hook, prepend, self._hooks_with_kwargs)
        if with_kwargs:
            self._hooks_with_kwargs.add(handle.id)
        return handle

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False,
                              with_kwargs: bool = False) -> RemovableHandle:
        """Call `hook(module, args, output)` after forward; a returned value replaces the output."""
        handle = add_hook(self._forward_hooks, hook, prepend, self._hooks_with_kwargs)
        if with_kwargs:
            self._hooks_with_kwargs.add(handle.id)
        return handle

    def register_full_backward_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """Call `hook(module, grad_input, grad_output)` once this call's input gradients are known."""
        return add_hook(self._backward_hooks, hook, prepend)

    def register_full_backward_pre_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """Call `hook(module, grad_output)` before this call's gradients flow in; a returned value replaces them."""
        return add_hook(self._backward_pre_hooks, hook, prepend)

    # ---- registration -----------------------------------------------------------------------
    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or None, a declared but absent one) under `name`."""
        self._check_name(name, "parameter", self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                "(engine.nn.Parameter or None required)"
            )
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a tensor that is state but no parameter (running statistics); in state_dict if persistent."""
        self._check_name(name, "buffer", self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                            "(Tensor or None required)")
        self._buffers[name] = unmark(tensor)
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module under `name`."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name(name, "module", self._modules)
        self._modules[name] = module
        if module is not None and module not in _holders:
            _holders[module] = (weakref.ref(self), name)

    register_module = add_module

    def _check_name(self, name: str, kind: str, table: dict) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"{kind} name can't be empty or contain '.', got {name!r}")
        if name not in table and (name in self.__dict__ or hasattr(type(self), name) or any(
                name in t for t in (self._parameters, self._buffers, self._modules) if t is not table)):
            raise KeyError(f"attribute '{name}' already exists")

    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            _remove_from(name, d, self._buffers, self._modules, self._non_persistent_buffers)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                    "(engine.nn.Parameter or None expected)"
                )
            params[name] = None
        elif isinstance(value, Module):
            if params is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            _remove_from(name, d, params, self._buffers, self._non_persistent_buffers)
            self.add_module(name, value)
        elif params is not None and name in d["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' "
                                "(Module or None expected)")
            d["_modules"][name] = None
        elif params is not None and (name in d["_buffers"] or isinstance(value, Buffer)):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                "(Tensor or None expected)")
            if isinstance(value, Buffer):  # nn.Buffer: (re)registered, with the marker's persistence
                self.register_buffer(name, value, value.persistent)
            else:
                d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            entries = d.get(table)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        keys = set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules)
        return sorted(k for k in keys if not k[0].isdigit())

    # ---- walking the tree -------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module and every descendant, each once."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, _join(prefix, name), remove_duplicate)

    def modules(self) -> Iterator[Module]:
        """This module and every descendant."""
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """(name, module) of the direct children."""
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        """The direct children."""
        for _, child in self.named_children():
            yield child

    def _named_members(self, table: str, prefix: str, recurse: bool,
                       remove_duplicate: bool) -> Iterator[tuple[str, Tensor]]:
        if recurse:
            modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
        else:
            modules = [(prefix, self)]
        seen = set()
        for mod_prefix, module in modules:
            for name, t in module.__dict__[table].items():
                if t is None or (remove_duplicate and id(t) in seen):
                    continue
                seen.add(id(t))
                yield _join(mod_prefix, name), t

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs, each parameter once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter of this module (and its descendants when `recurse`), each once."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        """(dotted name, buffer) pairs, each buffer once."""
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """Every buffer of this module (and its descendants when `recurse`)."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> Module:
        """The descendant at dotted path `target` ('' is this module)."""
        module = self
        for part in target.split(".") if target else ():
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(f"{type(module).__name__} has no submodule '{part}' "
                                     f"(looking for '{target}')")
            module = child
        return module

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at dotted path `target`."""
        return self._tensor_at(target, "_parameters", "parameter")

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at dotted path `target`."""
        return self._tensor_at(target, "_buffers", "buffer")

    def _tensor_at(self, target: str, table: str, kind: str) -> Tensor:
        path, _, name = target.rpartition(".")
        module = self.get_submodule(path)
        found = getattr(module, table).get(name)
        if found is None:
            raise AttributeError(f"{type(module).__name__} has no {kind} '{name}'")
        return found

    @property
    def _non_persistent_buffers_set(self) -> set[str]:
        """torch's name for the buffers left out of state_dict (loading code reads it)."""
        return self._non_persistent_buffers

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call `fn` on every descendant, then on this module; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients ----------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active, batch statistics) on this module and its descendants."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {type(mode).__name__}")
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        """Set evaluation mode; same as `train(False)`."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Turn gradient tracking of every parameter on or off (freezing a part of a model)."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter: to None, or to zeros in place."""
        cleared = False
        for p in self.parameters():
            if p.grad is None:
                continue
            cleared = True
            if set_to_none:
                p.grad = None
            elif p.grad.array.flags.writeable:
                p.grad.array[...] = 0
                p.grad._vc[0] += 1
            else:
                p.grad = Tensor._wrap(backend.array_module(p.grad.array).zeros_like(p.grad.array))
        zero_grads.called(self, cleared)  # where, for a debugger: between backward and step, or outside the loop

    # ---- devices and dtypes ------------------------------------------------------------------
    def _apply_to_tensors(self, convert: Callable) -> Module:
        """Replace the data of every parameter, buffer and gradient by `convert(array)`, in place."""
        with no_grad():
            for m in self.modules():
                for t in (*m._parameters.values(), *m._buffers.values()):
                    if t is None:
                        continue
                    t.array = convert(t.array)
                    if t.grad is not None:
                        t.grad.array = convert(t.grad.array)
        return self

    def to(self, *args, **kwargs) -> Module:
        """Move parameters and buffers to a device and/or cast floating ones to a dtype, in place.

        The engine has no "meta" device: `.to("meta")` (the shell of a model that torch's ensembling recipe
        hands functional_call) warns and keeps the module's tensors where they are."""
        if _meta(args, kwargs):
            warn(f"{type(self).__name__}.to('meta'): the engine has no meta device; the module keeps its tensors "
                 "(functional_call with other parameters works as on torch's meta copy)")
            return self
        device, dtype = _parse_to(args, kwargs)
        target_np = None if dtype is None else dtype.np

        def convert(arr):
            if target_np is not None and arr.dtype.kind == "f" and arr.dtype != target_np:
                arr = arr.astype(target_np)
            return arr if device is None else backend.to_device(arr, device)

        return self._apply_to_tensors(convert)

    def to_empty(self, *, device=None, recurse: bool = True) -> Module:
        """Parameters and buffers made anew on `device`, their values unset (as torch.empty), for a model built
        without storage to be initialised after; recurse=False: this module's own only."""
        dev = backend.device("cpu" if device is None else device)
        modules = self.modules() if recurse else (self,)
        with no_grad():
            for module in modules:
                for table in (module._parameters, module._buffers):
                    for t in table.values():
                        if t is not None:
                            t.array = backend.to_device(np.empty_like(backend.to_host(t.array)), dev)
                            t._vc[0] += 1
        return self

    def cpu(self) -> Module:
        """Move everything to the CPU."""
        return self.to("cpu")

    def cuda(self, device: int | str | None = None) -> Module:
        """Move everything to a GPU (`cuda:0` by default)."""
        return self.to("cuda" if device is None else device if isinstance(device, str) else f"cuda:{device}")

    def half(self) -> Module:
        """Cast floating-point parameters and buffers to float16."""
        return self.to(dtypes.float16)

    def float(self) -> Module:
        """Cast floating-point parameters and buffers to float32."""
        return self.to(dtypes.float32)

    def double(self) -> Module:
        """Cast floating-point parameters and buffers to float64."""
        return self.to(dtypes.float64)

    # ---- state ------------------------------------------------------------------------------
    def state_dict(self, *, destination: dict | None = None, prefix: str = "",
                   keep_vars: bool = False) -> OrderedDict[str, Tensor]:
        """Parameters and persistent buffers by dotted name (detached unless `keep_vars`)."""
        for hook in self._state_hooks("_state_dict_pre_hooks").values():
            hook(self, prefix, keep_vars)
        out = OrderedDict() if destination is None else destination
        for name, t in self._local_state().items():
            out[prefix + name] = t if keep_vars else t.detach()
        for name, child in self._modules.items():
            if child is not None:
                child.state_dict(destination=out, prefix=prefix + name + ".", keep_vars=keep_vars)
        for hid, hook in self._state_hooks("_state_dict_hooks").items():
            changed = hook(self, out, prefix, {"version": 1})
            if changed is not None:
                if hid in self.__dict__.get("_public_state_dict_hooks", ()):
                    raise RuntimeError("state_dict post-hook must return None")
                out = changed
        return out

    def _state_entries(self, prefix: str) -> Iterator[tuple[str, Tensor]]:
        """(dotted name, tensor) of what state_dict holds, without running its hooks."""
        for name, t in self._local_state().items():
            yield prefix + name, t
        for name, child in self._modules.items():
            if child is not None:
                yield from child._state_entries(prefix + name + ".")

    def _state_hooks(self, table: str) -> dict:
        return self.__dict__.get(table) or {}

    def register_state_dict_pre_hook(self, hook: Callable) -> RemovableHandle:
        """Call `hook(module, prefix, keep_vars)` before this module's `state_dict` collects its entries."""
        return add_hook(self.__dict__.setdefault("_state_dict_pre_hooks", {}), hook, False)

    def register_state_dict_post_hook(self, hook: Callable) -> RemovableHandle:
        """Call `hook(module, state_dict, prefix, local_metadata)` after `state_dict`; it edits in place."""
        public = self.__dict__.setdefault("_public_state_dict_hooks", set())  # handle ids; remove() drops them
        handle = add_hook(self.__dict__.setdefault("_state_dict_hooks", {}), hook, False, public)
        public.add(handle.id)
        return handle

    def _register_state_dict_hook(self, hook: Callable) -> RemovableHandle:
        """As register_state_dict_post_hook, but a dict the hook returns replaces the state dict."""
        return add_hook(self.__dict__.setdefault("_state_dict_hooks", {}), hook, False)

    def register_load_state_dict_post_hook(self, hook: Callable) -> RemovableHandle:
        """Call `hook(module, incompatible_keys)` after `load_state_dict`; it may edit the key lists."""
        return add_hook(self.__dict__.setdefault("_load_state_dict_post_hooks", {}), hook, False)

    def _run_load_post_hooks(self, prefix: str, own: list[str], owners: dict[str, str],
                             keys: IncompatibleKeys) -> None:
        """Each module's load_state_dict post hooks, as torch's recursive load calls them: a module's keys
        join the lists before its children's, and its hooks run after its children's."""
        mine = {prefix + name for name in self._local_state()}
        keys.missing_keys.extend(k for k in own if k in mine)
        keys.unexpected_keys.extend(k for k, owner in owners.items() if owner == prefix)
        for name, child in self._modules.items():
            if child is not None:
                child._run_load_post_hooks(prefix + name + ".", own, owners, keys)
        for hook in self._state_hooks("_load_state_dict_post_hooks").values():
            if hook(self, keys) is not None:
                raise RuntimeError("Hooks registered with ``register_load_state_dict_post_hook`` are not "
                                   "expected to return new values, if incompatible_keys need to be modified, "
                                   "it should be done inplace.")

    def _key_owner(self, key: str) -> str:
        """The prefix of the module a state-dict key would belong to (its deepest existing submodule)."""
        module, prefix, rest = self, "", key
        while True:
            head, _, tail = rest.partition(".")
            child = module._modules.get(head) if tail else None
            if child is None:
                return prefix
            module, prefix, rest = child, prefix + head + ".", tail

    def _local_state(self) -> dict[str, Tensor]:
        state = {n: p for n, p in self._parameters.items() if p is not None}
        state.update((n, b) for n, b in self._buffers.items()
                     if b is not None and n not in self._non_persistent_buffers)
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True,
                        assign: bool = False) -> IncompatibleKeys:
        """Copy values into parameters and buffers; on any problem raise one error and change nothing."""
        if assign:
            raise NotImplementedError("load_state_dict(assign=True) is not supported by the engine; "
                                      "values are copied into the existing tensors")
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"expected state_dict to be a mapping of names to tensors, got "
                            f"{type(state_dict).__name__}")
        own = dict(self._state_entries(""))  # not state_dict(): its hooks are for saving
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems, values = [], {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = _as_array(state_dict[key])
            if value is None:
                kind = type(state_dict[key]).__name__
                problems.append(f'expected a tensor or array for "{key}", got {kind}.')
            elif tuple(value.shape) != tuple(target.shape) and not hasattr(target, "materialize"):
                # (a lazy layer's parameter not shaped yet takes the checkpoint's shape, as in torch)
                problems.append(
                    f"size mismatch for {key}: copying a param with shape {list(value.shape)} from "
                    f"checkpoint, the shape in current model is {list(target.shape)}."
                )
            else:
                values[key] = value
        hooked = any(m._state_hooks("_load_state_dict_post_hooks") for m in self.modules())
        if strict and unexpected and not hooked:
            problems.insert(0, f"Unexpected key(s) in state_dict: {_quoted(unexpected)}. ")
        if strict and missing and not hooked:
            problems.insert(0, f"Missing key(s) in state_dict: {_quoted(missing)}. ")
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(problems))
        if values and all(_same_memory(value, own[key].array) for key, value in values.items()):
            warn(
                "load_state_dict: every value is the parameter or buffer it would be loaded into (a state_dict() "
                "of this model kept without a copy), so nothing changes: state_dict() returns the live tensors, "
                "which training goes on changing. Keep a snapshot with copy.deepcopy(model.state_dict())")
        for key, value in values.items():
            target = own[key]
            if hasattr(target, "materialize"):
                target.materialize(tuple(value.shape))
            target.array[...] = backend.to_device(value, target.device)
            target._vc[0] += 1
        keys = IncompatibleKeys(missing, unexpected)
        if hooked:  # as torch: hooks see the loaded values and may clear keys that strict would refuse
            keys = IncompatibleKeys([], [])
            self._run_load_post_hooks("", missing, {k: self._key_owner(k) for k in unexpected}, keys)
            problems = []
            if strict and keys.unexpected_keys:
                problems.append(f"Unexpected key(s) in state_dict: {_quoted(keys.unexpected_keys)}. ")
            if strict and keys.missing_keys:
                problems.insert(0, f"Missing key(s) in state_dict: {_quoted(keys.missing_keys)}. ")
            if problems:
                raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                                   + "\n\t".join(problems))
        return keys

    # ---- runtime-editable settings ------------------------------------------------------------
    def editable_settings(self) -> list[dict]:
        """The settings a person may change while training runs, with current values (plain data)."""
        return [s.describe(getattr(self, s.name)) for s in type(self).settings]

    def set_setting(self, name: str, value) -> None:
        """Change one declared setting after checking its type and range; refuses anything undeclared."""
        cls = type(self).__name__
        setting = next((s for s in type(self).settings if s.name == name), None)
        if setting is None:
            editable = ", ".join(s.name for s in type(self).settings) or "none"
            if hasattr(self, name):
                raise ValueError(
                    f"{cls}: '{name}' is not a runtime-editable setting; it is fixed when the module is "
                    f"built (changing it could break parameter shapes or the module's structure). "
                    f"Editable settings: {editable}"
                )
            raise ValueError(f"{cls} has no setting '{name}'; editable settings: {editable}")
        value = setting.validate(cls, value)
        setattr(self, name, value)
        if setting.reinit:
            self.reset_parameters()

    # ---- printing ---------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside this module's parentheses in repr (its constructor arguments)."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _indent(repr(m), 2) for name, m in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if len(extra_lines) == 1 and not child_lines:
            body = extra_lines[0]
        elif lines:
            body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{self._get_name()}({body})"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _quoted(keys: list[str]) -> str:
    return ", ".join(f'"{k}"' for k in keys)


def _indent(text: str, spaces: int) -> str:
    first, *rest = text.split("\n")
    return "\n".join([first, *(" " * spaces + line for line in rest)])


def _same_memory(value, array) -> bool:
    """Whether `value` (an array from a state_dict) is `array`'s memory, whole."""
    return value.__class__ is array.__class__ and value.shape == array.shape and \
        backend.array_module(array).may_share_memory(value, array)


def _find_descendant(parent: Module, target: Module) -> str | None:
    """Dotted name of `target` below `parent`: a direct child first, then deeper (breadth first)."""
    level = [("", parent)]
    while level:
        deeper = []
        for prefix, module in level:
            for name, child in module._modules.items():
                if child is target:
                    return prefix + name
                if child is not None:
                    deeper.append((prefix + name + ".", child))
        level = deeper
    return None


def _remove_from(name: str, *tables) -> None:
    for t in tables:
        if isinstance(t, set):
            t.discard(name)
        else:
            t.pop(name, None)


def _as_array(value):
    """The array in a checkpoint entry: an engine Tensor, a numpy/cupy array or anything with __array__."""
    if isinstance(value, Tensor):
        return value.array
    if hasattr(value, "__cuda_array_interface__") and not hasattr(value, "detach"):
        return value  # a cupy array
    if hasattr(value, "detach"):  # a torch tensor: its values, without its graph
        value = value.detach()
        if hasattr(value, "cpu"):
            value = value.cpu()
    if isinstance(value, np.ndarray) or hasattr(value, "__array__"):
        return np.asarray(value)
    return None


def _meta(args: tuple, kwargs: dict) -> bool:
    """Whether Module.to() was asked for the meta device."""
    device = kwargs.get("device", args[0] if args else None)
    return (isinstance(device, str) and device == "meta") or getattr(device, "type", None) == "meta"


def _parse_to(args: tuple, kwargs: dict):
    device, dtype = parse_to(args, kwargs, "Module.to()")
    if dtype is not None:
        dtype = dtypes.as_dtype(dtype)
        if not dtype.is_floating_point:
            raise TypeError(f"Module.to() only accepts floating point dtypes, but got desired dtype={dtype}")
    return (None if device is None else backend.device(device)), dtype
