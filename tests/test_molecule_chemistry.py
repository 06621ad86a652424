"""SMILES tokens, RDKit scores and the molecule task reward on hand-picked molecules."""

import gzip
import math

import numpy as np
import pytest

from seqtutor.domains.molecule import reader
from seqtutor.domains.molecule import chemistry, reward, tokens
from seqtutor.domains.molecule.config import MoleculeRewardConfig

VOCAB = tokens.vocabulary(list("CcNnO()=1") + ["Cl"], min_length=5, max_length=40,
                          max_carbon_run=6)


def moses_sample(count=3000):
    with gzip.open(reader.moses_train_file(), "rt") as handle:
        next(handle)  # header
        return [next(handle).strip() for _ in range(count)]


def test_sa_scorer_matches_rdkit_reference_scores():
    lines = (chemistry.sa_scorer_dir() / "data" / "zim.100.txt").read_text().splitlines()[1:]
    rows = [line.split("\t") for line in lines if line.strip()]
    assert len(rows) == 100
    scorer = chemistry.sascorer()
    for smiles, name, expected in rows:
        got = scorer.calculateScore(chemistry.parse(smiles))
        assert abs(got - float(expected)) < 1e-3, (name, got, expected)


def test_tokenizer_round_trips_a_corpus_sample_and_keeps_multi_character_tokens():
    for smiles in moses_sample():
        assert "".join(tokens.tokenize(smiles)) == smiles
    assert tokens.tokenize("C[C@@H](Cl)c1ccc[nH]1Br") == [
        "C", "[C@@H]", "(", "Cl", ")", "c", "1", "c", "c", "c", "[nH]", "1", "Br"]
    assert tokens.tokenize("C%12CC%12") == ["C", "%12", "C", "C", "%12"]
    assert tokens.longest_carbon_run(tokens.tokenize("CCCc1ccccc1CCCCCl")) == 4


def test_codec_encodes_and_decodes_up_to_the_first_eos():
    codec = tokens.Codec(VOCAB)
    ids = codec.encode("CCO")
    assert ids[0] == tokens.BOS_ID and ids[-1] == tokens.EOS_ID
    actions = ids[1:] + [tokens.PAD_ID, codec.token_to_id["C"]]
    assert codec.decode(actions) == ("CCO", True)
    assert codec.decode(ids[1:-1]) == ("CCO", False)  # no EOS: cut by the cap
    with pytest.raises(KeyError):
        codec.encode("CBr")  # Br is not in this vocabulary


def rewards_of(strings, finished=None, weights=None):
    weights = weights or MoleculeRewardConfig()
    finished = np.ones(len(strings), bool) if finished is None else np.asarray(finished)
    scores = chemistry.MoleculeScorer(workers=1).score(strings)
    return reward.task_rewards(finished, scores, weights, VOCAB), scores


def test_each_reward_term_on_hand_picked_molecules():
    from rdkit.Chem import QED, Crippen

    w = MoleculeRewardConfig()
    ring8, chain, atom, invalid = "C1CCCOCCC1", "CCCCCCCCCCO", "C", "C1CC(C"
    got, scores = rewards_of([ring8, chain, atom, invalid])
    assert scores.valid.tolist() == [True, True, True, False]
    assert scores.largest_ring[0] == 8 and scores.ring_penalty[0] == -2.0
    assert scores.ring_penalty[1] == 0.0

    def chemistry_reward(smiles, sa):
        mol = chemistry.parse(smiles)
        return w.valid + w.logp * Crippen.MolLogP(mol) + w.qed * QED.qed(mol) - w.sa * sa

    # 8-membered ring: the ring penalty -(8 - 6), weighted.
    assert got[0] == pytest.approx(chemistry_reward(ring8, scores.sa[0]) - 2 * w.ring, abs=1e-4)
    # 10 carbons in a row: longer than the training data's 6 -> the carbon-run penalty.
    assert got[1] == pytest.approx(chemistry_reward(chain, scores.sa[1]) - w.carbon_run,
                                   abs=1e-4)
    # One atom: valid, but shorter than the shortest training molecule (5 tokens).
    assert got[2] == pytest.approx(chemistry_reward(atom, scores.sa[2]) - w.too_short,
                                   abs=1e-4)
    # Invalid: no chemistry term at all, only length penalties (6 tokens: none).
    assert got[3] == 0.0 and math.isnan(scores.qed[3])


