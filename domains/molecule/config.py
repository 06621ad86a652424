"""The molecule domain's options: the prepare_data section and the reward section (r_T)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from seqtutor.config import DEFAULT_BEAM_ARGS, Options


class MoleculeDataConfig(Options):
    """prepare_data for molecules: SMILES files and filters (docs/molecule.md)."""

    input: list[str] = Field(
        default_factory=list,
        description="SMILES files (.smi: first field per line; .csv/.csv.gz: smiles_column), "
        "directories (searched recursively) or globs.")
    builtin_corpus: Literal["moses", "none"] = Field(
        "moses", description="Built-in corpus: the MOSES training set (1,584,663 ZINC "
        "molecules in the molsets wheel), or none.")
    sample_size: int | None = Field(
        None, ge=1, description="Keep about this many input lines, chosen by a hash of the "
        "line (deterministic); None keeps all.")
    smiles_column: str = Field("SMILES", description="The SMILES column of CSV inputs.")
    max_tokens: int = Field(
        100, ge=1, description="Drop molecules longer than this many tokens.")
    allowed_tokens: list[str] | None = Field(
        None, description="Drop molecules with a token outside this list (None: any token).")
    episode_length_cap: int = Field(
        120, ge=2, description="Longest episode (tokens incl. EOS) the vocabulary allows.")
    eval_fraction: float = Field(
        0.1, gt=0, lt=1, description="Fraction of molecules (by hash) in the eval split.")
    num_shards: int = Field(4, ge=1, le=10000, description="TFRecord shards per split.")
    beam_args: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BEAM_ARGS),
        description="Beam pipeline options; any runner (Dataflow, Flink, Spark) by options.")


class MoleculeRewardConfig(Options):
    """Molecule task reward r_T (docs/molecule.md section 2), shared by tune and evaluate."""

    valid: float = Field(10.0, description="Reward for a valid (RDKit-sanitised) molecule.")
    logp: float = Field(0.5, description="Weight of Crippen logP.")
    qed: float = Field(10.0, description="Weight of QED (0..1).")
    sa: float = Field(1.0, description="Weight of the SA score (1 easy .. 10 hard), "
                      "subtracted.")
    ring: float = Field(1.0, ge=0, description="Weight of the ring penalty -(largest ring - 6).")
    too_short: float = Field(
        10.0, ge=0, description="Penalty when shorter than the shortest training molecule.")
    carbon_run: float = Field(
        10.0, ge=0, description="Penalty when a run of C is longer than any in training.")
    unfinished: float = Field(
        10.0, ge=0, description="Penalty when the episode cap cuts the sequence before EOS "
        "(invalid in any case; without it, running to the cap is a safe way around the "
        "too-short penalty).")
    workers: int | None = Field(
        None, ge=1, description="Processes scoring molecules with RDKit (None: every core).")
