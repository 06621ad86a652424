"""Typed, validated configuration: one options object per stage, loaded from YAML.

Unknown keys and bad values are errors that name the key (``pretrain.batch_size: ...``).
``--set key.sub=value`` overrides one value; the value is parsed as YAML (``--set
pretrain.lstm_units=[256,256]``).

A config is a YAML file or the name of a built-in config (:func:`builtin_configs`: the files of
the repository's configs/, installed as ``seqtutor/configs/``). ``extends: BASE`` at its top
loads BASE first (a path relative to the extending file's folder, or a built-in config's name)
and deep-merges the file onto it: mappings merge key by key, lists and scalars replace. The run
name is never inherited: it defaults to the stem of the file that is loaded.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from seqtutor import plugins, sweep as sweep_lib

DEFAULT_BEAM_ARGS = ("--runner=DirectRunner", "--direct_running_mode=multi_processing",
                     "--direct_num_workers=0")
EXTENDS_KEY = "extends"  # a config's base config (not a Config field)


class ConfigError(ValueError):
    """A configuration that does not validate; the message names every bad key."""


class Options(BaseModel):
    """Base of every options section: unknown keys are errors, assignments are validated, and
    a number must be finite (c = .inf would silently drop the task reward)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False,
                              allow_inf_nan=False)


class PretrainConfig(Options):
    """pretrain: the MLE LSTM and its optimisation (paper section 5)."""

    lstm_units: list[int] = Field(
        default_factory=lambda: [100], min_length=1,
        description="Cells per LSTM layer (paper: one layer of 100).")
    embedding_dim: int | None = Field(
        None, ge=1, description="Token embedding size; None feeds one-hot tokens (paper).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout between layers in training.")
    batch_size: int = Field(128, ge=1, description="Sequences per batch (paper: 128).")
    optimizer: Literal["adam", "adagrad", "rmsprop", "sgd"] = Field(
        "adam", description="Optimiser.")
    learning_rate: float = Field(1e-3, gt=0, description="Initial learning rate.")
    lr_decay_rate: float = Field(
        0.85, gt=0, le=1, description="Step decay factor (paper: x0.85 every 1000 steps).")
    lr_decay_steps: int = Field(1000, ge=1, description="Steps between decays.")
    min_learning_rate: float = Field(
        0.0, ge=0, description="Floor of the decayed learning rate (0: none, as the paper).")
    clip_norm: float | None = Field(5.0, gt=0, description="Gradient norm clip (paper: 5).")
    l2: float = Field(2.5e-5, ge=0, description="L2 weight regularisation (paper: 2.5e-5).")
    skip_first_losses: int = Field(
        0, ge=0, description="Ignore the losses of the first N tokens of each sequence "
        "(paper: 8; 0 trains generation from the zero state, see docs/melody.md).")
    max_steps: int = Field(20000, ge=1, description="Training step budget.")
    eval_every: int = Field(500, ge=1, description="Steps between evaluations/checkpoints.")
    eval_batches: int | None = Field(
        None, ge=1, description="Eval batches per evaluation, of a fixed random sample of "
        "the eval split drawn through shuffle_buffer (None: the whole eval split).")
    early_stopping_patience: int = Field(
        3, ge=1, description="Stop after this many evaluations without a better eval loss.")
    early_stopping_start_step: int = Field(
        0, ge=0, description="No early stop before this step (e.g. while a high learning "
        "rate keeps the eval loss flat).")
    early_stopping_min_delta: float = Field(
        0.002, ge=0, description="An eval loss must improve by this much (nats) to count.")
    shuffle_buffer: int = Field(20000, ge=1, description="tf.data shuffle buffer (records).")
    steps_per_execution: int = Field(
        50, ge=1, description="Training steps per call of the compiled training function "
        "(Keras): fewer returns to Python between steps; the progress bar and callbacks see "
        "every steps_per_execution-th step.")
    bucket_by_length: bool = Field(
        True, description="Batch training sequences of about the same length together (less "
        "padding; no effect when all have one length).")
    distribution: Literal["default", "mirrored"] = Field(
        "default", description="tf.distribute strategy (mirrored: all local GPUs).")
    mixed_precision: bool | Literal["mixed_float16", "mixed_bfloat16"] = Field(
        False, description="Keras mixed-precision policy for training: mixed_float16 (GPUs; "
        "true means this one) or mixed_bfloat16 (TPUs, and CPUs with AVX512-BF16 or AMX, where "
        "its steps are faster: docs/findings.md). The saved model is float32 either way, so "
        "tune, evaluate and generate do not depend on it.")


