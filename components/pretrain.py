"""pretrain stage: the LSTM trained by maximum likelihood on the prepare_data TFRecords.

Keras ``fit`` drives training (progress bar, TensorBoard, early stopping on eval loss). One
Keras "epoch" is ``eval_every`` steps, so the step budget is ``max_steps`` and evaluation,
checkpointing and early stopping happen every ``eval_every`` steps. Each call of the compiled
training function runs ``steps_per_execution`` steps in the graph: Keras' Python between steps
cost about 10% of a step on two CPU cores (benchmarks/pretrain_throughput.py).
``BackupAndRestore`` keeps the last checkpoint in the stage's partial directory, so a killed run
resumes from it. A finished run whose ``max_steps`` grew (nothing else changed) is continued from
its saved weights, Adam state and step, as a TF Estimator continues to a larger ``max_steps``;
the learning-rate schedule depends on the step alone, so this trains what a fresh run to the new
``max_steps`` would (on another data order, and with early stopping's patience counted afresh).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from seqtutor import console, layout
from seqtutor import sequence_model
from seqtutor import tfrecords

keras = tf.keras
log = logging.getLogger(__name__)


def length_buckets(max_length: int, width: int = 4) -> list[int]:
    """Bucket boundaries for ``bucket_by_sequence_length``: one bucket per ``width`` tokens."""
    return list(range(width, max_length + 1, width))


def make_dataset(data_dir: Path, split: str, vocab: dict, batch_size: int,
                 skip_first_losses: int, *, training: bool, shuffle_buffer: int = 10000,
                 seed: int = 0, bucket_by_length: bool = False,
                 sample: int | None = None) -> tf.data.Dataset:
    """Batches of (inputs, targets, weights) for next-token prediction.

    inputs = tokens[:-1], targets = tokens[1:], both from the zero LSTM state; weights are 0 for
    padding and for the first ``skip_first_losses`` targets of each sequence. Sequences of
    different lengths are padded per batch with the vocabulary's ``pad`` token (or 0). With
    ``bucket_by_length`` (training only), shuffled sequences are batched with others of about
    the same length, so that little of each batch is padding (the LSTM pays for every step).
    Training weights of variable-length data are scaled so that every token weighs the same in
    Keras' batch-mean loss; eval weights stay 0/1 (``evaluate`` counts tokens with them).

    With ``sample`` (eval only), the dataset is a fixed random sample of that many records,
    drawn through the shuffle buffer with ``seed`` and the same at every evaluation: the first
    records in file order would share any drift of the corpus's order (MOSES is ordered).
    """
    if sample and training:
        raise ValueError("sample is for eval datasets; training data is shuffled instead")
    num_tokens = int(vocab["num_tokens"])
    pad = int(vocab.get("pad", 0))

    def to_example(record):
        tokens = tf.cast(record["tokens"], tf.int32)
        tf.debugging.assert_less(tokens, num_tokens,
                                 message="token id outside the vocabulary (vocab.json)")
        length = tf.shape(tokens)[0] - 1
        weights = tf.cast(tf.range(length) >= skip_first_losses, tf.float32)
        return tokens[:-1], tokens[1:], weights

    dataset = tfrecords.load_split(data_dir, split)  # a fixed order: reproducible runs
    dataset = dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
    if sample:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=False)
        dataset = dataset.take(sample).cache()
    if training:
        dataset = dataset.cache().shuffle(shuffle_buffer, seed=seed,
                                          reshuffle_each_iteration=True).repeat()
    # Only variable-length datasets record a max_length (melodies all have one length).
    max_inputs = int(vocab["max_length"]) + 1 if vocab.get("max_length") else None  # + BOS
    if training and bucket_by_length and max_inputs:
        boundaries = length_buckets(max_inputs)
        dataset = dataset.bucket_by_sequence_length(
            lambda inputs, targets, weights: tf.shape(inputs)[0], boundaries,
            [batch_size] * (len(boundaries) + 1), padding_values=(pad, pad, 0.0))
    else:
        dataset = dataset.padded_batch(batch_size, padding_values=(pad, pad, 0.0),
                                       drop_remainder=False)
    if training and max_inputs:
        # Keras averages the weighted loss over batch x time, so a token of a short batch
        # would weigh more than one of a long batch (and the model would learn to favour
        # short sequences). Scaled by time / max_inputs, every token weighs the same.
        def same_weight_per_token(inputs, targets, weights):
            scale = tf.cast(tf.shape(weights)[1], tf.float32) / max_inputs
            return inputs, targets, weights * scale

        dataset = dataset.map(same_weight_per_token)
    return dataset.prefetch(tf.data.AUTOTUNE)


def eval_dataset(data_dir: Path, vocab: dict, options, seed: int) -> tf.data.Dataset:
    """The eval batches of every evaluation: the whole eval split, or with ``eval_batches`` a
    fixed random sample of ``eval_batches`` x ``batch_size`` sequences of it.

    Its number of batches is counted once, here: Keras needs it to evaluate a model compiled
    with ``steps_per_execution`` above 1 (a sample's count also fills its cache).
    """
    sample = options.eval_batches * options.batch_size if options.eval_batches else None
    dataset = make_dataset(data_dir, "eval", vocab, options.batch_size, options.skip_first_losses,
                           training=False, shuffle_buffer=options.shuffle_buffer, seed=seed,
                           sample=sample)
    batches = int(dataset.reduce(np.int64(0), lambda count, _: count + 1))
    return dataset.apply(tf.data.experimental.assert_cardinality(batches))


def _optimizer(config) -> keras.optimizers.Optimizer:
    schedule = sequence_model.learning_rate_schedule(config)
    classes = {"adam": keras.optimizers.Adam, "adagrad": keras.optimizers.Adagrad,
               "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}
    kwargs = {"clipnorm": config.clip_norm} if config.clip_norm else {}
    return classes[config.optimizer](learning_rate=schedule, **kwargs)


def _strategy(config) -> tf.distribute.Strategy:
    if config.distribution == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def evaluate(model: keras.Model, dataset: tf.data.Dataset) -> dict[str, float]:
    """Exact token-weighted eval accuracy and log perplexity (mean NLL per token, natural log)."""

    # Padded batches of variable-length data differ in length: one relaxed-shape graph for all.
    @tf.function(reduce_retracing=True)
    def batch_sums(inputs, targets, weights):
        logits = model(inputs, training=False)
        nll = tf.keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), targets),
                          tf.float32)
        return (tf.reduce_sum(nll * weights), tf.reduce_sum(correct * weights),
                tf.reduce_sum(weights))

    totals = np.zeros(3)
    for inputs, targets, weights in dataset:
        totals += [float(x) for x in batch_sums(inputs, targets, weights)]
    if totals[2] == 0:
        raise ValueError("the eval split has no token to score")
    return {"eval_log_perplexity": totals[0] / totals[2], "eval_accuracy": totals[1] / totals[2],
            "eval_tokens": int(totals[2])}


class _StepLogger(keras.callbacks.Callback):
    """Records the global step and eval loss of each evaluation (for metrics.json)."""

    def __init__(self):
        super().__init__()
        self.history: list[dict] = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.history.append({
            "step": int(self.model.optimizer.iterations.numpy()),
            **{k: float(v) for k, v in logs.items() if np.isscalar(v)}})


class _ProgressCallback(keras.callbacks.Callback):
    """Training steps on the console's progress bar (plain lines when not on a terminal), with
    the running loss and the last evaluation's loss."""

    def __init__(self, total_steps: int, steps_per_epoch: int):
        super().__init__()
        self._supports_tf_logs = True  # the loss is read only when the bar is drawn
        self.total_steps, self.steps_per_epoch = total_steps, steps_per_epoch
        self.epoch = 0
        self.progress: console.Progress | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        if self.progress is None:  # the first epoch: 0, or where a continued or resumed run is
            self.progress = console.Progress("pretrain", self.total_steps, unit="step",
                                             start=epoch * self.steps_per_epoch)

    def on_train_batch_end(self, batch, logs=None):
        step = self.epoch * self.steps_per_epoch + batch + 1
        if self.progress.due(step):
            loss = (logs or {}).get("loss")
            self.progress.update(step, {"loss": float(loss)} if loss is not None else None)
        else:
            self.progress.update(step)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.progress.metrics.update({key: float(logs[key]) for key in ("loss", "val_loss")
                                      if key in logs})

    def on_train_end(self, logs=None):
        if self.progress is not None:
            self.progress.close()


def _start_step(previous: Path | None, options) -> tuple[int, list[dict]]:
    """The step and history a finished run in ``previous`` can be continued from, or (0, [])."""
    if previous is None:
        return 0, []
    metrics = json.loads((Path(previous) / layout.METRICS_FILE).read_text())
    steps = int(metrics["steps"])
    # A run that stopped early would stop again in a fresh run: continuing it would not train
    # what the config describes.
    if metrics.get("stopped_early") or steps % options.eval_every or steps >= options.max_steps:
        log.info("pretrain: the finished run in %s (%d steps) cannot be continued to %d steps; "
                 "training from scratch", previous, steps, options.max_steps)
        return 0, []
    log.info("pretrain: continuing the finished run in %s from step %d to %d",
             previous, steps, options.max_steps)
    return steps, metrics.get("history", [])


def _backup_epoch(backup_dir: Path) -> int | None:
    """The epoch a killed run's backup (BackupAndRestore, in ``_train``) resumes at, or None."""
    latest = tf.train.latest_checkpoint(str(backup_dir / "chief"))  # the callback's layout
    if latest is None:
        return None
    saved = int(tf.train.load_variable(latest, "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE"))
    return saved + 1 if saved >= 0 else None  # Keras' own rule (-1: no epoch saved)


def run(config, inputs: dict[str, Path], output: Path, previous: Path | None = None, *,
        callbacks: list[keras.callbacks.Callback] = ()) -> dict:
    """Train the MLE model on ``inputs["prepare_data"]`` and save it into ``output``.

    ``previous`` (from the runner) is a finished pretrain artifact of the same data and settings
    but a smaller ``max_steps``: training continues from its last step. ``callbacks`` are Keras
    callbacks added to the stage's own (benchmarks/pretrain_throughput.py times the loop with
    one).

    Raises:
      FileNotFoundError: the dataset has no vocab.json or no shards.
      VocabularyMismatchError: a resumed checkpoint does not match the vocabulary.
    """
    options = config.pretrain
    data_dir = Path(inputs["prepare_data"])
    output = Path(output)
    vocab = tfrecords.read_vocab(data_dir)
    tf.keras.utils.set_random_seed(config.seed)
    with sequence_model.global_dtype_policy(
            sequence_model.precision_policy(options.mixed_precision)):
        return _train(config, data_dir, vocab, output, previous, list(callbacks))


def _float32_model(model: keras.Model) -> keras.Model:
    """``model`` rebuilt under the float32 policy, with its weights and its optimizer.

    A model trained in mixed precision is saved like this, so that the artifact does not carry
    the training policy into tune, evaluate and generate, and a continued run loads its
    optimizer state from it.
    """
    copy = sequence_model.with_dtype_policy(model, "float32")
    with sequence_model.global_dtype_policy("float32"):  # or compile would wrap the optimizer
        # mixed_float16 wrapped the optimizer in a LossScaleOptimizer; the state is inside.
        copy.compile(optimizer=getattr(model.optimizer, "inner_optimizer", model.optimizer),
                     loss=model.loss)
    return copy


def early_stopping(options) -> keras.callbacks.Callback:
    """Stops when the eval loss has not fallen by ``early_stopping_min_delta`` for
    ``early_stopping_patience`` evaluations (never before ``early_stopping_start_step``) and
    keeps the best weights. One Keras epoch is ``eval_every`` steps."""
    return keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=options.early_stopping_patience,
        min_delta=options.early_stopping_min_delta,
        start_from_epoch=options.early_stopping_start_step // options.eval_every,
        restore_best_weights=True, verbose=0)


