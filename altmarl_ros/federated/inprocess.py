"""An in-process worker for Flower's simulation engine (for fast tests; benches use Ray).

Flower 1.42's simulation engine (`flwr.simulation.run_simulation`) runs every ClientApp call in a Ray
actor; Ray's start-up costs 3-4 s on an idle 2-core machine and far more on a loaded one. Everything
else of a simulation -- the ServerApp and its Strategy, the Grid, the in-memory SuperLink state and
its message routing, node registration and contexts -- does not depend on Ray. This module provides a
`Backend` (Flower's own abstract base class for simulation backends) that calls the ClientApp in the
engine's worker thread, and `inprocess_backend()` makes the engine use it for the duration of a `with`
block. Flower 1.42 has no switch for this: the engine instantiates
`flwr.server.superlink.fleet.vce.backend.raybackend.RayBackend` by name, so the context manager
replaces that name and restores it on exit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.server.superlink.fleet.vce.backend import Backend, BackendConfig


class InProcessBackend(Backend):
    """Runs the ClientApp in the calling thread, one message at a time."""

    def __init__(self, backend_config: BackendConfig) -> None:
        super().__init__(backend_config)
        self.app_fn: Callable[[], ClientApp] | None = None

    def build(self, app_fn: Callable[[], ClientApp]) -> None:
        self.app_fn = app_fn

    @property
    def num_workers(self) -> int:
        return 1

    def is_worker_idle(self) -> bool:
        return True

    def terminate(self) -> None:
        self.app_fn = None

    def process_message(self, message: Message, context: Context) -> tuple[Message, Context]:
        if self.app_fn is None:
            raise RuntimeError("call build() before process_message()")
        return self.app_fn()(message=message, context=context), context


@contextlib.contextmanager
def inprocess_backend() -> Iterator[None]:
    """Within the block, Flower's simulation engine runs ClientApps in process instead of in Ray actors."""
    from flwr.server.superlink.fleet.vce.backend import raybackend

    saved = raybackend.RayBackend
    raybackend.RayBackend = InProcessBackend  # type: ignore[misc, assignment]
    try:
        yield
    finally:
        raybackend.RayBackend = saved  # type: ignore[misc]