class TuneConfig(Options):
    """tune: KL-regularised RL from the prior: Sequence Tutor's off-policy KL-control and the
    on-policy sequence-level baselines (docs/tuning.md)."""

    algorithms: list[str] = Field(
        default_factory=lambda: list(plugins.algorithm_table()), min_length=1,
        description="Algorithms to tune, each into tune/<algorithm>/: names in the algorithm "
        "table (q, psi, g, rl_only, dap, rloo_kl and any registered one; default: all).")
    c: float = Field(0.5, gt=0, description="Weight of the prior: r = r_T / c + log p (paper: "
                     "0.5 for melodies); dap's sigma is 1 / c, rloo_kl's KL coefficient beta is "
                     "c.")
    gamma: float = Field(0.5, ge=0, le=1, description="Discount (paper melodies: 0.5) of the "
                         "off-policy algorithms; dap and rloo_kl score whole episodes, "
                         "undiscounted.")
    eta: float = Field(0.01, gt=0, le=1, description="Polyak target update rate.")
    learning_rate: float = Field(1e-3, gt=0, description="Initial Adam learning rate.")
    lr_decay_rate: float = Field(
        1.0, gt=0, le=1, description="Step decay factor of the learning rate (1: constant, the "
        "paper).")
    lr_decay_steps: int = Field(100, ge=1, description="Gradient steps between decays.")
    min_learning_rate: float = Field(
        0.0, ge=0, description="Floor of the decayed learning rate (0: none).")
    clip_norm: float | None = Field(5.0, gt=0, description="Gradient norm clip.")
    q_init: Literal["logits", "log_prior"] = Field(
        "logits", description="The Q-network's start: the pretrained logits (paper), or "
        "log_softmax(logits) + a state value v(s) starting at 0 (initial soft value 0; for "
        "long episodes with gamma near 1). G's values start equal for every token either "
        "way (0, or v(s) - log V with log_prior), so its policy p exp(G) starts at the prior.")
    n_step: int | None = Field(
        1, ge=1, description="Steps of the TD target before it bootstraps from the target "
        "network: 1 (the paper), n, or None for the whole episode. Longer targets carry an "
        "end-of-episode reward back at once instead of one step per update; see "
        "kl_control.episode_td_targets.")
    off_policy_correction: Literal["none", "retrace"] = Field(
        "none", description="For n_step > 1 or None: 'retrace' stops a multi-step target where "
        "the collect policy took a token the policy would not (Retrace, Munos et al. 2016: "
        "traces min(1, pi/mu)); 'none' follows every replayed episode to its end.")
    prior_kl_weight: float = Field(
        0.0, ge=0, description="Weight of KL(pi || p) over the whole vocabulary at every "
        "visited state, added to the TD loss (0: the paper's loss).")
    detach_value_head: bool = Field(
        False, description="With q_init log_prior: the state-value head v(s) reads the last "
        "hidden layer without training it, so fitting v(s) cannot reshape the policy's "
        "features.")
    value_head_units: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=list, description="With q_init log_prior: ReLU layers between the "
        "last hidden layer and the state value v(s) (empty: v is linear in the features).")
    value_learning_rate: float | None = Field(
        None, gt=0, description="With q_init log_prior: Adam's rate (constant) for the layers "
        "of the state-value head v(s) alone (None: learning_rate, one optimizer for all). A "
        "faster v(s) takes its error out of the TD errors that train the policy sooner.")
    episode_length: int | None = Field(
        32, ge=2, description="Steps per episode (melody: the composition's length). Molecule "
        "episodes end at EOS or at this cap; None: the vocabulary's episode_length (the "
        "longest molecule of either split plus EOS).")
    num_steps: int = Field(1_000_000, ge=1, description="Environment steps to collect.")
    exploration: Literal["epsilon_greedy", "boltzmann", "epsilon_boltzmann"] = Field(
        "epsilon_greedy", description="Collect policy: epsilon-greedy, sampling the policy "
        "(boltzmann), or a uniform token with probability epsilon else a policy sample "
        "(epsilon_boltzmann: for episodes that all start from one token, such as BOS, where "
        "greedy decoding plays one episode over and over).")
    epsilon_start: float = Field(1.0, ge=0, le=1, description="Initial epsilon.")
    epsilon_final: float = Field(0.01, ge=0, le=1, description="Epsilon after the anneal.")
    exploration_steps: int = Field(
        500_000, ge=0, description="Environment steps of linear epsilon anneal.")
    collect_episodes: int = Field(
        64, ge=1, description="Episodes played in parallel per collection.")
    batch_episodes: int = Field(32, ge=1, description="Whole episodes per gradient step.")
    replay_ratio: float = Field(
        6.4, gt=0, description="Transitions trained on per environment step (reference: a "
        "batch of 32 every 5 steps = 6.4).")
    replay_capacity: int = Field(100_000, ge=1, description="Replay size in transitions.")
    replay: Literal["uniform", "prioritized"] = Field("uniform", description="Replay sampling.")
    priority_alpha: float = Field(0.6, ge=0, description="Prioritized replay exponent.")
    priority_beta_start: float = Field(
        0.4, ge=0, le=1, description="Importance-weight exponent, annealed to 1.")
    eval_every: int = Field(100_000, ge=1, description="Environment steps between curve points.")
    eval_episodes: int = Field(100, ge=1, description="Episodes sampled per curve point.")
    checkpoint_every: int = Field(
        100_000, ge=1, description="Environment steps between checkpoints.")
    rloo_k: int = Field(
        4, ge=2, description="rloo_kl: samples per prompt (priming token), each one's baseline "
        "the mean reward of the other k - 1 (TRL's rloo_k; its default is 2). "
        "collect_episodes must be a multiple of it.")
    dap_memory_size: int = Field(
        0, ge=0, description="dap: REINVENT's experience memory, the best distinct sequences "
        "so far by task reward (0: off, the default; REINVENT's inception keeps 50).")
    dap_memory_samples: int = Field(
        10, ge=1, description="dap: memory sequences added to each batch's loss (REINVENT: "
        "10).")
    per_algorithm: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Settings in which one algorithm differs from the "
        "rest, algorithm -> {tune key: value} (dap: {collect_episodes: 64, learning_rate: "
        "0.0001}): each algorithm is tuned with its entry applied, which is also all that its "
        "fingerprint sees of this section. Not c (the axis the algorithms share), algorithms, "
        "episode_length (evaluate reads it) or a key the sweep varies.")
    mixed_precision: bool | Literal["mixed_float16", "mixed_bfloat16"] = Field(
        False, description="Keras mixed-precision policy of the Q, target and prior networks "
        "while tuning (as pretrain.mixed_precision; Q-values, the prior's log-probabilities and "
        "the TD targets stay float32). The saved model and policy are float32 either way.")

    @field_validator("algorithms")
    @classmethod
    def _known_algorithms(cls, names: list[str]) -> list[str]:
        table = plugins.algorithm_table()
        unknown = [name for name in names if name not in table]
        if unknown:
            raise ValueError(f"unknown {unknown}; choose from {list(table)}")
        return names

    @model_validator(mode="after")
    def _check(self):
        table = plugins.algorithm_table()
        for name in self.algorithms:
            if self.q_init not in table[name].starts:
                raise ValueError(f"q_init: {self.q_init} is not a start of algorithm {name} "
                                 f"(it allows {list(table[name].starts)})")
        for option in ("detach_value_head", "value_head_units", "value_learning_rate"):
            if getattr(self, option) and self.q_init != "log_prior":
                raise ValueError(f"{option} needs q_init: log_prior (the value head it shapes "
                                 "exists only there)")
        if self.epsilon_final > self.epsilon_start:
            raise ValueError("epsilon_final must not exceed epsilon_start")
        if self.dap_memory_size and self.dap_memory_samples > self.dap_memory_size:
            raise ValueError(f"dap_memory_samples ({self.dap_memory_samples}) must not exceed "
                             f"dap_memory_size ({self.dap_memory_size})")
        if "rloo_kl" in self.algorithms and self.collect_episodes % self.rloo_k:
            raise ValueError(f"collect_episodes ({self.collect_episodes}) must be a multiple of "
                             f"rloo_k ({self.rloo_k}): each prompt is played rloo_k times")
        if self.batch_episodes * (self.episode_length or 1) > self.replay_capacity:
            raise ValueError("replay_capacity must hold at least one batch of episodes")
        for name, entry in self.per_algorithm.items():
            if name not in table:
                raise ValueError(f"per_algorithm: unknown algorithm {name!r}; choose from "
                                 f"{list(table)}")
            fixed = sorted(set(entry) & set(SHARED_TUNE_KEYS))
            unknown = sorted(set(entry) - set(type(self).model_fields))
            if fixed or unknown or not entry:
                raise ValueError(
                    f"per_algorithm.{name}: " + (f"{fixed} are shared by every algorithm"
                                                 if fixed else f"{unknown} are not tune keys"
                                                 if unknown else "an empty entry"))
            self.for_algorithm(name)  # its values, and how they combine with the rest
        return self

    def for_algorithm(self, name: str) -> TuneConfig:
        """The settings ``name`` is tuned with: its ``per_algorithm`` entry applied and
        validated as the settings of ``name`` alone (raises ValueError naming the key)."""
        entry = self.per_algorithm.get(name)
        if not entry:
            return self
        try:
            return type(self).model_validate({**self.model_dump(mode="json"), **entry,
                                              "algorithms": [name], "per_algorithm": {}})
        except ValidationError as error:
            detail = _format_errors(error).removeprefix("invalid config:\n  ")
            raise ValueError(f"per_algorithm.{name}: {detail}") from None


