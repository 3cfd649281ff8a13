"""The pipeline band: one module per DVC stage; ``dvc.yaml`` is the only statement of the topology.

Each module is glue with one entry, ``run(cfg)``: read the stage's inputs, call the library, write
its outputs. Nothing below this band imports it; ``facedet run STAGE`` and DVC call the same
function. What a stage reads (its param keys and code deps) is read from ``dvc.yaml`` by
:func:`facedet.config.stage_specs`, never restated.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omegaconf import DictConfig


def stage_names() -> list[str]:
    """The stages there is a module for (their order and wiring are dvc.yaml's)."""
    return sorted(module.name for module in pkgutil.iter_modules(__path__))


def run_stage(name: str, cfg: DictConfig, callbacks: list | tuple = ()) -> None:
    """Run one stage; ``callbacks``: Lightning callbacks for a stage that trains (its ``run`` takes
    ``callbacks``), e.g. the sweep's pruning callback."""
    run = importlib.import_module(f"{__name__}.{name}").run
    if not callbacks:
        run(cfg)
    elif "callbacks" in inspect.signature(run).parameters:
        run(cfg, callbacks=list(callbacks))
    else:
        logging.getLogger(__name__).warning(
            "stage %s takes no callbacks: %s not used", name, ", ".join(type(c).__name__ for c in callbacks)
        )
        run(cfg)
