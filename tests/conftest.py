"""Fixtures shared by every test directory."""

import inspect

import pytest
import torch


class TorchInit:
    """``torch.nn.init`` with ``generator=`` (keyword or last positional) on every torch.

    torch < 2.2 has no ``generator=`` in ``torch.nn.init``; there the call draws from the CPU
    default generator set to the generator's state, inside ``fork_rng`` (the caller's global RNG
    is restored), and the generator is advanced as torch >= 2.2 would advance it.
    """

    def __getattr__(self, name: str):
        fn = getattr(torch.nn.init, name)

        def call(*args, **kw):
            gen = kw.pop("generator", None)
            if args and isinstance(args[-1], torch.Generator):
                gen, args = args[-1], args[:-1]
            if gen is None:
                return fn(*args, **kw)
            if "generator" in inspect.signature(fn).parameters:
                return fn(*args, generator=gen, **kw)
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.set_state(gen.get_state())
                out = fn(*args, **kw)
                gen.set_state(torch.default_generator.get_state())
            return out

        return call


@pytest.fixture
def torch_init() -> TorchInit:
    """:class:`TorchInit`: ``torch_init.kaiming_normal_(w, generator=g)`` on torch 2.1 too."""
    return TorchInit()