MLE_MODEL = "mle"  # the pretrained model, evaluated beside the tuned ones
# The settings the evaluate stage reads (dotted for one value of another section): its
# fingerprint in the runner and the key of each row it scores (a rerun keeps unchanged rows).
EVALUATE_READS = ("domain", "seed", "evaluate", "reward", "tune.episode_length")
# Tune keys every algorithm of a config shares (tune.per_algorithm may not set them): the c
# axis of the sweep, frontier and report, the list itself, and what evaluate reads.
SHARED_TUNE_KEYS = ("c", "algorithms", "episode_length", "per_algorithm")


class EvaluateConfig(Options):
    """evaluate: sample every model and compute the domain's rule statistics."""

    num_samples: int = Field(100_000, ge=1, description="Sequences sampled per model.")
    models: list[str] = Field(
        default_factory=lambda: [MLE_MODEL, *plugins.algorithm_table()], min_length=1,
        description="Models to evaluate: mle and algorithm names (a missing tuned model is "
        "reported and skipped).")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature.")
    batch_size: int = Field(10_000, ge=1, description="Sequences per sampling graph call.")

    @field_validator("models")
    @classmethod
    def _known_models(cls, names: list[str]) -> list[str]:
        known = [MLE_MODEL, *plugins.algorithm_table()]
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ValueError(f"unknown {unknown}; choose from {known}")
        return names


