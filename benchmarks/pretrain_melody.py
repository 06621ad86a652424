"""Benchmark: MLE training throughput, and the default melody pretraining run.

1. Training throughput (tokens per second) of the config's network on random tokens, Keras
   fit, batch and window from the config (melody: LSTM(100), batch 128 x 63 predicted tokens).
2. With --run, the pretrain stage of the config on WORKDIR/prepare_data (made first when
   missing), timed, with its eval metrics. Target (docs/figures.md): under 10 minutes on 2 cores.

    python -m benchmarks.pretrain_melody --run [--workdir runs/melody]

Prints (and with --output writes) a JSON object: network, batch, train_tokens_per_second and,
with --run, pretrain_wall_seconds, steps, stopped_early, eval_accuracy, eval_log_perplexity.
--run retrains WORKDIR/pretrain (default runs/melody). Smoke (tests): ``--smoke --run`` (the
smoke config's LSTM(32), 10 steps, a temporary workdir).
"""

from __future__ import annotations

import json

import numpy as np
import tensorflow as tf

from benchmarks import common
from seqtutor import layout
from seqtutor.pipeline import runner

SMOKE = {"config": common.SMOKE_CONFIGS["melody"], "seconds": 0.2}
SMOKE_OVERRIDES = [("pretrain.max_steps", 10), ("pretrain.eval_every", 10)]


def supervised_tokens_per_second(options, batch: int, length: int, seconds: float) -> float:
    """Tokens per second of Keras-fit MLE steps on [batch, length] targets (random melody
    tokens), measured over at least ``seconds``."""
    model = common.mle_model(38, options)
    tokens = np.random.default_rng(0).integers(0, 38, (batch * 64, length + 1))
    dataset = tf.data.Dataset.from_tensor_slices((tokens[:, :-1], tokens[:, 1:]))
    dataset = dataset.batch(batch).repeat().prefetch(tf.data.AUTOTUNE)
    model.fit(dataset, steps_per_epoch=20, epochs=1, verbose=0)  # warm-up and tracing
    steps = 50
    while True:
        _, elapsed = common.timed(model.fit, dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        if elapsed >= seconds or steps >= 100_000:
            return steps * batch * length / elapsed
        steps *= 4


def main(argv: list[str] | None = None) -> dict:
    parser = common.parser(__doc__, "configs/melody.yaml")
    parser.add_argument("--run", action="store_true", help="also run the pretrain stage")
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="measure the throughput over at least this long")
    args = common.parse_args(parser, argv, SMOKE)
    with common.setup(args, smoke_overrides=SMOKE_OVERRIDES) as (config, workdir):
        length = config.prepare_data.sequence_length - 1
        result = {
            "network": f"LSTM{config.pretrain.lstm_units}",
            "batch": f"{config.pretrain.batch_size} x {length} tokens",
            "train_tokens_per_second": round(supervised_tokens_per_second(
                config.pretrain, config.pretrain.batch_size, length, args.seconds)),
        }
        if args.run:
            common.artifact(config, "prepare_data", workdir)
            stage = runner.run_stage(config, "pretrain", workdir, force=True)
            metrics = json.loads((stage.path / layout.METRICS_FILE).read_text())
            result.update({
                "pretrain_wall_seconds": round(stage.seconds, 1),
                "steps": metrics["steps"], "stopped_early": metrics["stopped_early"],
                "eval_accuracy": round(metrics["eval_accuracy"], 4),
                "eval_log_perplexity": round(metrics["eval_log_perplexity"], 4),
            })
    return common.report("pretrain_melody", result, args)


if __name__ == "__main__":
    main()