def test_a_sequence_cut_by_the_cap_is_invalid_and_penalised():
    got, scores = rewards_of(["CCO", "CCOCCN"], finished=[False, True])
    assert scores.valid.all()  # RDKit parses both ...
    assert got[0] == -MoleculeRewardConfig().unfinished - MoleculeRewardConfig().too_short
    assert got[1] > 5  # ... but only the finished one scores as a molecule


def test_scoring_errors_are_counted_as_invalid(monkeypatch):
    def broken(mol):
        raise RuntimeError("boom")

    monkeypatch.setattr(chemistry.sascorer(), "calculateScore", broken)
    scores = chemistry.MoleculeScorer(workers=1).score(["CCO", "not smiles"])
    assert scores.valid.tolist() == [False, False] and scores.errors == 1


def test_process_pool_scores_equal_the_in_process_scores():
    strings = moses_sample(600) + ["xx", ""]
    with chemistry.MoleculeScorer(workers=2, chunk_size=100) as pool:
        pooled = pool.score(strings)
    local = chemistry.MoleculeScorer(workers=1).score(strings)
    assert pooled.valid.tolist() == local.valid.tolist()
    np.testing.assert_allclose(pooled.qed, local.qed, equal_nan=True)
    np.testing.assert_allclose(pooled.sa, local.sa, equal_nan=True)


def test_statistics_by_hand():
    canonical = ["CCO", "CCO", "c1ccccc1", "CCN"]
    assert reward.unique_at(canonical, 1000) == 0.75
    assert reward.unique_at(canonical, 2) == 0.5
    assert math.isnan(reward.unique_at([], 10))
    # IntDiv1 over identical molecules is 0; over different ones it is positive.
    assert chemistry.internal_diversity(["CCO", "CCO"]) == pytest.approx(0.0)
    assert 0 < chemistry.internal_diversity(["CCO", "c1ccccc1"]) <= 1
    actions = np.array([[5, 6, 2, 0], [5, 5, 5, 5]])
    assert reward.episode_mask(actions, eos=2).tolist() == [[True, True, True, False],
                                                            [True, True, True, True]]
    assert reward.last_step(actions, eos=2).tolist() == [2, 3]


def test_invalid_reasons_on_hand_picked_strings():
    assert [chemistry.invalid_reason(s) for s in
            ["", "C1CC", "CC(C", "c1cccc1", "C(C)(C)(C)(C)C"]] == [
        "empty", "syntax", "syntax", "kekulize", "valence"]


def test_evaluation_outcomes_split_the_invalid_strings_by_reason():
    from seqtutor.domains.molecule.domain import MoleculeDomain

    domain = MoleculeDomain(MoleculeRewardConfig(workers=1), {**VOCAB, "domain": "molecule"})
    codec = tokens.Codec(VOCAB)
    strings = ["CCO", "c1ccccc1", "C1CC", "c1cccc1", "C(C)(C)(C)(C)C", ""]
    episodes = [codec.encode(s)[1:] for s in strings] + [codec.encode("CCCCCC")[1:-1]]
    length = max(map(len, episodes))
    actions = np.array([e + [tokens.PAD_ID] * (length - len(e)) for e in episodes])
    stats, outcomes = domain.evaluate(actions, np.zeros(actions.shape, np.float32))
    domain.close()
    n = len(episodes)
    assert outcomes["valid"] == stats["valid"] == pytest.approx(2 / n)
    assert outcomes["cut_by_episode_cap"] == pytest.approx(1 / n)  # "CCCCCC" without EOS
    assert {reason: outcomes[f"invalid_{reason}"] * n
            for reason in chemistry.INVALID_REASONS} == pytest.approx(
        {"empty": 1, "syntax": 1, "kekulize": 1, "valence": 1, "other": 0})
    assert sum(outcomes[f"invalid_{r}"] for r in chemistry.INVALID_REASONS) == pytest.approx(
        outcomes["invalid_smiles"])
