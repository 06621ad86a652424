"""Benchmark: the melody Beam job on the whole built-in corpus (about 12,900 music21 tunes).

Prints tunes per second, wall time and peak memory (the driver and, separately, the largest
Beam worker process). Target (issue 2): under 5 minutes on a 2-core machine.

    python -m benchmarks.prepare_data_melody [--max-tunes N] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from benchmarks import machine
from seqtutor import config as config_lib
from seqtutor.data_prep import melody_job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/melody.yaml")
    parser.add_argument("--max-tunes", type=int, default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    overrides = list(args.overrides)
    if args.max_tunes:
        overrides.append(("prepare_data.max_builtin_tunes", args.max_tunes))
    config = config_lib.load_config(args.config, overrides).prepare_data
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        stats = melody_job.run_job(config, Path(tmp))
        seconds = time.perf_counter() - started
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {
        "benchmark": "prepare_data_melody",
        "machine": machine(),
        "inputs": stats["inputs_read"],
        "wall_seconds": round(seconds, 1),
        "tunes_per_second": round(stats["inputs_read"] / seconds, 1),
        "peak_rss_driver_mib": round(self_peak),
        "peak_rss_largest_worker_mib": round(child_peak),
        "melodies_written": stats["melodies_written"],
        "records_out": stats["records_out"],
        "dropped_by_reason": stats["dropped_by_reason"],
        "duplicate_melodies": stats["duplicate_melodies"],
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
