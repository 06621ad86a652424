"""Benchmark: the tune loop in float32 against a mixed-precision policy, to choose
``tune.mixed_precision`` on a machine.

Two tuners of the config's algorithm start from the same model (WORKDIR's pretrained prior when
there is one, else a fresh model of the config's size) and run the stage's own loop, collect
then train to the replay ratio, in alternating rounds in one process, so the ratio holds even
when other work shares the cores. Collection includes the task reward (RDKit for molecules),
which no policy changes. WORKDIR/prepare_data is made first when missing.

    python -m benchmarks.tune_precision --rounds 2 --collections 1 --set reward.workers=1
        [--config configs/molecule.yaml] [--workdir runs/molecule] [--policy mixed_bfloat16]
        [--algorithm psi] [--set tune.batch_episodes=64 --set tune.collect_episodes=64]

Prints (and with --output writes) a JSON object: config, algorithm, model (pretrained or
fresh), lstm_units, batch_episodes, replay_ratio, per policy ms_per_env_step (with its collect
and train parts and each round's), and speedup, train_speedup, collect_speedup (float32 /
mixed). Smoke (tests): ``--smoke`` (400 molecules, a fresh LSTM(16), 8 episodes per
collection, one round).
"""

from __future__ import annotations

import functools

from benchmarks import common
from seqtutor import domains, layout, sequence_model
from seqtutor.components import tune

SMOKE = {"config": common.SMOKE_CONFIGS["molecule"], "collections": 1, "rounds": 1}
SMOKE_OVERRIDES = [*common.SMOKE_NETWORK, ("tune.collect_episodes", 8),
                   ("tune.batch_episodes", 8), ("tune.replay_capacity", 2000)]


def _loop_seconds(tuner: tune.Tuner, collections: int) -> tuple[float, float, int]:
    """(collect seconds, train seconds, environment steps) of ``collections`` iterations."""
    collect = train = 0.0
    before = int(tuner.env_steps.numpy())
    for _ in range(collections):
        collect += common.timed(tuner.collect)[1]
        train += common.timed(tuner.train)[1]
    return collect, train, int(tuner.env_steps.numpy()) - before


def main(argv: list[str] | None = None) -> dict:
    parser = common.parser(__doc__, "configs/molecule.yaml")
    parser.add_argument("--policy", default="mixed_bfloat16",
                        choices=["mixed_bfloat16", "mixed_float16"])
    parser.add_argument("--algorithm", default="psi")
    parser.add_argument("--collections", type=int, default=2, help="per tuner and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = common.parse_args(parser, argv, SMOKE)
    with common.setup(args, smoke_overrides=SMOKE_OVERRIDES) as (config, workdir):
        _, vocab = common.read_vocab(config, workdir)
        prior = layout.stage_dir(workdir, "pretrain")
        if (prior / layout.MODEL_FILE).is_file():
            model = sequence_model.load_model(prior, vocab)
            source = "pretrained"
        else:
            model = sequence_model.build_model(int(vocab["num_tokens"]),
                                               config.pretrain.lstm_units,
                                               config.pretrain.embedding_dim)
            source = "fresh (no pretrain artifact)"
        domain = domains.get_domain(config.domain, config.reward, vocab)
        options = config.tune.model_copy(update={"num_steps": 10 ** 9})
        tuners = {policy: tune.Tuner(model, domain, options.model_copy(
                      update={"mixed_precision": policy}), args.algorithm, seed=0)
                  for policy in (False, args.policy)}
        with domain:
            for tuner in tuners.values():  # warm-up: trace collect and train, fill one batch
                while int(tuner.replay.size.numpy()) < options.batch_episodes:
                    tuner.collect()
                tuner.train()
            times = common.alternate({
                policy: functools.partial(_loop_seconds, tuner, args.collections)
                for policy, tuner in tuners.items()}, args.rounds)
    per_policy = {}
    for policy, rows in times.items():
        collect, train, steps = (sum(column) for column in zip(*rows))
        per_policy[policy or "float32"] = {
            "ms_per_env_step": round(1000 * (collect + train) / steps, 4),
            "collect_ms_per_env_step": round(1000 * collect / steps, 4),
            "train_ms_per_env_step": round(1000 * train / steps, 4),
            "rounds_ms_per_env_step": [round(1000 * (c + t) / s, 4) for c, t, s in rows]}
    full, mixed = per_policy["float32"], per_policy[args.policy]
    return common.report("tune_precision", {
        "config": args.config,
        "algorithm": args.algorithm, "model": source,
        "lstm_units": [layer.units for layer in sequence_model.StepModel(model).lstms],
        "batch_episodes": options.batch_episodes, "replay_ratio": options.replay_ratio,
        "results": per_policy,
        "speedup": round(full["ms_per_env_step"] / mixed["ms_per_env_step"], 3),
        "train_speedup": round(full["train_ms_per_env_step"] / mixed["train_ms_per_env_step"],
                               3),
        "collect_speedup": round(
            full["collect_ms_per_env_step"] / mixed["collect_ms_per_env_step"], 3),
    }, args)


if __name__ == "__main__":
    main()
