"""Benchmark: tuning throughput against pretraining throughput, same network and batch size.

Measured in one process: (1) the tuner's loop (collect with the epsilon-greedy policy, task
reward, replay, whole-episode Q/target/prior passes, Adam, Polyak) with the config's tune
settings on a fresh melody model; (2) supervised MLE steps of the same network (Keras fit) on
batches of ``batch_episodes`` sequences of ``episode_length`` tokens. Target (docs/figures.md): a ratio
of trained tokens per second of at least 0.6. Also the start-up cost of a tune stage (building
the agent, tracing the collect, train and sampling graphs), paid once whatever its num_steps.

    python -m benchmarks.tune_throughput --env-steps 100000 [--algorithm psi]

Prints (and with --output writes) a JSON object: algorithm, network, batch, replay_ratio,
tuning (env_steps_per_second, trained_tokens_per_second, seconds, collect_share, train_share,
startup_seconds), pretraining_tokens_per_second and ratio_tuning_to_pretraining. Smoke
(tests): ``--smoke`` (the smoke config's LSTM(32), 16 episodes per collection, 2,048 steps).
"""

from __future__ import annotations

import time

from benchmarks import common
from benchmarks.pretrain_melody import supervised_tokens_per_second
from seqtutor import domains
from seqtutor import sequence_model
from seqtutor.components import tune

SMOKE = {"config": common.SMOKE_CONFIGS["melody"], "env_steps": 1024, "seconds": 0.2}
SMOKE_OVERRIDES = [("tune.collect_episodes", 16), ("tune.batch_episodes", 8)]


def tuning_throughput(config, algorithm: str, env_steps: int) -> dict:
    options = config.tune.model_copy(update={"num_steps": 10 ** 9})
    model = sequence_model.build_model(38, config.pretrain.lstm_units,
                                       config.pretrain.embedding_dim)

    def start() -> tune.Tuner:
        tuner = tune.Tuner(model, domains.get_domain(config.domain, config.reward), options,
                           algorithm, seed=0)
        for _ in range(3):  # warm-up: trace the graphs, fill the replay past one batch
            tuner.collect()
            tuner.train()
        tuner.evaluate(8)
        return tuner

    tuner, startup_seconds = common.timed(start)
    start_env, start_train = int(tuner.env_steps.numpy()), int(
        tuner.agent.train_step_counter.numpy())
    collect_seconds = train_seconds = 0.0
    started = time.perf_counter()
    while int(tuner.env_steps.numpy()) - start_env < env_steps:
        collect_seconds += common.timed(tuner.collect)[1]
        train_seconds += common.timed(tuner.train)[1]
    elapsed = time.perf_counter() - started
    collected = int(tuner.env_steps.numpy()) - start_env
    trained = (int(tuner.agent.train_step_counter.numpy()) - start_train) \
        * options.batch_episodes * options.episode_length
    return {"env_steps_per_second": collected / elapsed,
            "trained_tokens_per_second": trained / elapsed,
            "seconds": elapsed, "collect_share": collect_seconds / elapsed,
            "train_share": train_seconds / elapsed, "startup_seconds": startup_seconds}


def main(argv: list[str] | None = None) -> dict:
    parser = common.parser(__doc__, "configs/melody.yaml")
    parser.add_argument("--algorithm", default="psi")
    parser.add_argument("--env-steps", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="measure pretraining over at least this long (and a quarter of "
                             "the tuning time)")
    args = common.parse_args(parser, argv, SMOKE)
    with common.setup(args, smoke_overrides=SMOKE_OVERRIDES) as (config, _):
        tuning = tuning_throughput(config, args.algorithm, args.env_steps)
        supervised = supervised_tokens_per_second(
            config.pretrain, config.tune.batch_episodes, config.tune.episode_length,
            seconds=max(args.seconds, tuning["seconds"] / 4))
    return common.report("tune_throughput", {
        "algorithm": args.algorithm,
        "network": f"LSTM{config.pretrain.lstm_units}",
        "batch": f"{config.tune.batch_episodes} episodes x {config.tune.episode_length} tokens",
        "replay_ratio": config.tune.replay_ratio,
        "tuning": {k: round(v, 3) for k, v in tuning.items()},
        "pretraining_tokens_per_second": round(supervised),
        "ratio_tuning_to_pretraining": round(
            tuning["trained_tokens_per_second"] / supervised, 3),
    }, args)


if __name__ == "__main__":
    main()
