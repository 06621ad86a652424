"""Benchmark: the pretrain stage's training loop against a bare ``tf.function`` training step.

The stage runs as it is (``pretrain.run``: Keras fit with its dataset, metrics, callbacks and
evaluations) for ``--steps`` steps on WORKDIR/prepare_data (made first when missing). A callback
added to the stage's own interleaves the two sides: after every ``--block`` stage steps it runs
``--block`` bare steps of a second model of the same network, batch and policy (forward, loss
with the L2 terms, gradients, the optimizer's clip, Adam, nothing else; one Python call of a
``tf.function`` per step) on batches of the same data held in memory. So the machine's other work slows both sides alike and their ratio holds.
The stage's evaluations are timed apart (``eval_seconds``): they are not training steps.

    python -m benchmarks.pretrain_throughput [--config configs/melody.yaml] [--steps 2000]
        [--block 100] [--workdir runs/melody]
    python -m benchmarks.pretrain_throughput --config configs/molecule.yaml --steps 600
        --block 50 --workdir W --set prepare_data.sample_size=200000

Prints (and with --output writes) a JSON object: network, batch, policy, the seconds per step
and tokens per second of each side (medians over blocks), ratio (bare / stage seconds per step;
1.0: the stage costs nothing beyond the step), the stage's evaluation seconds and each block's
times. Smoke (tests): ``--smoke`` (the melody smoke corpus, an LSTM(16), 20 steps in blocks of
5).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import common

SMOKE = {"config": common.SMOKE_CONFIGS["melody"], "steps": 20, "block": 5, "warmup": 5,
         "batches": 4}


def bare_step(config, vocab_size: int):
    """The bare training step of the config's network, loss and optimizer (the stage's
    schedule and clipnorm; loss-scaled under mixed_float16, as Keras compiles it)."""
    import tensorflow as tf

    from seqtutor import sequence_model

    options = config.pretrain
    model = common.mle_model(vocab_size, options,
                             policy=sequence_model.precision_policy(options.mixed_precision))
    optimizer, loss_fn = model.optimizer, model.loss
    scaled = isinstance(optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
    spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[spec, spec, tf.TensorSpec([None, None], tf.float32)])
    def step(inputs, targets, weights):
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)
            loss = loss_fn(targets, logits, sample_weight=weights)
            if model.losses:  # the L2 terms
                loss += tf.add_n(model.losses)
            scaled_loss = optimizer.get_scaled_loss(loss) if scaled else loss
        gradients = tape.gradient(scaled_loss, model.trainable_variables)
        if scaled:
            gradients = optimizer.get_unscaled_gradients(gradients)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    return step


def interleaving_callback(step, batches: list, block: int, warmup: int):
    """A Keras callback that times the stage's steps in blocks of ``block`` and runs (and
    times) ``block`` bare steps after each; the first ``warmup`` steps of each side trace and
    warm up, untimed."""
    import tensorflow as tf

    class Interleave(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.stage, self.bare, self.eval_seconds = [], [], 0.0
            self.epoch = 0
            self.block_step = self.block_started = None
            self.next_batch = 0

        def _bare(self, count):
            loss = None
            for _ in range(count):
                inputs, targets, weights = batches[self.next_batch % len(batches)]
                self.next_batch += 1
                loss = step(inputs, targets, weights)
            float(loss)  # waits for the device

        def on_train_begin(self, logs=None):
            self._bare(warmup)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            # The global step: with steps_per_execution, one call ends several steps.
            done = self.epoch * self.params["steps"] + batch + 1
            if self.block_step is None:
                if done >= warmup:
                    self._start_block(done)
            elif done - self.block_step >= block:
                if logs and "loss" in logs:
                    float(logs["loss"])  # waits for the device
                steps = done - self.block_step
                self.stage.append((time.perf_counter() - self.block_started) / steps)
                started = time.perf_counter()
                self._bare(steps)
                self.bare.append((time.perf_counter() - started) / steps)
                self._start_block(done)

        def _start_block(self, done):
            self.block_step, self.block_started = done, time.perf_counter()

        def on_test_begin(self, logs=None):
            self.test_started = time.perf_counter()

        def on_test_end(self, logs=None):
            seconds = time.perf_counter() - self.test_started
            self.eval_seconds += seconds
            if self.block_started is not None:  # not a training step: out of the block
                self.block_started += seconds

    return Interleave()


def main(argv: list[str] | None = None) -> dict:
    parser = common.parser(__doc__, "configs/melody.yaml")
    parser.add_argument("--steps", type=int, default=2000, help="stage steps in all")
    parser.add_argument("--block", type=int, default=100, help="steps per timed block")
    parser.add_argument("--warmup", type=int, default=20,
                        help="untimed first steps of each side (tracing)")
    parser.add_argument("--batches", type=int, default=200,
                        help="training batches held in memory for the bare step")
    args = common.parse_args(parser, argv, SMOKE)
    if args.warmup < 1 or args.block < 1:
        parser.error("--warmup and --block must be at least 1")
    if args.steps < args.warmup + args.block:
        parser.error("--steps must cover --warmup and at least one --block")
    overrides = [("pretrain.max_steps", args.steps)]
    smoke_overrides = [*common.SMOKE_NETWORK, ("pretrain.eval_every", 10),
                       ("pretrain.steps_per_execution", 5)]
    with common.setup(args, overrides, smoke_overrides=smoke_overrides) as (config, workdir):
        from seqtutor import sequence_model
        from seqtutor.components import pretrain

        options = config.pretrain
        dataset, vocab = common.training_batches(config, workdir, options.bucket_by_length)
        batches = list(dataset.take(args.batches))
        tokens_per_step = float(np.mean([float(w.numpy().astype(bool).sum())
                                         for _, _, w in batches]))
        step = bare_step(config, int(vocab["num_tokens"]))
        timer = interleaving_callback(step, batches, args.block, args.warmup)
        with tempfile.TemporaryDirectory(prefix="pretrain-throughput-") as output:
            started = time.perf_counter()
            pretrain.run(config, {"prepare_data": common.artifact(config, "prepare_data",
                                                                  workdir)},
                         Path(output), callbacks=[timer])
            wall = time.perf_counter() - started
        if not timer.stage:  # e.g. early stopping, or calls of steps_per_execution > --block
            sys.exit("pretrain_throughput: no block was timed: raise --steps, or lower "
                     "--warmup and --block to multiples of pretrain.steps_per_execution")
        stage, bare = common.median(timer.stage), common.median(timer.bare)
        result = {
            "network": f"LSTM{options.lstm_units}"
                       + (f", embedding {options.embedding_dim}" if options.embedding_dim
                          else ", one-hot"),
            "batch": options.batch_size,
            "tokens_per_step": round(tokens_per_step, 1),
            "policy": sequence_model.precision_policy(options.mixed_precision),
            "blocks": len(timer.stage),
            "stage_seconds_per_step": round(stage, 5),
            "bare_seconds_per_step": round(bare, 5),
            "stage_tokens_per_second": round(tokens_per_step / stage),
            "bare_tokens_per_second": round(tokens_per_step / bare),
            "ratio": round(bare / stage, 3),
            "eval_seconds": round(timer.eval_seconds, 2),
            "stage_wall_seconds": round(wall, 1),
            "rounds": {"stage": [round(s, 5) for s in timer.stage],
                       "bare": [round(s, 5) for s in timer.bare]},
        }
    return common.report("pretrain_throughput", result, args)


if __name__ == "__main__":
    main()
