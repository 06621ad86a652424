"""prepare_data stage: the domain's Beam job, corpus -> TFRecord shards + vocab + stats."""

from __future__ import annotations

from pathlib import Path


def _job(domain: str):
    # One Beam job per domain; imported lazily so that one domain's dependencies do not load
    # for the other.
    if domain == "melody":
        from seqtutor.data_prep import melody_job
        return melody_job.run_job
    if domain == "molecule":
        from seqtutor.data_prep import molecule_job
        return molecule_job.run_job
    raise ValueError(f"no prepare_data job for domain {domain!r}")


def run(config, inputs: dict[str, Path], output: Path) -> dict:
    """Run the domain's Beam job into ``output``; returns the artifact's summary figures."""
    del inputs  # the first stage reads the corpus named in the config
    stats = _job(config.domain)(config.prepare_data, Path(output))
    return {key: stats[key] for key in ("inputs_read", "inputs_dropped", "dropped_by_reason",
                                        "melodies_written", "molecules_written", "records_out")
            if key in stats}
