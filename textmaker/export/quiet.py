"""Silence the converters' and quantizers' own chatter while they run.

Their warnings and log lines (deprecations, debug-only options, "consider pre-processing")
are not the user's to act on: what conversion and quantization did to the model is
measured by the verification that follows every export, and printed in one line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings


@contextlib.contextmanager
def quiet(*loggers: str):
    """Ignore warnings, and raise the named loggers ("" is the root logger) to ERROR, for the block.
    Python-level progress bars (AI Edge Quantizer's tqdm) go nowhere; errors still raise."""
    logs = [logging.getLogger(name) for name in loggers]
    levels = [log.level for log in logs]
    for log in logs:
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
            warnings.simplefilter("ignore")
            yield
    finally:
        for log, level in zip(logs, levels):
            log.setLevel(level)


@contextlib.contextmanager
def quiet_native():
    """Silence what native code writes to file descriptor 2 during the block (runtime start-up notices)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
