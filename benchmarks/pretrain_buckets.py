"""Benchmark: MLE training seconds per step with length-bucketed against padded batches, to
choose ``pretrain.bucket_by_length`` on a machine.

Variable-length data (the molecule corpus: 13-54 tokens) padded per random batch is partly
padding, and the LSTM pays for every padded step; ``pretrain.bucket_by_length`` batches
sequences of about the same length (buckets of 4 tokens). Both input pipelines feed one model
of the config's network and batch in the same process, in alternating rounds (each round's
first steps are warm-up and tracing), on WORKDIR/prepare_data (made first when missing).

    python -m benchmarks.pretrain_buckets --steps 80 --rounds 2 [--config configs/molecule.yaml]
        [--workdir runs/molecule]

Prints (and with --output writes) a JSON object: network, batch, padding_fraction (padded,
bucketed), seconds_per_step (medians and each round's) and speedup (padded / bucketed).
Smoke (tests): ``--smoke`` (400 molecules, an LSTM(16), 3 steps, one round).
"""

from __future__ import annotations

import functools

import tensorflow as tf

from benchmarks import common

SMOKE = {"config": common.SMOKE_CONFIGS["molecule"], "steps": 3, "warmup_steps": 2,
         "rounds": 1}
PIPELINES = {"padded": False, "bucketed": True}


def padding_fraction(dataset: tf.data.Dataset, batches: int = 200) -> float:
    real = total = 0
    for _, _, weights in dataset.take(batches):
        real += int(tf.math.count_nonzero(weights))
        total += int(tf.size(weights))
    return 1 - real / total


def main(argv: list[str] | None = None) -> dict:
    parser = common.parser(__doc__, "configs/molecule.yaml")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per round")
    parser.add_argument("--warmup-steps", type=int, default=40, help="per round, not timed")
    parser.add_argument("--rounds", type=int, default=2)
    args = common.parse_args(parser, argv, SMOKE)
    with common.setup(args, smoke_overrides=common.SMOKE_NETWORK) as (config, workdir):
        options = config.pretrain
        datasets = {}
        for name, bucketed in PIPELINES.items():
            datasets[name], vocab = common.training_batches(config, workdir, bucketed)
        model = common.mle_model(int(vocab["num_tokens"]), options)

        def seconds_per_step(dataset: tf.data.Dataset) -> float:
            model.fit(dataset, steps_per_epoch=args.warmup_steps, epochs=1, verbose=0)
            _, seconds = common.timed(model.fit, dataset, steps_per_epoch=args.steps, epochs=1,
                                      verbose=0)
            return seconds / args.steps

        seconds = common.alternate({name: functools.partial(seconds_per_step, dataset)
                                    for name, dataset in datasets.items()}, args.rounds)
        padding = {name: round(padding_fraction(dataset), 3)
                   for name, dataset in datasets.items()}
    medians = {name: common.median(values) for name, values in seconds.items()}
    return common.report("pretrain_buckets", {
        "network": f"LSTM{options.lstm_units}, embedding {options.embedding_dim}",
        "batch": options.batch_size,
        "padding_fraction": padding,
        "seconds_per_step": {**{name: round(s, 3) for name, s in medians.items()},
                             "rounds": {name: [round(s, 3) for s in values]
                                        for name, values in seconds.items()}},
        "speedup": round(medians["padded"] / medians["bucketed"], 2),
    }, args)


if __name__ == "__main__":
    main()
