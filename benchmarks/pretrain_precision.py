"""Benchmark: MLE training seconds per step in float32 against a mixed-precision policy, to
choose ``pretrain.mixed_precision`` on a machine.

``pretrain.mixed_precision: mixed_bfloat16`` computes in bfloat16 (weights stay float32), which
CPUs with AVX512-BF16 or AMX run faster than float32; without those instructions it can be
slower (on GPUs: ``mixed_float16``). One model per policy and network size, trained on the same
length-bucketed batches of WORKDIR/prepare_data (made first when missing), in alternating
rounds in one process (a first pass over the batches traces every length), so the ratio holds
even when other work shares the cores.

    python -m benchmarks.pretrain_precision --steps 40 --rounds 2 --units 256,256 --units 512,512
        [--config configs/molecule.yaml] [--workdir runs/molecule] [--policy mixed_bfloat16]

Prints (and with --output writes) a JSON object: policy, batch, embedding and per network
(lstm_units) seconds_per_step of each policy (medians), each round's, and speedup (float32 /
mixed). Smoke (tests): ``--smoke`` (400 molecules, an LSTM(16), one batch, one round).
"""

from __future__ import annotations

import functools

from benchmarks import common

SMOKE = {"config": common.SMOKE_CONFIGS["molecule"], "units": ["16"], "steps": 1, "rounds": 1}


def seconds_per_step(model, batches: list) -> float:
    """One pass over ``batches`` to trace every length, then the mean of a timed pass."""
    for _ in range(2):
        _, seconds = common.timed(lambda: [
            model.train_on_batch(inputs, targets, sample_weight=weights)
            for inputs, targets, weights in batches])
    return seconds / len(batches)


def main(argv: list[str] | None = None) -> dict:
    parser = common.parser(__doc__, "configs/molecule.yaml")
    parser.add_argument("--units", action="append", default=None,
                        help="LSTM sizes, comma-separated; repeat for several networks "
                        "(default: the config's, and 512,512)")
    parser.add_argument("--policy", default="mixed_bfloat16",
                        choices=["mixed_bfloat16", "mixed_float16"])
    parser.add_argument("--steps", type=int, default=100, help="batches per pass")
    parser.add_argument("--rounds", type=int, default=2)
    args = common.parse_args(parser, argv, SMOKE)
    with common.setup(args, smoke_overrides=common.SMOKE_NETWORK) as (config, workdir):
        options = config.pretrain
        networks = ([[int(n) for n in units.split(",")] for units in args.units] if args.units
                    else [options.lstm_units] + [[512, 512]] * (options.lstm_units != [512, 512]))
        # The same batches for every model, fetched once (a new fit would refill the shuffle
        # buffer).
        dataset, vocab = common.training_batches(config, workdir, bucket_by_length=True)
        batches = list(dataset.take(args.steps))
        results = []
        for units in networks:
            seconds = common.alternate({
                policy: functools.partial(seconds_per_step, common.mle_model(
                    int(vocab["num_tokens"]), options, units, policy), batches)
                for policy in ("float32", args.policy)}, args.rounds)
            medians = {policy: common.median(values) for policy, values in seconds.items()}
            results.append({
                "lstm_units": units,
                "seconds_per_step": {policy: round(s, 3) for policy, s in medians.items()},
                "rounds": {policy: [round(s, 3) for s in v] for policy, v in seconds.items()},
                "speedup": round(medians["float32"] / medians[args.policy], 2),
            })
    return common.report("pretrain_precision", {
        "policy": args.policy,
        "batch": options.batch_size,
        "embedding": options.embedding_dim,
        "networks": results,
    }, args)


if __name__ == "__main__":
    main()
