"""Sequence Tutor: MLE-pretrained LSTMs tuned with KL-control RL (Jaques et al., ICML 2017).

One import package in layers; each imports only the layers above it in this list
(``tests/test_layers.py`` checks every import):

- **foundation** (``seqtutor.config``, ``.artifacts``, ``.layout``, ``.tfrecords``, ``.corpus``,
  ``.readers``, ``.plugins``, ``.figures``, ``.statistic``, ``.console``, ``.sweep``): options,
  YAML loading and the built-in configs, a sweep's grid, the artifact layout and fingerprints,
  the dataset format, corpus listing and splitting and the Beam parts of a corpus reader,
  plug-in lookup, how a statistic reads, console output. Imports nothing else of the project.
- **sequence model** (``seqtutor.sequence_model``): the Keras LSTM, its one-step runner,
  batched sampling and log p under the prior.
- **RL** (``seqtutor.rl``): the KL-control math, the algorithm table, the TF-Agents policy,
  replay, collection and agent; the only code that imports ``tf_agents``.
- **domains** (``seqtutor.domains``): one class per domain behind one protocol. Imports the
  foundation only.
- **stages** (``seqtutor.components``, ``seqtutor.data_prep``): prepare_data (the Beam job),
  pretrain, tune, evaluate, generate and the report.
- **top** (``seqtutor.pipeline``): the local runner, the CLI and the KFP compiler; nothing
  imports it.

Importing ``seqtutor`` selects Keras 2 (``TF_USE_LEGACY_KERAS=1``) before TensorFlow is first
imported: tf-agents needs Keras 2, and pretrained models must load straight into the tuner.
"""

import os
import sys
import warnings

__version__ = "0.1.0"

_was_set = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
os.environ["TF_USE_LEGACY_KERAS"] = "1"
# Quiet TensorFlow's C++ start-up banner unless the user asked for its logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if "tensorflow" in sys.modules and not _was_set:
    warnings.warn(
        "tensorflow was imported before seqtutor without TF_USE_LEGACY_KERAS=1; import "
        "seqtutor first (or set TF_USE_LEGACY_KERAS=1) so that tf.keras is Keras 2, which "
        "tf-agents and the saved models need.",
        RuntimeWarning,
        stacklevel=2,
    )
