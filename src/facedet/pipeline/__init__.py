"""The pipeline band: one module per DVC stage; ``dvc.yaml`` is the only statement of the topology.

Each module is glue with one entry, ``run(cfg)``: read the stage's inputs, call the library, write
its outputs. Nothing below this band imports it; ``facedet run STAGE`` and DVC call the same
function. What a stage reads (its param keys and code deps) is read from ``dvc.yaml`` by
[`facedet.stages.stage_specs`][], never restated.
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


def run_stage(name: str, cfg: DictConfig, **context: object) -> None:
    """Run one stage. ``context``: what a stage's ``run`` may take besides the config: ``callbacks``
    (Lightning callbacks for a stage that trains, e.g. the sweep's pruning callback), ``run_tags`` (tags
    of the MLflow run it opens), ``root`` (the project, when it is not the current folder). A stage is
    given the ones it takes; callbacks it does not take are reported."""
    run = importlib.import_module(f"{__name__}.{name}").run
    takes = inspect.signature(run).parameters
    given = {key: value for key, value in context.items() if value and key in takes}
    unused = context.get("callbacks") if "callbacks" not in takes else None
    if unused:
        logging.getLogger(__name__).warning(
            "stage %s takes no callbacks: %s not used", name, ", ".join(type(c).__name__ for c in unused)
        )
    run(cfg, **given)
