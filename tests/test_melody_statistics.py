"""Rule statistics (docs/melody.md section 4) on hand-written melodies, and the vectorised
statistics equal to a plain step-by-step loop over the reference rules."""

import numpy as np
import pytest

from seqtutor.domains.melody import rules, rules_reference as ref, statistics

C4, D4, E4, F4, G4, CS4, REST = 14, 16, 18, 19, 21, 15, 1

# A: C4 (held) D4 (held) E4 (held) F4 G4 - in key, starts on the tonic, one 5-pitch motif
#    at the last step, unique highest and lowest notes.
SCALE = [C4, 0, D4, 0, E4, 0, F4, G4]
# B: C#4 struck seven times, then a rest: 7 notes out of key, the 6th and 7th strikes repeat
#    excessively, no unique extremum.
STUCK = [CS4] * 7 + [REST]


def test_statistics_of_hand_written_melodies():
    stats = statistics.rule_statistics(np.array([SCALE, STUCK]))
    assert stats["repeated_notes"] == 2 / 16
    assert stats["notes_not_in_key"] == 7 / 16
    assert stats["starts_with_tonic"] == 0.5
    assert stats["unique_max_note"] == 0.5 and stats["unique_min_note"] == 0.5
    assert stats["notes_in_motif"] == 1 / 16
    assert stats["notes_in_repeated_motif"] == 0
    assert np.isnan(stats["leaps_resolved"])  # no leap at all
    assert np.isnan(stats["mean_log_prior"])  # no log-probabilities given
    assert set(stats) == set(statistics.STATISTIC_KEYS)


def test_reward_weights_change_the_mean_task_reward_only():
    from seqtutor.domains.melody.config import MelodyRewardConfig
    from seqtutor.domains.melody.domain import MelodyDomain

    tokens = np.array([SCALE, STUCK])
    plain = statistics.rule_statistics(tokens)
    domain = MelodyDomain(MelodyRewardConfig(weights={"tonic": 2.0}))
    weighted = domain.statistics(tokens, None)
    # Weight 2 pays the tonic terms twice: r_T grows by their sum.
    tonic = rules.reward_terms(rules.detect(tokens))["tonic"].sum()
    assert tonic > 0
    assert weighted["mean_task_reward"] == pytest.approx(plain["mean_task_reward"] + tonic / 2)
    assert domain.task_reward(tokens).sum() == pytest.approx(
        2 * plain["mean_task_reward"] + tonic, rel=1e-6)
    for key in set(plain) - {"mean_task_reward", "leaps_resolved", "mean_log_prior"}:
        assert weighted[key] == plain[key], key
    assert domain.metrics_extras() == {"name_binding": "data", "reward_weights": {"tonic": 2.0}}


def test_autocorrelation_of_a_stuck_note():
    # x = 15 x7, 1: mean 13.25, population variance 21.4375; lag-1 products: six of
    # 1.75^2 and one of 1.75 x -12.25, sum -3.0625 -> rho1 = -3.0625 / 8 / 21.4375 = -1/56.
    assert statistics.autocorrelations(np.array([STUCK]), 1)[0] == pytest.approx(-1 / 56)
    assert np.isnan(statistics.autocorrelations(np.array([[C4] * 8]), 1)[0])


def test_leaps_resolved_fraction():
    resolved = [C4, 26, 23, G4, E4, D4, C4, 0]   # up an octave, stepped back down to C4
    doubled = [C4, G4, 28, 0, 0, 0, 0, 0]        # two leaps up in a row
    stats = statistics.rule_statistics(np.array([resolved, doubled]))
    assert stats["leaps_resolved"] == 0.5


def test_interval_counts_count_in_key_thirds():
    from seqtutor.domains.melody import rules

    counts = statistics.interval_counts(rules.detect(np.array([[C4, E4, G4, C4, REST]])))
    assert counts["in_key_thirds"] == 1  # C4 -> E4
    assert counts["thirds"] == 2         # C4 -> E4 (in key) and E4 -> G4 (3 semitones)
    assert counts["fifths"] == 1 and counts["in_key_fifths"] == 1  # G4 -> C4 is down a fifth
    assert counts["rests"] == 1


def _loop_statistics(tokens, binding):
    """The same statistics from the step-at-a-time reference rules, one melody at a time."""
    repeated = out_of_key = motif = repeated_motif = resolved = doubled = 0
    unique_max = unique_min = tonic = 0
    rhos = {1: [], 2: [], 3: []}
    rewards = []
    for melody in tokens.tolist():
        terms = ref.composition_terms(melody, binding)
        repeated += sum(t.repetition != 0 for t in terms)
        out_of_key += sum(t.key != 0 for t in terms)
        motif += sum(t.motif != 0 for t in terms)
        repeated_motif += sum(t.repeated_motif != 0 for t in terms)
        resolved += sum(t.leap_outcome == ref.RESOLVED for t in terms)
        doubled += sum(t.leap_outcome == ref.DOUBLED for t in terms)
        unique_max += melody.count(max(melody)) == 1
        pitches = [t for t in melody if t >= 2]
        unique_min += bool(pitches) and pitches.count(min(pitches)) == 1
        tonic += melody[0] == C4
        rewards.append(sum(t.total for t in terms))
        for lag in rhos:
            rho = ref.autocorrelation(melody, lag)
            if rho is not None:
                rhos[lag].append(rho)
    n, steps = len(tokens), tokens.size
    return {"repeated_notes": repeated / steps, "notes_not_in_key": out_of_key / steps,
            "notes_in_motif": motif / steps, "notes_in_repeated_motif": repeated_motif / steps,
            "leaps_resolved": resolved / (resolved + doubled), "unique_max_note": unique_max / n,
            "unique_min_note": unique_min / n, "starts_with_tonic": tonic / n,
            "mean_task_reward": float(np.mean(rewards)),
            **{f"autocorr_lag{k}": float(np.mean(v)) for k, v in rhos.items()}}


@pytest.mark.parametrize("binding", ["data", "reference"])
def test_vectorised_statistics_equal_a_plain_loop(binding):
    rng = np.random.default_rng(3)
    probs = np.full(38, 0.5 / 36)
    probs[0], probs[1] = 0.35, 0.15
    tokens = rng.choice(38, size=(150, 32), p=probs)
    tokens[:50] = rng.choice([0, 1, C4, G4, 26, 9, 2], size=(50, 32))
    vectorised = statistics.rule_statistics(tokens, binding=binding)
    for key, value in _loop_statistics(tokens, binding).items():
        assert vectorised[key] == pytest.approx(value, abs=1e-9), key


def test_repeated_motif_and_autocorrelation_lags_by_hand():
    # C E G + 5 holds, twice: the second window (steps 8..15) repeats the first, so step 15 is
    # in a repeated motif (1 of 16 steps). Steps 7 and 15 end motif windows, and so do steps
    # 8..14 (each trailing window still holds C, E and G): 9 of 16 steps are in a motif.
    motif = [C4, E4, G4, 0, 0, 0, 0, 0]
    stats = statistics.rule_statistics(np.array([motif * 2]))
    assert stats["notes_in_repeated_motif"] == 1 / 16
    assert stats["notes_in_motif"] == 9 / 16
    # Period-8 sequence: lag-k autocorrelation from the definition, written out.
    x = np.array(motif * 2, dtype=float)
    c = x - x.mean()
    for lag in (2, 3):
        expected = np.sum(c[:-lag] * c[lag:]) / 16 / x.var()
        assert stats[f"autocorr_lag{lag}"] == pytest.approx(expected)
