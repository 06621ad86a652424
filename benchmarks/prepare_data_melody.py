"""Benchmark: the melody prepare_data stage (the Beam job) on the whole built-in corpus, about
12,900 music21 folk tunes. Target (docs/figures.md): under 5 minutes on a 2-core machine.

    python -m benchmarks.prepare_data_melody [--max-tunes N] [--workdir DIR] [--set KEY=VALUE]

Prints (and with --output writes) a JSON object: inputs, wall seconds, tunes per second, peak
RSS of the driver and of the largest Beam worker process (MiB), melodies written, records per
split, drops by reason and duplicates. The stage runs in a temporary workdir unless --workdir
names one, where it then leaves its artifact. Smoke (tests): ``--smoke`` (12 tunes, Beam in
this process).
"""

from __future__ import annotations

import json
import resource

from benchmarks import common
from seqtutor import layout
from seqtutor.pipeline import runner

SMOKE = {"config": common.SMOKE_CONFIGS["melody"]}


def main(argv: list[str] | None = None) -> dict:
    parser = common.parser(__doc__, "configs/melody.yaml")
    parser.add_argument("--max-tunes", type=int, default=None,
                        help="only the first N tunes of the corpus")
    args = common.parse_args(parser, argv, SMOKE)
    limit = [("prepare_data.max_builtin_tunes", args.max_tunes)] if args.max_tunes else []
    with common.setup(args, limit, temporary_workdir=True) as (config, workdir):
        stage = runner.run_stage(config, "prepare_data", workdir, force=True)
        stats = json.loads((stage.path / layout.STATS_FILE).read_text())
    peak = {who: resource.getrusage(who).ru_maxrss / 1024
            for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)}
    return common.report("prepare_data_melody", {
        "inputs": stats["inputs_read"],
        "wall_seconds": round(stage.seconds, 1),
        "tunes_per_second": round(stats["inputs_read"] / stage.seconds, 1),
        "peak_rss_driver_mib": round(peak[resource.RUSAGE_SELF]),
        "peak_rss_largest_worker_mib": round(peak[resource.RUSAGE_CHILDREN]),
        "melodies_written": stats["sequences_written"],
        "records_out": stats["records_out"],
        "dropped_by_reason": stats["dropped_by_reason"],
        "duplicate_melodies": stats["duplicate_sequences"],
    }, args)


if __name__ == "__main__":
    main()
