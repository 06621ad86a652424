"""Select Keras 2 (tf-keras) before TensorFlow is first imported.

tf-agents needs Keras 2, and pretrained models must load straight into the tuner, so every entry
point of this project (CLI, tests, a user's ``import``) uses the same legacy Keras. Importing any
of the project's packages runs this module first.
"""

import os
import sys
import warnings

_was_set = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
os.environ["TF_USE_LEGACY_KERAS"] = "1"
# Quiet TensorFlow's C++ start-up banner unless the user asked for its logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if "tensorflow" in sys.modules and not _was_set:
    warnings.warn(
        "tensorflow was imported before seqtutor's packages without TF_USE_LEGACY_KERAS=1; "
        "import seqtutor's packages first (or set TF_USE_LEGACY_KERAS=1) so that tf.keras is "
        "Keras 2, which tf-agents and the saved models need.",
        RuntimeWarning,
        stacklevel=2,
    )
