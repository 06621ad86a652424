"""prepare_data stage: a Beam job, corpus -> TFRecord shards + vocab + stats: the domain's own
(its ``prepare_data_job``), or the shared one over its corpus reader (``data_prep.sequence_job``)."""

from __future__ import annotations

from pathlib import Path

from seqtutor import plugins
from seqtutor.data_prep import sequence_job


def run(config, inputs: dict[str, Path], output: Path) -> dict:
    """Run the domain's Beam job into ``output``; returns the artifact's summary figures."""
    del inputs  # the first stage reads the corpus named in the config
    domain_class = plugins.domain_class(config.domain)
    if getattr(domain_class, "prepare_data_job", None):  # a job of its own (melody, molecule)
        job = plugins.load_object(domain_class.prepare_data_job)
        stats = job(config.prepare_data, Path(output))
    else:  # the shared job over the domain's corpus reader
        stats = sequence_job.run_job(domain_class, config.prepare_data, Path(output))
    return {key: stats[key] for key in ("inputs_read", "inputs_dropped", "dropped_by_reason",
                                        "melodies_written", "molecules_written", "records_out")
            if key in stats}
