"""Quiet third-party logging by default (``verbose=true`` brings it back).

pyiqa announces every metric it builds (``INFO: Network [PSNR] is created.``) through its own
logger, which it sets to INFO on first use; in a log file of a sweep those lines bury srbench's
own. srbench's messages (logger ``srbench``) are unaffected.
"""

from __future__ import annotations

import logging

THIRD_PARTY = ("pyiqa", "diffusers", "transformers", "huggingface_hub", "torch_fidelity", "spandrel", "timm")


def configure(verbose: bool) -> None:
    """WARNING and above from third-party libraries unless ``verbose``; then INFO."""
    level = logging.INFO if verbose else logging.WARNING
    try:
        # pyiqa sets its logger to INFO the first time it is asked for it; ask first, then set ours
        from pyiqa.utils.logger import get_root_logger

        get_root_logger()
    except Exception:  # noqa: BLE001  (pyiqa missing or changed: the level below still applies)
        pass
    for name in THIRD_PARTY:
        logging.getLogger(name).setLevel(level)
