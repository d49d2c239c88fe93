"""Import TensorFlow and Keras without their C++ start-up messages on stderr.

TensorFlow 2.21 prints absl log lines (oneDNN notice, missing CUDA driver) while it
loads, whatever TF_CPP_MIN_LOG_LEVEL is set to. They are noise for the CLI's one-line
errors and progress lines, so file descriptor 2 points to /dev/null during the import
and the first device query. Setting SAE_EXPLORER_TF_LOGS=1 keeps them.
"""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def _stderr_muted():
    if os.environ.get("SAE_EXPLORER_TF_LOGS") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


with _stderr_muted():
    import tensorflow as tf
    import keras

    tf.config.list_physical_devices()

__all__ = ["tf", "keras"]