class Config(Options):
    """A whole pipeline configuration (one YAML file). The domain's class gives the types of
    the ``prepare_data`` and ``reward`` sections (:func:`config_class`)."""

    name: str = Field("", description="Run name; the default workdir is runs/<name>/.")
    domain: str = Field("melody", description="The domain: a registered name (melody, "
                        "molecule), an import path package.module:Class, or the name of a "
                        "'seqtutor.domains' entry point.")
    seed: int = Field(0, ge=0, lt=2**32, description="Random seed of every stage.")
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    prepare_data: Options = Field(default_factory=Options)
    reward: Options = Field(default_factory=Options)
    sweep: dict[str, list[Any]] = Field(
        default_factory=dict, description="A grid of tune settings and seeds, key -> values "
        "(seed, tune.c, ...): every algorithm is tuned at every point of the grid, each into "
        "an artifact of its own (seqtutor.sweep).")

    def value(self, key: str) -> Any:
        """The JSON value of a dotted key (``tune.episode_length``, ``reward``, ``seed``)."""
        node = self
        for part in key.split("."):
            node = getattr(node, part)
        return node.model_dump(mode="json") if isinstance(node, BaseModel) else node

    def points(self, max_points: int = sys.maxsize) -> list[sweep_lib.Point]:
        """The sweep's grid (one empty point without a sweep); raises ConfigError when it
        holds more than ``max_points``."""
        try:
            return sweep_lib.grid(self.sweep, max_points)
        except sweep_lib.SweepError as error:
            raise ConfigError(str(error)) from None

    def at(self, point: sweep_lib.Point) -> Config:
        """This config at one sweep point: the point's values set, without the sweep."""
        if not point.values:
            return self
        raw = self.model_dump(mode="json")
        raw["sweep"] = {}
        try:
            return config_from_dict(raw, point.overrides())
        except ConfigError as error:
            detail = str(error).removeprefix("invalid config:\n  ")
            raise ConfigError(f"invalid config:\n  sweep point {point.name}: {detail}") from None

    def for_algorithm(self, name: str) -> Config:
        """This config as algorithm ``name`` is tuned: its ``tune.per_algorithm`` entry applied
        (raises ConfigError naming the algorithm and the key)."""
        if not self.tune.per_algorithm.get(name):
            return self
        try:
            return self.model_copy(update={"tune": self.tune.for_algorithm(name)})
        except ValueError as error:
            raise ConfigError(f"invalid config:\n  tune.{error}") from None

    def tune_variants(self, algorithms: list[str] | None = None) -> list[str]:
        """The tune stage's variants: each algorithm (the config's by default) at each point."""
        return [sweep_lib.variant(algorithm, point)
                for algorithm in (self.tune.algorithms if algorithms is None else algorithms)
                for point in self.points()]