def _train(config, data_dir: Path, vocab: dict, output: Path, previous: Path | None,
           extra_callbacks: list[keras.callbacks.Callback]) -> dict:
    options = config.pretrain
    start_step, previous_history = _start_step(previous, options)
    # A continued run draws a new order: the first one's would repeat its first batches.
    train = make_dataset(data_dir, "train", vocab, options.batch_size, options.skip_first_losses,
                         training=True, shuffle_buffer=options.shuffle_buffer,
                         seed=config.seed + start_step,
                         bucket_by_length=options.bucket_by_length)
    resumed_epoch = _backup_epoch(output / layout.CHECKPOINT_DIR)
    if resumed_epoch is not None:
        # A killed run resumes from its backup; its data goes on from the batch it had reached
        # (the order above is the killed run's), or it would train on its first batches again.
        train = train.skip((resumed_epoch - start_step // options.eval_every) * options.eval_every)
    eval_ = eval_dataset(data_dir, vocab, options, config.seed)

    with _strategy(options).scope():
        model = sequence_model.build_model(int(vocab["num_tokens"]), options.lstm_units,
                                           options.embedding_dim, options.dropout, options.l2)
        model.compile(
            optimizer=_optimizer(options),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            steps_per_execution=options.steps_per_execution)
        if start_step:
            model.optimizer.build(model.trainable_variables)  # so that its state loads too
            model.load_weights(Path(previous) / layout.MODEL_FILE)
            if int(model.optimizer.iterations.numpy()) != start_step:
                raise ValueError(f"{previous}: the saved optimizer is at step "
                                 f"{int(model.optimizer.iterations.numpy())}, not {start_step}")

    epochs = math.ceil(options.max_steps / options.eval_every)
    step_logger = _StepLogger()
    callbacks = [
        # Restores weights, optimizer state and the epoch after a kill; deleted on success.
        keras.callbacks.BackupAndRestore(str(output / layout.CHECKPOINT_DIR)),
        early_stopping(options),
        keras.callbacks.TensorBoard(str(output / layout.LOGS_DIR), update_freq=options.eval_every),
        keras.callbacks.TerminateOnNaN(),
        step_logger,
        # Keras's own bar redraws every step, also into log files: the console's instead.
        _ProgressCallback(epochs * options.eval_every, options.eval_every),
        *extra_callbacks,
    ]
    history = model.fit(train, epochs=epochs, steps_per_epoch=options.eval_every,
                        initial_epoch=start_step // options.eval_every,
                        validation_data=eval_, callbacks=callbacks, verbose=0)
    if not np.all(np.isfinite(history.history.get("loss", [0.0]))):
        raise FloatingPointError("the training loss became NaN or infinite; "
                                 "lower pretrain.learning_rate or set pretrain.clip_norm")

    metrics = evaluate(model, eval_)
    steps = int(model.optimizer.iterations.numpy())
    metrics.update({
        "steps": steps,
        "train_sequences": steps * options.batch_size,
        "stopped_early": steps < options.max_steps,
        "continued_from_step": start_step,
        "history": previous_history + step_logger.history,
        **sequence_model.model_summary(model),
    })
    if sequence_model.precision_policy(options.mixed_precision) != "float32":
        model = _float32_model(model)
    metrics["weights_sha256"] = sequence_model.weights_digest(model)  # a rerun's should match
    sequence_model.save_model(model, output)
    # The model's vocabulary travels with it: tune, evaluate and generate check against it.
    (output / layout.VOCAB_FILE).write_text(json.dumps(vocab, indent=1) + "\n")
    (output / layout.METRICS_FILE).write_text(json.dumps(metrics, indent=1) + "\n")
    log.debug("pretrain: eval accuracy %.4f, eval log perplexity %.4f after %d steps",
             metrics["eval_accuracy"], metrics["eval_log_perplexity"], steps)
    return {k: metrics[k] for k in ("eval_accuracy", "eval_log_perplexity", "steps")}
