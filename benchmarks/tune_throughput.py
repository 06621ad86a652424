"""Benchmark: tuning throughput against pretraining throughput, same network and batch size.

Measured in one process: (1) supervised MLE steps of the model (Keras fit) on batches of
``batch_episodes`` sequences of ``episode_length`` tokens; (2) the tuner's loop (collect with the
epsilon-greedy policy, task reward, replay, whole-episode Q/target/prior passes, Adam, Polyak)
with the config's tune settings. Prints environment steps per second, trained tokens per
second for both, and their ratio (issue 4 target: >= 0.6); also the start-up cost of a tune stage
(building the agent, tracing the collect, train and sampling graphs), paid once per stage
whatever its num_steps.

    python -m benchmarks.tune_throughput [--config configs/melody.yaml] [--algorithm psi]
"""

from __future__ import annotations

import argparse
import json
import time

from benchmarks import machine
from seqtutor import config as config_lib
from seqtutor import domains
from benchmarks.pretrain_melody import supervised_tokens_per_second
from seqtutor import sequence_model
from seqtutor.components import tune



def tuning_throughput(config, algorithm: str, env_steps: int) -> dict:
    options = config.tune.model_copy(update={"num_steps": 10 ** 9})
    model = sequence_model.build_model(38, config.pretrain.lstm_units,
                                       config.pretrain.embedding_dim)
    started = time.perf_counter()
    tuner = tune.Tuner(model, domains.get_domain(config.domain, config.reward), options,
                       algorithm, seed=0)
    for _ in range(3):  # warm-up: trace the graphs, fill the replay past one batch
        tuner.collect()
        tuner.train()
    tuner.evaluate(8)
    startup_seconds = time.perf_counter() - started
    start_env, start_train = int(tuner.env_steps.numpy()), int(
        tuner.agent.train_step_counter.numpy())
    collect_seconds = train_seconds = 0.0
    started = time.perf_counter()
    while int(tuner.env_steps.numpy()) - start_env < env_steps:
        t0 = time.perf_counter()
        tuner.collect()
        t1 = time.perf_counter()
        tuner.train()
        t2 = time.perf_counter()
        collect_seconds += t1 - t0
        train_seconds += t2 - t1
    elapsed = time.perf_counter() - started
    collected = int(tuner.env_steps.numpy()) - start_env
    trained = (int(tuner.agent.train_step_counter.numpy()) - start_train) \
        * options.batch_episodes * options.episode_length
    return {"env_steps_per_second": collected / elapsed,
            "trained_tokens_per_second": trained / elapsed,
            "seconds": elapsed, "collect_share": collect_seconds / elapsed,
            "train_share": train_seconds / elapsed, "startup_seconds": startup_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/melody.yaml")
    parser.add_argument("--algorithm", default="psi")
    parser.add_argument("--env-steps", type=int, default=200_000)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    config = config_lib.load_config(args.config, args.overrides)
    tuning = tuning_throughput(config, args.algorithm, args.env_steps)
    supervised = supervised_tokens_per_second(
        config.pretrain, config.tune.batch_episodes, config.tune.episode_length,
        seconds=max(10.0, tuning["seconds"] / 4))
    result = {
        "benchmark": "tune_throughput",
        "machine": machine(),
        "algorithm": args.algorithm,
        "network": f"LSTM{config.pretrain.lstm_units}",
        "batch": f"{config.tune.batch_episodes} episodes x {config.tune.episode_length} tokens",
        "replay_ratio": config.tune.replay_ratio,
        "tuning": {k: round(v, 3) for k, v in tuning.items()},
        "pretraining_tokens_per_second": round(supervised),
        "ratio_tuning_to_pretraining": round(
            tuning["trained_tokens_per_second"] / supervised, 3),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