_CONFIG_CLASSES: dict[type, type[Config]] = {}


def config_class(domain_class: type) -> type[Config]:
    """The Config subclass whose ``prepare_data`` and ``reward`` sections have the domain's
    types (its ``data_config`` and ``reward_config``)."""
    if domain_class not in _CONFIG_CLASSES:
        for attribute in ("data_config", "reward_config"):
            options = getattr(domain_class, attribute, None)
            if not (isinstance(options, type) and issubclass(options, Options)):
                raise ConfigError(f"domain class {domain_class.__name__} has no {attribute} "
                                  "(a seqtutor.config.Options subclass)")
        _CONFIG_CLASSES[domain_class] = create_model(
            f"{domain_class.__name__}Config", __base__=Config,
            prepare_data=(domain_class.data_config,
                          Field(default_factory=domain_class.data_config)),
            reward=(domain_class.reward_config, Field(default_factory=domain_class.reward_config)))
    return _CONFIG_CLASSES[domain_class]


def _format_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "<top level>"
        if item["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key")
        else:
            value = item.get("input")
            shown = "" if isinstance(value, dict) else f" (got {value!r})"
            lines.append(f"{key}: {item['msg']}{shown}")
    return "invalid config:\n  " + "\n  ".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` to (["a", "b"], parsed YAML value)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key.sub=value")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {key}: value is not valid YAML: {error}") from error
    return parts, value


def apply_overrides(raw: dict[str, Any], overrides: list) -> dict[str, Any]:
    """A copy of ``raw`` with each override set (validation happens later).

    An override is a ``key.sub=value`` string (value parsed as YAML) or a ``(key.sub, value)``
    pair (value taken as is, for values that come from code such as file paths).
    """
    raw = copy.deepcopy(raw)
    for override in overrides:
        if isinstance(override, tuple):
            parts, value = override[0].split("."), override[1]
        else:
            parts, value = parse_override(override)
        node = raw
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {'.'.join(parts)}: {'.'.join(parts[:i + 1])} "
                                  "is not a section")
            node = child
        node[parts[-1]] = value
    return raw


def config_from_dict(raw: dict[str, Any], overrides: list = ()) -> Config:
    """Validate a raw mapping (plus overrides) into a Config; raises ConfigError."""
    if not isinstance(raw, dict):
        raise ConfigError("invalid config: the top level must be a mapping")
    raw = apply_overrides(raw, list(overrides))
    domain = raw.get("domain", "melody")
    if not isinstance(domain, str):
        raise ConfigError(f"invalid config:\n  domain: expected a name, got {domain!r}")
    try:
        domain_class = plugins.domain_class(domain)
    except plugins.PluginNotFoundError as error:
        raise ConfigError(f"invalid config:\n  {error}") from None
    try:
        config = config_class(domain_class).model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_format_errors(error)) from None
    _check_sweep(config, raw)
    return config


def _check_sweep(config: Config, raw: dict[str, Any]) -> None:
    """Each sweep key is one tune reads per point, each value valid for its key (the whole
    grid is validated point by point before the tune stage runs)."""
    for key, values in config.sweep.items():
        try:
            sweep_lib.check_key(key, TuneConfig.model_fields)
            sweep_lib.check_values(key, values)
        except sweep_lib.SweepError as error:
            raise ConfigError(f"invalid config:\n  {error}") from None
        for name, entry in config.tune.per_algorithm.items():
            if key.removeprefix("tune.") in entry:
                raise ConfigError(f"invalid config:\n  sweep.{key}: tune.per_algorithm.{name} "
                                  "sets it too; sweep it, or set it per algorithm")
        given: dict[str, Any] = {}  # repr of the validated value -> the value as given
        validated = []
        for value in values:
            try:
                point = config_from_dict({**raw, "sweep": {}}, [(key, value)]).value(key)
            except ConfigError as error:
                detail = str(error).removeprefix("invalid config:\n  ")
                raise ConfigError(f"invalid config:\n  sweep.{key}: the value {value!r}: "
                                  f"{detail}") from None
            if repr(point) in given:  # 1 and 1.0 are one value of a float key
                raise ConfigError(f"invalid config:\n  sweep.{key}: {value!r} and "
                                  f"{given[repr(point)]!r} are the same value")
            given[repr(point)] = value
            validated.append(point)
        # The validated values name the points: c: [1] and c: [1.0] are one point.
        config.sweep[key] = validated


def builtin_config_dir() -> Path:
    """The folder of the built-in configs: seqtutor/configs/ in an installed package, the
    repository's configs/ in a source checkout (an editable install)."""
    here = Path(__file__).resolve().parent
    installed = here / "configs"
    if installed.is_dir() or not (here.parent / "setup.py").is_file():
        return installed
    return here.parent / "configs"


def builtin_configs() -> tuple[str, ...]:
    """The names of the built-in configs (``melody``, ``molecule``, ...), sorted."""
    return tuple(sorted(path.stem for path in builtin_config_dir().glob("*.yaml")))


def _builtin_path(name: str) -> Path | None:
    """The file of the built-in config ``name`` (with or without .yaml), or None."""
    stem = name.removesuffix(".yaml")
    if "/" in name or "\\" in name or stem not in builtin_configs():
        return None
    return builtin_config_dir() / f"{stem}.yaml"


def resolve_config(spec: str | Path) -> Path:
    """The YAML file of a config argument: an existing file (it wins), else the built-in config
    of that name; otherwise a ConfigError that lists the built-in names."""
    path = Path(spec)
    if path.is_file():
        return path
    builtin = _builtin_path(str(spec))
    if builtin is not None:
        return builtin
    raise ConfigError(f"config {str(spec)!r}: no such file, and no built-in config of that "
                      f"name (built-in configs: {', '.join(builtin_configs())})")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not a YAML text file (not UTF-8: {error.reason} at byte "
                          f"{error.start})") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: invalid config: the top level must be a mapping")
    return raw


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``overlay`` merged onto ``base`` (a new mapping): mappings merge key by key, anything
    else (lists, scalars, null) in the overlay replaces the base's value."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _base_path(spec: Any, path: Path) -> Path:
    """The file that ``extends: spec`` in the config file ``path`` names."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"{path}: {EXTENDS_KEY}: expected a config file or built-in config "
                          f"name, got {spec!r}")
    candidate = path.parent / spec
    if candidate.is_file():
        return candidate
    builtin = _builtin_path(spec)
    if builtin is not None:
        return builtin
    raise ConfigError(f"{path}: {EXTENDS_KEY}: {spec!r}: no such file ({candidate}), and no "
                      f"built-in config of that name (built-in configs: "
                      f"{', '.join(builtin_configs())})")


def load_raw(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The raw mapping of a config file with its ``extends`` chain merged in (unvalidated)."""
    path = Path(path)
    chain = (*_chain, path)
    raw = _read_yaml(path)
    if EXTENDS_KEY not in raw:
        return raw
    base_path = _base_path(raw.pop(EXTENDS_KEY), path)
    resolved = [p.resolve() for p in chain]
    if base_path.resolve() in resolved:
        cycle = chain[resolved.index(base_path.resolve()):] + (base_path,)
        raise ConfigError("configs extend each other in a cycle: "
                          + " extends ".join(str(p) for p in cycle))
    base = load_raw(base_path, chain)
    base.pop("name", None)  # the run name is the loaded file's own
    return deep_merge(base, raw)


def load_config(path: str | Path, overrides: list = ()) -> Config:
    """Load a YAML config file or a built-in config by name (:func:`resolve_config`), with its
    ``extends`` chain merged in; the run name defaults to the file's stem."""
    path = resolve_config(path)
    raw = load_raw(path)
    raw.setdefault("name", path.stem)
    return config_from_dict(raw, overrides)
