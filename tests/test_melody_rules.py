"""Music-theory reward (docs/melody.md section 2): every term on hand-written melodies, the
reference implementation's bugs (which we do not reproduce), and the vectorised detectors equal
to the step-at-a-time reference."""

import numpy as np
import pytest

from seqtutor.domains.melody import rules, rules_reference as ref

L = 32
HOLD, REST = 0, 1  # data encoding
C4, D4, E4, F4, G4, A4, B4, C5, E5, G5 = 14, 16, 18, 19, 21, 23, 25, 26, 30, 33


def _terms_at(composition, a, binding, length):
    state = ref.LeapState()
    for t in range(len(composition)):
        ref.step_terms(composition[:t], composition[t], state, length, binding)
    return ref.step_terms(list(composition), a, state, length, binding)


def vectorised_at(composition, a, binding="data", length=L):
    """The vectorised terms at the same step (padded with holds up to ``length``)."""
    tokens = list(composition) + [a]
    tokens += [HOLD] * (length - len(tokens))
    terms = rules.reward_terms(rules.detect(np.array([tokens]), binding))
    return {name: values[0, len(composition)] for name, values in terms.items()}


def check(composition, a, name, expected, binding="data"):
    assert getattr(_terms_at(list(composition), a, binding, L), name) == pytest.approx(expected)
    assert vectorised_at(composition, a, binding)[name] == pytest.approx(expected)


def test_key_penalty():
    check([C4], 15, "key", -1.0)  # C#4 is not in C major
    check([C4], E4, "key", 0.0)


def test_tonic_at_the_start_and_end():
    check([], C4, "tonic", 3.0)                 # beat 0
    check([D4] * 28, C4, "tonic", 3.0)          # beat L-4
    check([D4] * 29, HOLD, "tonic", 3.0)        # beat L-3: a hold
    check([D4] * 29, REST, "tonic", 0.0)        #   a rest does not count at L-3
    check([D4] * 30, REST, "tonic", 3.0)        # beats > L-3: hold or rest
    check([D4] * 5, C4, "tonic", 0.0)


def test_excessive_repetition_of_notes_and_holds():
    check([C4] * 5, C4, "repetition", -100.0)   # the 6th identical note in a row
    check([C4] * 4, C4, "repetition", 0.0)
    # A note held 6 extra steps: C4 + 5 holds, then a 6th hold fires (data binding).
    check([C4] + [HOLD] * 5, HOLD, "repetition", -100.0)
    check([C4] + [HOLD] * 4, HOLD, "repetition", 0.0)
    # Re-struck notes with holds between: needs more than 6 earlier copies.
    check([C4, HOLD] * 7, C4, "repetition", -100.0)
    check([C4, HOLD] * 6, C4, "repetition", 0.0)
    # Two rests in a row after a rest already: NOTE_OFF with count > 1.
    check([C4, REST, REST], REST, "repetition", -100.0)
    check([C4, REST], REST, "repetition", 0.0)


def test_reference_name_binding_reproduces_the_papers_hold_bug():
    """The reference binds NOTE_OFF to token 0, so the 3rd consecutive hold 'repeats'."""
    melody = [C4, HOLD, HOLD]
    check(melody, HOLD, "repetition", 0.0, binding="data")
    check(melody, HOLD, "repetition", -100.0, binding="reference")


def test_autocorrelation_penalty():
    # x = C4 hold C4 hold C4: mean 8.4, population variance 47.04;
    # rho1 = -0.8, rho2 = 133.28 / 235.2 = 0.5667, rho3 = -0.4 -> all above 0.15.
    expected = -3.0 * (0.8 + 133.28 / 235.2 + 0.4)
    check([C4, HOLD, C4, HOLD], C4, "autocorrelation", expected)
    check([C4, C4, C4], C4, "autocorrelation", 0.0)  # constant: undefined, skipped


def test_motif_and_repeated_motif():
    # C D E F G and three holds: 5 distinct pitches in the last 8 tokens -> 3 + 0.3 * 2.
    check([C4, D4, E4, F4, G4, HOLD, HOLD], HOLD, "motif", 3.6)
    check([C4, D4, HOLD, HOLD, HOLD, HOLD, HOLD], HOLD, "motif", 0.0)  # only 2 pitches
    motif = [C4, E4, G4, HOLD, HOLD, HOLD, HOLD, HOLD]
    composition = motif + motif[:-1]
    check(composition, HOLD, "motif", 3.0)
    check(composition, HOLD, "repeated_motif", 4.0)  # 4 + 1 * (3 - 3)
    # Overlapping the window itself does not count as "earlier".
    check(motif[:-1], HOLD, "repeated_motif", 0.0)


