"""What every workflow entry script does first: send its output to the rule's log file."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from dgm.io import write_json  # noqa: F401  (re-exported for the scripts)


def start_log(path: str | os.PathLike | None) -> logging.Logger:
    """Redirect stdout/stderr (tqdm writes there) and the 'dgm' logger to ``path``, line-buffered."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(path, "w", buffering=1)
        sys.stdout = sys.stderr = stream
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    return logging.getLogger("dgm")


def claim_gpu() -> None:
    """Give this job a GPU that no other running job of the workflow holds (see dgm.gpu_slots)."""
    from dgm import gpu_slots

    gpu_slots.claim_for_job()
