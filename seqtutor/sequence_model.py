"""The LSTM sequence model shared by pretrain, tune, evaluate and generate.

One Keras model (tokens -> one-hot or embedding -> LSTM layers -> linear logits) trained by
maximum likelihood over whole sequences. The tuner and the samplers run the *same layer objects*
one step at a time (each LSTM layer's ``cell``), so pretrained weights load, unchanged, into the
Q-network, the target network and the Reward RNN.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from seqtutor import artifacts, layout

keras = tf.keras


class VocabularyMismatchError(ValueError):
    """A model's output size differs from the dataset's vocabulary."""


@keras.utils.register_keras_serializable(package="seqtutor")
class OneHot(keras.layers.Layer):
    """Integer tokens to one-hot vectors (the paper's input encoding)."""

    def __init__(self, depth: int, **kwargs):
        super().__init__(**kwargs)
        self.depth = depth

    def call(self, tokens):
        return tf.one_hot(tokens, self.depth, dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "depth": self.depth}


def build_model(vocab_size: int, lstm_units: list[int], embedding_dim: int | None = None,
                dropout: float = 0.0, l2: float = 0.0) -> keras.Model:
    """The MLE model: int tokens [batch, time] -> logits [batch, time, vocab_size].

    Layer names are fixed (``encoder``, ``lstm_0``.., ``logits``): the step-wise runner finds
    the layers by them.
    """
    regularizer = keras.regularizers.L2(l2) if l2 else None
    tokens = keras.Input(shape=(None,), dtype=tf.int32, name="tokens")
    if embedding_dim:
        x = keras.layers.Embedding(vocab_size, embedding_dim, name="encoder",
                                   embeddings_regularizer=regularizer)(tokens)
    else:
        x = OneHot(vocab_size, name="encoder")(tokens)
    for i, units in enumerate(lstm_units):
        x = keras.layers.LSTM(units, return_sequences=True, name=f"lstm_{i}",
                              kernel_regularizer=regularizer,
                              recurrent_regularizer=regularizer)(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    logits = keras.layers.Dense(vocab_size, name="logits", dtype="float32",
                                kernel_regularizer=regularizer)(x)
    return keras.Model(tokens, logits, name="sequence_model")


def vocab_size_of(model: keras.Model) -> int:
    return int(model.get_layer("logits").units)


def check_vocabulary(model: keras.Model, vocab: dict) -> None:
    """Raise VocabularyMismatchError when the model's outputs do not match ``vocab``."""
    if vocab_size_of(model) != int(vocab["num_tokens"]):
        raise VocabularyMismatchError(
            f"the model predicts {vocab_size_of(model)} tokens but the dataset's vocabulary "
            f"has {vocab['num_tokens']}: retrain the model on this dataset (seqtutor pretrain)")


def load_model(pretrain_dir: str | Path, vocab: dict | None = None) -> keras.Model:
    """Load the pretrained model of a pretrain artifact, checked against ``vocab``."""
    path = Path(pretrain_dir) / layout.MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {layout.MODEL_FILE} in {pretrain_dir}")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - whatever a damaged file makes Keras or h5py raise
        raise artifacts.damaged(path, error) from error
    if vocab is not None:
        check_vocabulary(model, vocab)
    return model


@contextlib.contextmanager
def global_dtype_policy(name: str):
    """Set Keras' dtype policy, which is global, for one stage only: later stages of the same
    process (seqtutor run) then still build float32 models."""
    outer = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(outer)


def precision_policy(mixed_precision: bool | str) -> str:
    """The Keras policy name of a ``mixed_precision`` option (true means mixed_float16)."""
    if mixed_precision is True:
        return "mixed_float16"
    return mixed_precision or "float32"


def with_dtype_policy(model: keras.Model, policy: str) -> keras.Model:
    """``model`` rebuilt with every layer under ``policy`` but the logits, which stay float32
    (or all float32 for ``policy`` float32), holding the same weights; no optimizer.

    Variables are float32 under every policy, so the copy's weights, checkpoints and Polyak
    updates are the original's; only the computation changes precision.
    """
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] != "InputLayer" and layer["name"] != "logits":
            layer["config"]["dtype"] = policy
    with global_dtype_policy("float32"):
        copy = keras.Model.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


@keras.utils.register_keras_serializable(package="seqtutor")
class FlooredExponentialDecay(keras.optimizers.schedules.ExponentialDecay):
    """Staircase exponential decay that never goes below ``floor``."""

    def __init__(self, *args, floor: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.floor = floor

    def __call__(self, step):
        return tf.maximum(super().__call__(step), self.floor)

    def get_config(self):
        return {**super().get_config(), "floor": self.floor}


def learning_rate_schedule(options) -> FlooredExponentialDecay:
    """The learning rate of pretraining and tuning alike: ``options.learning_rate``, times
    ``lr_decay_rate`` every ``lr_decay_steps`` optimizer steps, never below
    ``min_learning_rate``."""
    return FlooredExponentialDecay(
        options.learning_rate, decay_steps=options.lr_decay_steps,
        decay_rate=options.lr_decay_rate, staircase=True, floor=options.min_learning_rate)


class StepModel(tf.Module):
    """Runs a sequence model one token at a time with explicit LSTM state.

    It holds references to the model's own layers, so it always uses the current weights.
    ``state`` is a flat tuple (h_0, c_0, h_1, c_1, ...).
    """

    def __init__(self, model: keras.Model):
        super().__init__(name="step_model")
        self.model = model
        self.encoder = model.get_layer("encoder")
        self.lstms = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
        self.head = model.get_layer("logits")
        self.vocab_size = vocab_size_of(model)

    def zero_state(self, batch_size) -> tuple:
        state = []
        for layer in self.lstms:
            zeros = tf.zeros([batch_size, layer.units], dtype=tf.float32)
            state += [zeros, zeros]
        return tuple(state)

    def step(self, tokens, state):
        """tokens [B] int, state -> (logits [B, V], new state)."""
        x = self.encoder(tokens)
        new_state = []
        for i, layer in enumerate(self.lstms):
            # The state is float32 between steps whatever the model's precision (a mixed
            # policy computes the cell in 16 bits), so policies and their specs stay float32.
            dtype = layer.cell.compute_dtype
            h, c = (tf.cast(s, dtype) for s in state[2 * i:2 * i + 2])
            x, (h, c) = layer.cell(x, [h, c], training=False)
            new_state += [tf.cast(h, tf.float32), tf.cast(c, tf.float32)]
        return self.head(x), tuple(new_state)


class PolicySampler(tf.Module):
    """Samples sequences in one graph from softmax(values + prior_weight * log p(a|s)) and scores
    them under the prior, with the policy's KL from the prior at every sampled state.
    ``prior_weight`` 0 samples softmax(values) (the MLE model, Q, Psi);
    G's policy p(a|s) exp(G) has 1 (``seqtutor.rl.algorithms`` gives each algorithm's).

    With ``values is prior`` (the MLE model) the model runs once per step. With an
    ``end_token`` (molecules' EOS), a sequence that has sampled it leaves the batch: the models
    run only on the sequences still going (a third fewer LSTM steps for MOSES-like lengths),
    and its later steps read ``end_token`` with log-probability and KL 0.
    """

    def __init__(self, values: keras.Model, prior: keras.Model | None = None,
                 prior_weight: float = 0.0):
        super().__init__(name="policy_sampler")
        self.values = StepModel(values)
        self.prior = None if prior is None or prior is values else StepModel(prior)
        self.prior_weight = prior_weight
        self._sample = tf.function(self._sample_fn)

    def _step(self, current, value_state, prior_state, temperature, step_seed):
        """One token for each running sequence: (token, log p(token|s), KL(pi||p), states)."""
        logits, value_state = self.values.step(current, value_state)
        if self.prior is not None:
            prior_logits, prior_state = self.prior.step(current, prior_state)
            log_prior = tf.nn.log_softmax(prior_logits)
        else:
            log_prior = tf.nn.log_softmax(logits)
        if self.prior_weight:
            logits = logits + self.prior_weight * log_prior
        token = tf.cast(tf.random.stateless_categorical(
            logits / temperature, 1, seed=step_seed)[:, 0], tf.int32)
        # KL(pi(.|s) || p(.|s)) over the whole vocabulary: exact at each sampled state.
        log_policy = tf.nn.log_softmax(logits / temperature)
        kl = tf.reduce_sum(tf.exp(log_policy) * (log_policy - log_prior), -1)
        return (token, tf.gather(log_prior, token, batch_dims=1), kl, value_state,
                prior_state)

    def _sample_fn(self, first_tokens, length, temperature, seed, end_token):
        """``end_token`` is a Python int or None (one graph each)."""
        batch = tf.shape(first_tokens)[0]
        outputs = tuple(tf.TensorArray(dtype, size=0, dynamic_size=True, element_shape=[None])
                        for dtype in (tf.int32, tf.float32, tf.float32))
        value_state = self.values.zero_state(batch)
        prior_state = self.prior.zero_state(batch) if self.prior is not None else ()
        running = tf.range(batch)  # the rows of the batch still sampling

        def body(t, running, current, value_state, prior_state, outputs):
            step_seed = tf.stack([seed[0], seed[1] + tf.cast(t, tf.int64)])
            token, log_prob, kl, value_state, prior_state = self._step(
                current, value_state, prior_state, temperature, step_seed)
            if end_token is None:
                outputs = tuple(output.write(t, value) for output, value
                                in zip(outputs, (token, log_prob, kl)))
                return t + 1, running, token, value_state, prior_state, outputs
            rows = running[:, None]  # each value back to its row; ended rows get the fill
            outputs = tuple(
                output.write(t, tf.tensor_scatter_nd_update(tf.fill([batch], fill), rows, value))
                for output, value, fill in zip(outputs, (token, log_prob, kl), (end_token, 0., 0.)))
            going = tf.not_equal(token, end_token)
            keep = lambda state: tuple(tf.boolean_mask(s, going) for s in state)
            return (t + 1, tf.boolean_mask(running, going), tf.boolean_mask(token, going),
                    keep(value_state), keep(prior_state), outputs)

        def any_running(t, running, *_):
            return tf.logical_and(t < length, tf.size(running) > 0)

        def any_rows(state):
            return tuple(tf.TensorShape([None, s.shape[1]]) for s in state)

        steps, _, _, _, _, outputs = tf.while_loop(
            any_running, body,
            (tf.constant(0), running, first_tokens, value_state, prior_state, outputs),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([None]),
                              tf.TensorShape([None]), any_rows(value_state),
                              any_rows(prior_state), tuple(tf.TensorShape(None) for _ in outputs)))
        # Every row ended before ``length``: the rest of the steps are the fill.
        pad = [[0, 0], [0, length - steps]]
        return tuple(tf.pad(tf.transpose(output.stack()), pad, constant_values=fill)
                     for output, fill in zip(outputs, (end_token or 0, 0., 0.)))

    def sample(self, first_tokens, length: int, *, temperature: float = 1.0, seed: int = 0,
               batch_size: int = 10000, with_kl: bool = False, end_token: int | None = None):
        """(tokens [N, length] int32, log p(token | prefix) under the prior [N, length]); with
        ``with_kl`` also KL(pi || p) at each step [N, length] (nats; pi at ``temperature``).
        With ``end_token``, the steps after a sequence's first ``end_token`` read ``end_token``,
        log-probability 0 and KL 0."""
        first_tokens = np.asarray(first_tokens, dtype=np.int32)
        outputs = ([], [], [])
        batches = range(0, len(first_tokens), batch_size) if length > 0 else ()
        for i, start in enumerate(batches):
            batch = self._sample(tf.constant(first_tokens[start:start + batch_size]),
                                 tf.constant(length), tf.constant(temperature, tf.float32),
                                 tf.constant([seed, i * 1_000_003], dtype=tf.int64),
                                 None if end_token is None else int(end_token))
            for output, array in zip(outputs, batch):
                output.append(array.numpy())
        if not outputs[0]:  # no sequence, or no step
            shape = (len(first_tokens), max(length, 0))
            result = (np.zeros(shape, np.int32), np.zeros(shape, np.float32),
                      np.zeros(shape, np.float32))
        else:
            result = tuple(np.concatenate(output) for output in outputs)
        return result if with_kl else result[:2]


def sample(model: keras.Model, first_tokens, length: int, *, temperature: float = 1.0,
           seed: int = 0, batch_size: int = 10000):
    """Sample one sequence of ``length`` tokens per priming token from ``model``, in large
    batches; returns (tokens [N, length], log-probabilities of them under the model at
    temperature 1). The same seed gives the same samples."""
    return PolicySampler(model).sample(first_tokens, length, temperature=temperature,
                                       seed=seed, batch_size=batch_size)


def log_prior_of(prior: keras.Model, observations, actions):
    """log p(a_t | s_t) under ``prior`` for whole episodes [B, T] (one pass)."""
    log_prior = tf.nn.log_softmax(prior(observations, training=False))
    return tf.gather(log_prior, tf.cast(actions, tf.int32), batch_dims=2)


def log_prior_of_episodes(prior: keras.Model, observations, actions, lengths,
                          batch_size: int = 10000):
    """log p(a_t | s_t) under ``prior`` [N, T] for N episodes of ``lengths`` steps each: in
    batches of similar lengths, each run only up to its longest episode (the steps past an
    episode's length read 0), so a corpus of short and long molecules costs its tokens, not N x T.
    """
    import numpy as np

    lengths = np.asarray(lengths)
    out = np.zeros(np.shape(actions), np.float32)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        steps = max(1, int(lengths[rows].max()))
        values = log_prior_of(prior, observations[rows, :steps], actions[rows, :steps]).numpy()
        out[rows, :steps] = np.where(np.arange(steps) < lengths[rows, None], values, 0.0)
    return out


def save_model(model: keras.Model, directory: Path) -> Path:
    path = Path(directory) / layout.MODEL_FILE
    model.save(path)
    return path


def weights_digest(model: keras.Model) -> str:
    """SHA-256 of the model's weights (each array's dtype, shape and bytes, in order): equal
    digests mean bit-identical weights, whatever the saved file's metadata."""
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def model_summary(model: keras.Model) -> dict:
    return json.loads(json.dumps({
        "vocab_size": vocab_size_of(model),
        "lstm_units": [layer.units for layer in model.layers
                       if isinstance(layer, keras.layers.LSTM)],
        "parameters": int(model.count_params()),
    }))
