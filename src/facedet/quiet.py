"""Library notices that tell a facedet user nothing they can act on, left out of the output."""

from __future__ import annotations

import logging
import warnings


class _Drop(logging.Filter):
    def __init__(self, *fragments: str) -> None:
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in self.fragments)


# logger -> fragments of the messages dropped from it
_NOTICES = {
    # An advertisement for a cloud service, at every Trainer.
    "pytorch_lightning.utilities.rank_zero": ("Tip: For seamless cloud logging",),
    "lightning_fabric.utilities.rank_zero": ("Tip: For seamless cloud logging",),
    # torch's local build is "2.13.0+cpu": MLflow notes at every logged model that it records 2.13.0.
    "mlflow.utils.requirements_utils": ("contains a local version label",),
}


def silence_library_notices() -> None:
    """Drop the notices in ``_NOTICES`` and Lightning's use of torch's deprecated ``LeafSpec`` (a
    FutureWarning at every training that only Lightning's maintainers can act on). Idempotent."""
    warnings.filterwarnings(
        "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning
    )
    for name, fragments in _NOTICES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Drop) for f in logger.filters):
            logger.addFilter(_Drop(*fragments))
