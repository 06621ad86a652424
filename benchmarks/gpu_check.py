"""Benchmark: the GPU check, for a machine with a GPU.

1. Both domains' smoke configs end to end (``seqtutor run``'s stages, in this process; Psi the
   one algorithm tuned), each pretrained model then loaded and run once in this process: the
   LSTM's weights and its outputs must be on the GPU (this shows TensorFlow uses the GPU for
   the network, not that no op of a stage fell back to the CPU).
2. On the default melody and molecule networks (fresh weights, the configs' batch sizes and
   precision policies): pretraining steps per second (Keras fit on random tokens of the
   training length), tuning environment steps per second (the tune stage's loop, Psi), and the
   evaluation's sampling of ``--samples`` sequences with the domain's statistics of them (for
   molecules, RDKit scoring alone, its process pool's start included, of the same number of
   MOSES molecules: a fresh network's samples are mostly invalid, so scoring them would time
   the wrong thing; novelty and diversity are left out).

    python -m benchmarks.gpu_check [--output gpu_check.json] [--samples 100000]
        [--env-steps 100000] [--seconds 20]

Sized to finish within about five minutes on a GPU machine. Without a GPU it stops with an
error unless ``--allow-cpu`` is given. Prints (and with --output writes) a JSON object:
gpus, per smoke config its seconds and placement, and per domain pretrain_steps_per_second,
tune_env_steps_per_second, sampling_seconds, statistics_seconds and evaluation_seconds.
Smoke (tests, on CPU): ``--smoke`` (tiny sizes, CPU allowed).
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import common

SMOKE = {"samples": 200, "env_steps": 256, "seconds": 0.2, "allow_cpu": True}
# The smoke configs with one algorithm (Psi): every stage's code on the device, in minutes.
CHECK_RUN = [("tune.algorithms", ["psi"]), ("evaluate.models", ["mle", "psi"])]
# --smoke: cut further (the test suite runs the smoke configs whole elsewhere).
TINY_RUN = [*CHECK_RUN, *common.SMOKE_NETWORK, ("pretrain.max_steps", 20),
            ("pretrain.eval_every", 10), ("tune.num_steps", 4096),
            ("tune.exploration_steps", 0), ("tune.eval_every", 2048),
            ("tune.checkpoint_every", 2048), ("tune.eval_episodes", 32),
            ("evaluate.num_samples", 64)]
DEFAULT_CONFIGS = {"melody": "melody", "molecule": "molecule"}


class NoGpuError(RuntimeError):
    pass


def placement(model) -> dict:
    """Where the LSTM's kernel lives and where one forward pass's output was computed."""
    import tensorflow as tf

    lstm = model.get_layer("lstm_0")
    output = model(tf.zeros([2, 4], tf.int32), training=False)
    return {"lstm_kernel": lstm.cell.kernel.device, "forward_output": output.device}


def smoke_pipeline(domain: str, workdir: Path, on_gpu: bool, tiny: bool) -> dict:
    """The domain's smoke config with :data:`CHECK_RUN` (``tiny``: :data:`TINY_RUN`), every
    stage, in ``workdir``; where its prior runs."""
    from seqtutor import config as config_lib
    from seqtutor import layout, sequence_model
    from seqtutor.pipeline import runner

    overrides = [*common.smoke_data_overrides(domain, workdir), *(TINY_RUN if tiny else CHECK_RUN)]
    config = config_lib.load_config(common.SMOKE_CONFIGS[domain], overrides)
    _, seconds = common.timed(runner.run_pipeline, config, workdir)
    devices = placement(sequence_model.load_model(layout.stage_dir(workdir, "pretrain")))
    if on_gpu and not all("GPU" in device for device in devices.values()):
        raise NoGpuError(f"{domain} smoke: the LSTM ran off the GPU: {devices}")
    return {"seconds": round(seconds, 1), "placement": devices}


def pretrain_steps_per_second(config, vocab_size: int, length: int, seconds: float) -> float:
    """Keras-fit steps per second of the config's network, batch and policy."""
    import tensorflow as tf

    from seqtutor import sequence_model

    options = config.pretrain
    model = common.mle_model(vocab_size, options,  # as the stage compiles it
                             policy=sequence_model.precision_policy(options.mixed_precision),
                             steps_per_execution=options.steps_per_execution)
    tokens = np.random.default_rng(0).integers(0, vocab_size, (options.batch_size * 8, length + 1))
    dataset = tf.data.Dataset.from_tensor_slices((tokens[:, :-1], tokens[:, 1:]))
    dataset = dataset.batch(options.batch_size).repeat().prefetch(tf.data.AUTOTUNE)
    steps = options.steps_per_execution
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)  # tracing
    while True:
        _, elapsed = common.timed(model.fit, dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        if elapsed >= seconds or steps >= 100_000:
            return steps / elapsed
        # Enough steps for ``seconds`` next time (a whole number of calls), not 4x blindly.
        calls = math.ceil(steps * 1.1 * seconds / elapsed / options.steps_per_execution)
        steps = max(steps * 2, calls * options.steps_per_execution)


def tune_env_steps_per_second(config, pretrained, domain, env_steps: int) -> float:
    """Environment steps per second of the tune stage's loop (Psi), after its warm-up."""
    from seqtutor.components import tune

    options = config.tune.model_copy(update={"num_steps": 10 ** 9})
    tuner = tune.Tuner(pretrained, domain, options, "psi", seed=0)
    for _ in range(2):  # tracing, and a replay past one batch
        tuner.collect()
        tuner.train()
    start = int(tuner.env_steps.numpy())
    started = time.perf_counter()
    while int(tuner.env_steps.numpy()) - start < env_steps:
        tuner.collect()
        tuner.train()
    return (int(tuner.env_steps.numpy()) - start) / (time.perf_counter() - started)


def default_model_figures(name: str, smoke_workdir: Path, args) -> dict:
    """The figures of the default ``name`` config's network, with the smoke run's vocabulary
    (the networks' cost does not depend on it beyond its size)."""
    from seqtutor import config as config_lib
    from seqtutor import domains, layout, sequence_model, tfrecords

    config = config_lib.load_config(DEFAULT_CONFIGS[name])
    if args.smoke:
        config = config_lib.config_from_dict(config.model_dump(mode="json"),
                                             common.SMOKE_NETWORK)
    data = layout.stage_dir(smoke_workdir, "prepare_data")
    vocab = tfrecords.read_vocab(data)
    vocab_size = int(vocab["num_tokens"])
    domain = domains.get_domain(name, config.reward, vocab, data)
    length = domain.episode_length(config.tune.episode_length)
    model = sequence_model.build_model(vocab_size, config.pretrain.lstm_units,
                                       config.pretrain.embedding_dim)
    figures = {"network": f"LSTM{config.pretrain.lstm_units}",
               "pretrain_steps_per_second": round(pretrain_steps_per_second(
                   config, vocab_size, length, args.seconds), 2),
               "tune_env_steps_per_second": round(tune_env_steps_per_second(
                   config, model, domain, args.env_steps))}
    sampler = sequence_model.PolicySampler(model)
    first = domain.priming_tokens(np.random.default_rng(0), args.samples)
    batch = config.evaluate.batch_size
    end = domain.end_token  # as evaluate samples (an untrained network seldom ends early)
    sampler.sample(first[:min(batch, args.samples)], length, batch_size=batch,
                   end_token=end)  # tracing
    (actions, log_prior), sampling = common.timed(sampler.sample, first, length,
                                                  batch_size=batch, end_token=end)
    try:
        if name == "molecule":  # score real molecules: see the module's docstring
            from seqtutor.domains.molecule import chemistry

            smiles = common.corpus_molecules(args.samples)
            with chemistry.MoleculeScorer(workers=config.reward.workers) as scorer:
                _, statistics = common.timed(scorer.score, smiles)
        else:
            _, statistics = common.timed(domain.evaluate, actions, log_prior)
    finally:
        domain.close()
    figures.update({"samples": args.samples, "sampling_seconds": round(sampling, 2),
                    "statistics_seconds": round(statistics, 2),
                    "evaluation_seconds": round(sampling + statistics, 2)})
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = common.parser(__doc__, "configs/melody.yaml")
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--env-steps", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="time pretraining steps over at least this long")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="run without a GPU (the placement is then not checked)")
    args = common.parse_args(parser, argv, SMOKE)
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not args.allow_cpu:
        sys.exit("gpu_check: TensorFlow sees no GPU (tf.config.list_physical_devices('GPU') "
                 "is empty); check the driver and the CUDA wheels, or pass --allow-cpu")
    result = {"gpus": [gpu.name for gpu in gpus], "smoke_runs": {}, "defaults": {}}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as root:
        for domain in ("melody", "molecule"):
            workdir = Path(root) / domain
            try:
                result["smoke_runs"][domain] = smoke_pipeline(
                    domain, workdir, on_gpu=bool(gpus), tiny=args.smoke)
            except NoGpuError as error:
                sys.exit(f"gpu_check: {error}")
            result["defaults"][domain] = default_model_figures(domain, workdir, args)
    return common.report("gpu_check", result, args)


if __name__ == "__main__":
    main()
