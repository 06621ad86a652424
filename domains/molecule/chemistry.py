"""RDKit chemistry of the molecule domain: parsing, the property scores, and scoring many
molecules across processes (docs/molecule.md section 2).

No TensorFlow here: worker processes import only this module, RDKit and numpy.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import multiprocessing
import os
from pathlib import Path
from typing import Sequence

import numpy as np

_sascorer = None


def sa_scorer_dir() -> Path:
    """RDKit's Contrib SA_Score folder (sascorer.py, fpscores.pkl.gz, data/zim.100.txt)."""
    from rdkit import RDConfig

    return Path(RDConfig.RDContribDir) / "SA_Score"


def sascorer():
    """RDKit's Contrib ``sascorer`` module (Ertl & Schuffenhauer 2009), loaded once."""
    global _sascorer
    if _sascorer is None:
        path = sa_scorer_dir() / "sascorer.py"
        if not path.is_file():
            raise FileNotFoundError(f"RDKit's SA scorer is missing: {path}")
        spec = importlib.util.spec_from_file_location("sascorer", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.readFragmentScores()
        _sascorer = module
    return _sascorer


def parse(smiles: str):
    """A sanitised RDKit molecule, or None (RDKit's error log is silenced)."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    if not smiles:
        return None
    return Chem.MolFromSmiles(smiles)


def canonical(smiles: str) -> str | None:
    """RDKit's canonical isomeric SMILES, or None when it does not parse."""
    from rdkit import Chem

    mol = parse(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


INVALID_REASONS = ("empty", "syntax", "kekulize", "valence", "other")


def invalid_reason(smiles: str) -> str:
    """Why RDKit rejects a string, one of INVALID_REASONS: 'syntax' when it does not even
    parse unsanitised (an unclosed ring or branch, an unknown atom), else the first problem
    sanitisation finds ('kekulize': an aromatic ring RDKit cannot kekulise; 'valence': an
    atom over its valence)."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    if not smiles:
        return "empty"
    mol = Chem.MolFromSmiles(smiles, sanitize=False)
    if mol is None:
        return "syntax"
    problems = [problem.GetType() for problem in Chem.DetectChemistryProblems(mol)]
    if any("Kekulize" in kind for kind in problems):
        return "kekulize"
    if any("Valence" in kind for kind in problems):
        return "valence"
    return "other"


def largest_ring(mol) -> int:
    """Atoms in the molecule's largest ring (0 without rings)."""
    return max((len(ring) for ring in mol.GetRingInfo().AtomRings()), default=0)


def ring_penalty(largest: int) -> float:
    """-(largest ring size - 6) above 6 atoms, else 0 (the paper's ring penalty)."""
    return -float(max(0, largest - 6))


@dataclasses.dataclass(frozen=True)
class Scores:
    """The chemistry of a batch of strings; property arrays are NaN where invalid."""

    valid: np.ndarray       # bool
    logp: np.ndarray
    qed: np.ndarray
    sa: np.ndarray
    largest_ring: np.ndarray
    lengths: np.ndarray     # tokens per string
    carbon_runs: np.ndarray  # longest run of aliphatic C tokens per string
    errors: int             # strings whose scoring raised (scored invalid)
    canonical: list         # canonical SMILES (None where invalid or not asked for)

    @property
    def ring_penalty(self) -> np.ndarray:
        return -np.maximum(0.0, self.largest_ring - 6.0)


def score_one(smiles: str, with_canonical: bool = True) -> tuple:
    """(valid, logP, QED, SA, largest ring, tokens, carbon run, raised, canonical SMILES) of
    one string. A molecule whose scoring raises is scored as invalid and flagged; it never
    propagates."""
    from rdkit import Chem
    from rdkit.Chem import QED, Crippen

    from seqtutor.domains.molecule import tokens

    pieces = tokens.tokenize(smiles)
    shape = (len(pieces), tokens.longest_carbon_run(pieces))
    nan = math.nan
    try:
        mol = parse(smiles)
        if mol is None:
            return (False, nan, nan, nan, nan, *shape, False, None)
        return (True, Crippen.MolLogP(mol), QED.qed(mol), sascorer().calculateScore(mol),
                float(largest_ring(mol)), *shape, False,
                Chem.MolToSmiles(mol) if with_canonical else None)
    except Exception:  # noqa: BLE001 - RDKit raises many types on odd input; count, go on
        return (False, nan, nan, nan, nan, *shape, True, None)


def _score_chunk(smiles: Sequence[str], with_canonical: bool = True) -> list[tuple]:
    return [score_one(s, with_canonical) for s in smiles]


def _collect(rows: list[tuple]) -> Scores:
    if not rows:
        empty = np.zeros(0)
        return Scores(empty.astype(bool), empty, empty, empty, empty, empty.astype(int),
                      empty.astype(int), 0, [])
    columns = list(zip(*rows))
    return Scores(np.array(columns[0], bool), *(np.array(c, float) for c in columns[1:5]),
                  np.array(columns[5], int), np.array(columns[6], int),
                  errors=int(sum(columns[7])), canonical=list(columns[8]))


def _init_worker():
    sascorer()  # load the fragment scores once per process


class MoleculeScorer:
    """Scores strings in batches across ``workers`` processes (RDKit is the CPU bottleneck of
    molecule tuning and evaluation). The pool starts on first use with the ``spawn`` method:
    forking a process that runs TensorFlow threads can deadlock. Use as a context manager or
    call :meth:`close`.
    """

    def __init__(self, workers: int | None = None, chunk_size: int = 500):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.chunk_size = chunk_size
        self._pool = None

    def score(self, smiles: Sequence[str], with_canonical: bool = True) -> Scores:
        """Scores of every string; ``with_canonical`` also returns canonical SMILES (for
        uniqueness and novelty; the reward does not need them)."""
        smiles = list(smiles)
        if self.workers == 1 or len(smiles) <= self.chunk_size:
            return _collect(_score_chunk(smiles, with_canonical))
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = context.Pool(self.workers, initializer=_init_worker)
        size = max(1, min(self.chunk_size, math.ceil(len(smiles) / self.workers)))
        chunks = [smiles[i:i + size] for i in range(0, len(smiles), size)]
        rows = [row for part in self._pool.starmap(
            _score_chunk, [(chunk, with_canonical) for chunk in chunks]) for row in part]
        return _collect(rows)

    def close(self):
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if self._pool is not None:
                self._pool.terminate()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def morgan_fingerprints(smiles: Sequence[str]):
    """Morgan fingerprints (radius 2, 1024 bits) of valid SMILES, for IntDiv1."""
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    return [generator.GetFingerprint(mol) for mol in map(parse, smiles) if mol is not None]


def internal_diversity(smiles: Sequence[str]) -> float:
    """IntDiv1 = 1 - mean pairwise Tanimoto similarity over all ordered pairs (MOSES)."""
    from rdkit import DataStructs

    fingerprints = morgan_fingerprints(smiles)
    if not fingerprints:
        return math.nan
    total = 0.0
    for fp in fingerprints:
        total += sum(DataStructs.BulkTanimotoSimilarity(fp, fingerprints))
    return 1.0 - total / len(fingerprints) ** 2