@pytest.mark.parametrize("composition,a,expected", [
    ([C4], G4, 5 * 0.1),          # IN_KEY_FIFTH from C
    ([C4], E4, 5 * 0.15),         # IN_KEY_THIRD from C
    ([D4], 20, 5 * 0.09),         # a major third up from D: plain 4
    ([C4], HOLD, 5 * 0.3),        # HOLD_AFTER_C_OR_G
    ([D4], HOLD, 5 * 0.075),      # HOLD
    ([G4], REST, 5 * 0.15),       # REST_AFTER_C_OR_G
    ([D4, HOLD], REST, 5 * 0.05),  # REST; prev is the last pitch, D
    ([C4], B4, 5 * -0.3),         # a major seventh
    ([C4], 27, 5 * -1.0),         # more than an octave
    ([C4], C5, 0.0),              # an octave
    ([], C4, 0.0),                # no earlier pitch
])
def test_interval_rewards(composition, a, expected):
    check(composition, a, "interval", expected)


def test_leap_resolution_state_machine():
    check([C4, C5, A4, G4, F4, E4, D4], C4, "leap", 5.0)   # up an octave, stepped back to C4
    check([C4, G4], 28, "leap", -5.0)                      # two leaps up in a row: doubled
    check([C4, C5] + [HOLD] * 7, C4, "leap", 5.0)          # leap back after more than 6 steps
    check([C4, C5, HOLD], C4, "leap", 0.0)                 #   ... but not this soon
    check([C4, D4], E4, "leap", 0.0)


def test_unique_extrema_at_the_last_step():
    body = [C4, D4, E4, G4, E4, D4] + [HOLD] * 25
    assert len(body) == L - 1
    check(body, C4, "extrema", 3.0)    # G4 highest once; C4 now the lowest twice
    check(body, 9, "extrema", 6.0)     # G3 below: the lowest once too
    check(body[:-1], C4, "extrema", 0.0)  # not the last step


def test_vectorised_detectors_equal_the_reference_on_random_melodies():
    rng = np.random.default_rng(1)
    probs = np.full(38, 0.5 / 36)
    probs[HOLD], probs[REST] = 0.35, 0.15
    tokens = rng.choice(38, size=(120, L), p=probs)
    tokens[:40] = rng.choice([HOLD, REST, C4, G4, C5, 9, 2], size=(40, L))  # repeats, leaps
    for binding in ("data", "reference"):
        vectorised = rules.reward_terms(rules.detect(tokens, binding))
        for b in range(len(tokens)):
            for t, terms in enumerate(ref.composition_terms(tokens[b], binding)):
                for name, values in vectorised.items():
                    assert values[b, t] == pytest.approx(getattr(terms, name), abs=1e-9), (
                        binding, name, b, t)


def test_task_reward_is_the_sum_of_the_terms():
    tokens = np.array([[C4, HOLD, E4, HOLD, G4, HOLD, C5] + [HOLD] * 25])
    expected = [ref.composition_terms(tokens[0])[t].total for t in range(L)]
    np.testing.assert_allclose(rules.task_reward(tokens)[0], expected)


def test_weights_multiply_their_terms_and_leave_the_others():
    tokens = np.array([[C4, HOLD, E4, HOLD, G4, HOLD, C5] + [HOLD] * 25])
    plain = rules.reward_terms(rules.detect(tokens))
    weighted = rules.reward_terms(rules.detect(tokens), {"tonic": 4.0, "key": 0.0})
    assert plain["tonic"][0, 0] == ref.TONIC_REWARD  # the first note is the tonic
    np.testing.assert_allclose(weighted["tonic"], 4.0 * plain["tonic"])
    for name in set(rules.REWARD_TERMS) - {"tonic", "key"}:
        np.testing.assert_array_equal(weighted[name], plain[name])
    np.testing.assert_allclose(
        rules.task_reward(tokens, weights={"tonic": 4.0}) - rules.task_reward(tokens),
        3.0 * plain["tonic"])
    assert tuple(plain) == rules.REWARD_TERMS


def test_bad_shape_and_binding_are_errors():
    with pytest.raises(ValueError, match="batch, length"):
        rules.detect(np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match="name binding"):
        rules.detect(np.zeros((1, 5), dtype=int), binding="magenta")
