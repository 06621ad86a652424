"""Molecule samples in the report: a grid of RDKit drawings with their SMILES."""

from __future__ import annotations

import html

from seqtutor.figures import png_data_uri
from seqtutor.domains.molecule import chemistry


def grid_png(smiles: list[str], per_row: int = 4) -> str | None:
    """A PNG data URI of the valid molecules among ``smiles``, or None if none is valid."""
    from rdkit.Chem import Draw

    pairs = [(mol, s) for s in smiles if (mol := chemistry.parse(s)) is not None]
    if not pairs:
        return None
    image = Draw.MolsToGridImage([m for m, _ in pairs], molsPerRow=per_row,
                                 subImgSize=(220, 180), legends=[s[:40] for _, s in pairs],
                                 returnPNG=True)
    data = image if isinstance(image, bytes) else image.data
    return png_data_uri(data)


def samples_html(name: str, smiles: list[str], count: int = 12) -> str:
    """The first ``count`` valid molecules of a model, drawn, plus the first strings as text."""
    valid = [s for s in smiles if chemistry.parse(s) is not None][:count]
    image = grid_png(valid)
    parts = []
    if image:
        parts.append(f"<img alt='molecules of {html.escape(name)}' src='{image}'>")
    else:
        parts.append("<p>No valid molecule among the samples.</p>")
    shown = "\n".join(html.escape(s) for s in smiles[:count])
    parts.append(f"<details><summary>first {min(count, len(smiles))} strings</summary>"
                 f"<pre>{shown}</pre></details>")
    return "".join(parts)
