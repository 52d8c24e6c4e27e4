"""The numba options of the research kernels, in one place.

Every per-date and fused kernel compiles with the same options: no GIL (so
threads can run blocks side by side), cached next to its module (compiled once
per machine), and numpy's error model (a division by zero gives inf or NaN
rather than raising). The decorators keep the function's type, so a kernel's
callers are checked against its signature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Literal, TypedDict, TypeVar

import numba

if TYPE_CHECKING:
    from numba.core.dispatcher import Dispatcher

__all__ = ["inline_kernel", "kernel"]

_F = TypeVar("_F", bound=Callable[..., object])


class _Options(TypedDict):
    nogil: bool
    cache: bool
    error_model: Literal["python", "numpy"]


_OPTIONS: Final[_Options] = {"nogil": True, "cache": True, "error_model": "numpy"}


def kernel(fn: _F, /) -> Dispatcher[_F]:
    """Compile ``fn`` in nopython mode with the shared kernel options.

    Parameters
    ----------
    fn
        The Python function to compile (lazily, on its first call per signature).

    Returns
    -------
    Dispatcher
        numba's dispatcher of ``fn``, called like ``fn``.
    """
    return numba.njit(**_OPTIONS)(fn)


def inline_kernel(fn: _F, /) -> Dispatcher[_F]:
    """Like :func:`kernel`, inlined at numba IR level into every compiled caller.

    Parameters
    ----------
    fn
        The Python function to compile (``inline="always"``).

    Returns
    -------
    Dispatcher
        numba's dispatcher of ``fn``, called like ``fn``.
    """
    return numba.njit(inline="always", **_OPTIONS)(fn)
