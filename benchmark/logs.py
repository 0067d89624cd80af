"""Quiet third-party logging by default (``verbose=true`` brings it back).

pyiqa announces every metric it builds (``INFO: Network [PSNR] is created.``) through its own
logger, which it sets to INFO on first use; in a log file of a sweep those lines bury srbench's
own. srbench's messages (logger ``srbench``) are unaffected.
"""

from __future__ import annotations

import logging

THIRD_PARTY = ("pyiqa", "diffusers", "transformers", "huggingface_hub", "torch_fidelity", "spandrel", "timm")
#: libraries whose WARNINGs are not about srbench's work either, quiet to ERROR unless verbose: bitsandbytes
#: (imported by transformers/diffusers when installed) warns on CPU that its optional accelerated 4-bit kernels
#: ("pip install kernels") are missing; srbench never quantises a model
QUIETER = {"bitsandbytes": logging.ERROR}


def configure(verbose: bool) -> None:
    """WARNING and above from third-party libraries unless ``verbose`` (ERROR for :data:`QUIETER`); then INFO."""
    level = logging.INFO if verbose else logging.WARNING
    try:
        # pyiqa sets its logger to INFO the first time it is asked for it; ask first, then set ours
        from pyiqa.utils.logger import get_root_logger

        get_root_logger()
    except Exception:  # noqa: BLE001  (pyiqa missing or changed: the level below still applies)
        pass
    for name in THIRD_PARTY:
        logging.getLogger(name).setLevel(level)
    for name, quiet in QUIETER.items():
        logging.getLogger(name).setLevel(level if verbose else quiet)


def quiet_progress_bars() -> None:
    """No tqdm bars from transformers, diffusers and huggingface_hub (their saves and downloads): for
    scripts whose own output is one line (benchmarks/make_tiny_ccsr.py)."""
    try:
        import transformers.utils.logging as tlog

        tlog.disable_progress_bar()
    except Exception:  # noqa: BLE001  (library missing or changed: bars stay, nothing breaks)
        pass
    try:
        import diffusers.utils.logging as dlog

        dlog.disable_progress_bar()
    except Exception:  # noqa: BLE001
        pass
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except Exception:  # noqa: BLE001
        pass
