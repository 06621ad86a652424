"""tune stage: KL-regularised RL on top of the pretrained model, one algorithm (at one sweep
point) per output directory (``tune/<algorithm>/``).

Loop: collect a batch of episodes in parallel with the collect policy (one graph; the task reward
is computed once per batch of finished episodes). The off-policy algorithms (Q, Psi, G, RL-only)
add them to the replay, then train on whole episodes until the number of trained transitions
matches ``replay_ratio`` x environment steps; the on-policy ones (DAP, RLOO-KL) take one
gradient step on the batch itself, in the same graph.
Every ``eval_every`` environment steps, ``eval_episodes`` episodes sampled from the policy give
one point of ``curves.csv`` (mean r_T per episode, mean log p(a|s) per token: the paper's
Figure 2; then the domain's own ``curve_fields``, such as the fraction of valid molecules).
Checkpoints hold the networks, the optimizer, the replay and the counters, so a killed run
resumes where its last checkpoint left it.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from seqtutor import console, domains, layout, sequence_model, sweep, tfrecords
from seqtutor.rl import algorithms, kl_control
from seqtutor.rl.collect import collect_episodes, epsilon_schedule
from seqtutor.rl.replay import EpisodeReplay, episodes_trajectory

log = logging.getLogger(__name__)


class NonFiniteError(FloatingPointError):
    """The loss or the Q-values stopped being finite; the last good checkpoint is kept."""


class CurveWriter:
    """Appends curve points to curves.csv and TensorBoard.

    ``resume_step`` is the env step of the checkpoint the run resumes from: the points after it
    are dropped. A fresh start (0) drops every earlier point, such as the step-0 point of a run
    killed before its first checkpoint, which the new run writes again.
    """

    def __init__(self, path: Path, resume_step: int, summary_dir: Path,
                 extra_fields: tuple[str, ...] = ()):
        self.path = path
        self.fields = layout.CURVE_FIELDS + tuple(extra_fields)  # then the domain's fields
        rows = []
        if path.exists() and resume_step > 0:
            with path.open() as handle:
                rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= resume_step]
        with path.open("w", newline="") as handle:
            writer = self._writer(handle)
            writer.writeheader()
            writer.writerows(rows)
        self.rows = rows
        self.summaries = tf.summary.create_file_writer(str(summary_dir))

    def _writer(self, handle) -> csv.DictWriter:
        # A row written before a field existed gets an empty cell.
        return csv.DictWriter(handle, self.fields, restval="", extrasaction="ignore")

    def add(self, step: int, point: dict[str, float]) -> None:
        """One point: ``point`` holds a value for every field but ``step``."""
        row = {"step": step, **{field: f"{point[field]:.6f}" for field in self.fields[1:]}}
        self.rows.append(row)
        with self.path.open("a", newline="") as handle:
            self._writer(handle).writerow(row)
        with self.summaries.as_default():
            for field in self.fields[1:]:
                tf.summary.scalar(f"curves/{field}", point[field], step=step)
        self.summaries.flush()


class Tuner:
    """One algorithm's tuning run: agent, replay, collection, training and evaluation graphs.

    Off-policy algorithms (Q, Psi, G, RL-only) collect with their collect policy into the
    replay and train on replayed episodes; on-policy ones (DAP, RLOO-KL) train once on each
    batch they have just played, in the same graph (the algorithm table's ``on_policy``)."""

    def __init__(self, pretrained, domain, options, algorithm: str, seed: int):
        self.options = options
        self.domain = domain
        self.length = domain.episode_length(options.episode_length)
        self.rng = np.random.default_rng([seed, 1])
        self.env_steps = tf.Variable(0, dtype=tf.int64, name="env_steps")
        self.algorithm = algorithms.get(algorithm)
        self.on_policy = self.algorithm.on_policy
        self.replay = None
        if self.on_policy:
            self.epsilon = None
            self.agent = self.algorithm.agent_class()(
                pretrained, self.algorithm, options, end_token=domain.end_token,
                episode_length=self.length)
            replay = {}
        else:
            self.epsilon = tf.Variable(options.epsilon_start, dtype=tf.float32, name="epsilon")
            self.agent = self.algorithm.agent_class()(
                pretrained, self.algorithm, options, epsilon=self.epsilon.read_value,
                end_token=domain.end_token)
            self.replay = EpisodeReplay(
                max(options.replay_capacity // self.length, options.batch_episodes),
                self.length, prioritized=options.replay == "prioritized",
                alpha=options.priority_alpha)
            replay = {"replay": self.replay}
        self.sampling_policy = self.agent.sampling_policy()
        self.checkpoint = tf.train.Checkpoint(
            env_steps=self.env_steps, train_step=self.agent.train_step_counter,
            **self.agent.checkpoint_objects(), **replay)
        # No AutoGraph: the loops are explicit tf.while_loops, and converting TF-Agents' code
        # called from them cost about 12 s of every tune stage's start (for any num_steps).
        self._collect = tf.function(self._collect_fn, autograph=False)
        self._train = tf.function(self._train_fn, autograph=False)
        self._collect_and_train = tf.function(self._collect_and_train_fn, autograph=False)
        self._sample = tf.function(self._sample_fn, autograph=False)

    # -- graphs ----------------------------------------------------------------------------

    def _task_reward(self, actions):
        reward = tf.numpy_function(self.domain.task_reward, [actions], tf.float32,
                                   stateful=False)
        return tf.ensure_shape(reward, actions.shape)

    def _collect_fn(self, first_tokens):
        observations, actions = collect_episodes(self.agent.collect_policy, first_tokens,
                                                 self.length)
        self.replay.add(observations, actions, self._task_reward(actions))
        self.env_steps.assign_add(tf.size(actions, out_type=tf.int64))

    def _train_fn(self, num_updates, beta):
        def update(i, loss, mean_value):
            indices, weights = self.replay.sample(self.options.batch_episodes, beta)
            loss_info = self.agent.train(self.replay.experience(indices), weights=weights)
            self.replay.update_priorities(indices, loss_info.extra.td_abs)
            return i + 1, loss_info.loss, loss_info.extra.mean_value

        _, loss, mean_value = tf.while_loop(
            lambda i, *_: i < num_updates, update,
            (tf.constant(0), tf.constant(0.0), tf.constant(0.0)))
        return loss, mean_value

    def _collect_and_train_fn(self, first_tokens):
        """On-policy: play a batch with the policy and take one gradient step on it."""
        observations, actions = collect_episodes(self.agent.collect_policy, first_tokens,
                                                 self.length)
        self.env_steps.assign_add(tf.size(actions, out_type=tf.int64))
        experience = episodes_trajectory(observations, actions, self._task_reward(actions))
        loss_info = self.agent.train(experience)
        return loss_info.loss, loss_info.extra.mean_value

    def _sample_fn(self, first_tokens):
        observations, actions = collect_episodes(self.sampling_policy, first_tokens, self.length)
        log_prior = sequence_model.log_prior_of(self.agent.reward_rnn, observations, actions)
        return actions, log_prior

    # -- steps -----------------------------------------------------------------------------

    def updates_due(self) -> int:
        """Gradient steps owed so that trained transitions = replay_ratio x env steps."""
        per_update = self.options.batch_episodes * self.length
        due = int(int(self.env_steps.numpy()) * self.options.replay_ratio // per_update)
        return max(0, due - int(self.agent.train_step_counter.numpy()))

    def first_tokens(self):
        """The priming tokens of one collection; an on-policy agent that plays each prompt k
        times (RLOO) gets each k times in a row."""
        repeat = self.agent.episodes_per_prompt
        first = self.domain.priming_tokens(self.rng, self.options.collect_episodes // repeat)
        return tf.constant(np.repeat(first, repeat, axis=0))

    def step(self) -> tuple[float, float] | None:
        """Collect one batch of episodes and train as due: (loss, mean value) of the last
        gradient step, or None when there was none."""
        if self.on_policy:
            loss, mean_value = self._collect_and_train(self.first_tokens())
            return float(loss), float(mean_value)
        self.collect()
        return self.train()

    def collect(self) -> None:
        steps = int(self.env_steps.numpy())
        self.epsilon.assign(epsilon_schedule(
            steps, self.options.epsilon_start, self.options.epsilon_final,
            self.options.exploration_steps))
        self._collect(self.first_tokens())

    def train(self) -> tuple[float, float] | None:
        updates = self.updates_due()
        if updates == 0 or int(self.replay.size.numpy()) < self.options.batch_episodes:
            return None
        progress = min(1.0, int(self.env_steps.numpy()) / self.options.num_steps)
        beta = self.options.priority_beta_start + progress * (
            1.0 - self.options.priority_beta_start)
        loss, mean_value = self._train(tf.constant(updates), tf.constant(beta, tf.float32))
        return float(loss), float(mean_value)

    def evaluate(self, episodes: int) -> dict[str, float]:
        """One curve point of ``episodes`` episodes sampled from the policy: mean r_T per
        episode, mean log p(a|s) per token and the domain's ``curve_fields``."""
        first = self.domain.priming_tokens(self.rng, episodes)
        actions, log_prior = self._sample(tf.constant(first))
        actions = actions.numpy()
        mask = self.domain.step_mask(actions)
        mean_log_prior = float((log_prior.numpy() * mask).sum() / max(1, mask.sum()))
        return {**self.domain.curve_point(actions), "mean_log_prior": mean_log_prior}


def _crossed(previous: int, now: int, every: int) -> bool:
    """Whether a multiple of ``every`` lies in (previous, now]."""
    return now // every > previous // every


def _continue_from(previous: Path, output: Path) -> None:
    """Start ``output`` from the finished run in ``previous``: its checkpoint (networks,
    optimizer, replay, step counters) and curve, which the resume below then picks up."""
    if (output / layout.CHECKPOINT_DIR).exists():
        return  # a continuation that was itself interrupted: resume it
    if not (Path(previous) / layout.CHECKPOINT_DIR / "checkpoint").is_file():
        log.info("tune: %s has no checkpoint to continue from; tuning from scratch", previous)
        return
    shutil.copytree(Path(previous) / layout.CHECKPOINT_DIR, output / layout.CHECKPOINT_DIR)
    shutil.copy(Path(previous) / layout.CURVES_FILE, output / layout.CURVES_FILE)


def tune_seed(seed: int, algorithm: str) -> int:
    """The seed of one algorithm's tuning: one per algorithm, below NumPy's bound of 2^32 (the
    config's seed times 10 plus the algorithm's index, for a seed below 2^32 / 10)."""
    return (seed * 10 + algorithms.names().index(algorithm)) % 2**32


def run(config, inputs: dict[str, Path], output: Path, variant: str,
        previous: Path | None = None) -> dict:
    """Tune ``variant`` (an algorithm, or an algorithm at a sweep point: ``psi@c=0.25``; the
    runner passes the config at that point) from ``inputs["pretrain"]`` into ``output``: open
    the run (or resume it), train to ``tune.num_steps``, export the model and the policy.

    ``previous`` (from the runner) is a finished tune artifact of the same algorithm, prior and
    settings but a smaller ``num_steps``: tuning continues from its last step, as a TF-Agents
    train loop continues from its checkpoint.

    Raises:
      NonFiniteError: the loss or Q-values became NaN/inf (the last checkpoint is kept).
    """
    output = Path(output)
    vocab = tfrecords.read_vocab(inputs["pretrain"])
    pretrained = sequence_model.load_model(inputs["pretrain"], vocab)
    domain = domains.get_domain(config.domain, config.reward, vocab)
    if domain.num_tokens != int(vocab["num_tokens"]):
        raise sequence_model.VocabularyMismatchError(
            f"the {domain.name} domain has {domain.num_tokens} tokens, the model "
            f"{vocab['num_tokens']}")
    with domain:  # closes the molecule domain's RDKit scoring processes
        algorithm = sweep.algorithm_of(variant)
        started = time.perf_counter()
        tuner, manager = _open(config, pretrained, domain, algorithm, output, previous)
        first_step = int(tuner.env_steps.numpy())
        curves = _train(tuner, manager, output, variant)
        timing = {"seconds": round(time.perf_counter() - started, 1),
                  "timed_from_step": first_step}
        return _export(tuner, curves, vocab, output, algorithm, timing)


def _open(config, pretrained, domain, algorithm: str, output: Path, previous: Path | None):
    """The tuner, at step 0 or at the last checkpoint in ``output`` (or ``previous``'s)."""
    seed = tune_seed(config.seed, algorithm)
    tf.keras.utils.set_random_seed(seed)
    tuner = Tuner(pretrained, domain, config.tune, algorithm, seed)
    if previous is not None:
        _continue_from(previous, output)
    manager = tf.train.CheckpointManager(tuner.checkpoint, str(output / layout.CHECKPOINT_DIR),
                                         max_to_keep=2)
    if manager.latest_checkpoint:
        tuner.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        log.info("tune/%s: resumed from %s at step %d", algorithm, manager.latest_checkpoint,
                 int(tuner.env_steps.numpy()))
    return tuner, manager


def _train(tuner: Tuner, manager, output: Path, variant: str) -> CurveWriter:
    """Collect, train, add curve points and checkpoint until ``num_steps``; the curves."""
    options, domain = tuner.options, tuner.domain
    start = int(tuner.env_steps.numpy())
    curves = CurveWriter(output / layout.CURVES_FILE, start, output / layout.LOGS_DIR,
                         domain.curve_fields)
    if start == 0:
        curves.add(0, tuner.evaluate(options.eval_episodes))

    shown_names = {"mean_task_reward": "r_T", "mean_log_prior": "log_p",
                   **{field: field for field in domain.curve_fields}}

    def shown_point(point) -> dict[str, float]:
        return {shown_names[k]: float(v) for k, v in point.items()
                if k in shown_names and v != ""}

    # Keras's Progbar redraws on every update, also into log files: the console's bar instead.
    progress = console.Progress(f"tune/{variant}", options.num_steps, unit="env step",
                                start=start)
    shown = shown_point(curves.rows[-1])
    progress.update(start, shown)
    steps = start
    with progress:  # the bar ends also when tuning fails
        while steps < options.num_steps:
            before = steps
            trained = tuner.step()
            steps = int(tuner.env_steps.numpy())
            if trained is not None:
                loss, mean_value = trained
                if not (math.isfinite(loss) and math.isfinite(mean_value)):
                    # mean_value: the mean Q-value, or for a sequence-level algorithm the mean of
                    # r_T / c + log p - log pi over the batch.
                    raise NonFiniteError(
                        f"tune/{variant}: the loss ({loss}) or the mean value ({mean_value}) "
                        f"is not finite at environment step {steps}; the last good checkpoint is "
                        f"kept in {output / layout.CHECKPOINT_DIR}. Lower tune.learning_rate or "
                        "raise tune.c.")
                shown["loss"] = loss
            if _crossed(before, steps, options.eval_every) or steps >= options.num_steps:
                point = tuner.evaluate(options.eval_episodes)
                curves.add(steps, point)
                shown.update(shown_point(point))
            if _crossed(before, steps, options.checkpoint_every):
                manager.save(checkpoint_number=steps)
            if tuner.epsilon is not None and kl_control.uses_epsilon(options.exploration):
                shown["epsilon"] = float(tuner.epsilon.numpy())
            progress.update(min(steps, options.num_steps), shown)
    manager.save(checkpoint_number=steps)
    return curves


def _export(tuner: Tuner, curves: CurveWriter, vocab: dict, output: Path,
            algorithm: str, timing: dict) -> dict:
    """The tuned model (float32 whatever the tuning precision, as pretrain saves its model),
    its vocabulary, the TF-Agents policy and tune.json; returns the summary.

    ``timing``: ``seconds``, the wall time of this process's tuning (networks, training, curve
    points; not the export), which covers the environment steps from ``timed_from_step`` (0
    unless the run resumed or continued a checkpoint) to the end."""
    sequence_model.save_model(
        sequence_model.with_dtype_policy(tuner.agent.policy_network, "float32"), output)
    (output / layout.VOCAB_FILE).write_text(json.dumps(vocab, indent=1) + "\n")
    tuner.agent.save_policy(output / layout.POLICY_DIR)
    summary = {
        "algorithm": algorithm,
        "env_steps": int(tuner.env_steps.numpy()),
        "train_steps": int(tuner.agent.train_step_counter.numpy()),
        **timing,
    }
    for when, row in (("final", curves.rows[-1]), ("initial", curves.rows[0])):
        summary.update({f"{when}_{field}": float(row[field]) for field in curves.fields[1:]
                        if row.get(field, "") != ""})
    (output / layout.TUNE_SUMMARY_FILE).write_text(json.dumps(summary, indent=1) + "\n")
    return summary
