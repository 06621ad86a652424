"""prepare_data stage: the Beam job (``data_prep/sequence_job.py``) over the domain's corpus
reader: corpus -> TFRecord shards + vocab + stats."""

from __future__ import annotations

from pathlib import Path

from seqtutor import plugins
from seqtutor.data_prep import sequence_job

SUMMARY_KEYS = ("inputs_read", "inputs_dropped", "dropped_by_reason", "duplicate_sequences",
                "sequences_written", "records_out")


def run(config, inputs: dict[str, Path], output: Path) -> dict:
    """Run the Beam job into ``output``; returns the artifact's summary figures."""
    del inputs  # the first stage reads the corpus named in the config
    stats = sequence_job.run_job(plugins.domain_class(config.domain), config.prepare_data,
                                 Path(output))
    return {key: stats[key] for key in SUMMARY_KEYS}
