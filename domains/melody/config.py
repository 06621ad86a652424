"""The melody domain's options: the prepare_data section and the reward section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from seqtutor.config import DEFAULT_BEAM_ARGS, Options
from seqtutor.domains.melody.rules import REWARD_TERMS
from seqtutor.domains.melody.sources import MUSIC21_FOLK_COLLECTIONS


class MelodyDataConfig(Options):
    """prepare_data for melodies: corpus, extraction and output settings."""

    input: list[str] = Field(
        default_factory=list,
        description="MIDI files, directories (searched recursively) or globs.")
    builtin_corpus: Literal["music21_folk", "none"] = Field(
        "music21_folk", description="Built-in corpus: music21's ABC folk tunes, or none.")
    builtin_collections: list[str] = Field(
        default_factory=lambda: list(MUSIC21_FOLK_COLLECTIONS),
        description="music21 corpus folders to read for music21_folk.")
    max_builtin_tunes: int | None = Field(
        None, ge=1, description="Read at most this many built-in tunes (in a fixed order).")
    sequence_length: int = Field(
        64, ge=8, le=4096, description="Steps per training record (16 steps = one 4/4 bar).")
    min_bars: int = Field(4, ge=1, description="Drop melodies shorter than this many bars.")
    min_unique_pitches: int = Field(
        5, ge=1, description="Drop melodies with fewer distinct pitches.")
    gap_bars: float = Field(
        1.0, gt=0, description="A silence of this many bars ends a melody.")
    melody_track: Literal["highest", "all"] = Field(
        "highest", description="Multi-track MIDI: the highest-pitched track, or every track.")
    eval_fraction: float = Field(
        0.1, gt=0, lt=1, description="Fraction of sources (by hash) in the eval split.")
    num_shards: int = Field(4, ge=1, le=10000, description="TFRecord shards per split.")
    beam_args: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BEAM_ARGS),
        description="Beam pipeline options; any runner (Dataflow, Flink, Spark) by options.")

    @model_validator(mode="after")
    def _check_collections(self):
        unknown = sorted(set(self.builtin_collections) - set(MUSIC21_FOLK_COLLECTIONS))
        if unknown:
            raise ValueError(f"builtin_collections: unknown {unknown}; "
                             f"choose from {list(MUSIC21_FOLK_COLLECTIONS)}")
        return self


class MelodyRewardConfig(Options):
    """Melody reward options, shared by tune and evaluate."""

    name_binding: Literal["data", "reference"] = Field(
        "data", description="Melody: which tokens the rules' NO_EVENT/NOTE_OFF mean. 'data' "
        "(0 hold, 1 rest) or 'reference' (swapped, as magenta's rl_tuner; reproduces Table 1).")
    weights: dict[str, float] = Field(
        default_factory=dict,
        description="Melody: multipliers of r_T's terms by name (" + ", ".join(REWARD_TERMS)
        + "); a term not named keeps the paper's values (weight 1). Scaling every term by k is "
        "the same as dividing c by k; one term's weight moves the trade-off between rules.")

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, weights):
        unknown = sorted(set(weights) - set(REWARD_TERMS))
        if unknown:
            raise ValueError(f"unknown reward terms {unknown}; choose from {list(REWARD_TERMS)}")
        return weights
