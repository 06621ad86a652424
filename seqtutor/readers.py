"""Beam building blocks for a domain's corpus reader (the protocol: ``seqtutor.domains``).

A corpus reader is a Beam PTransform from the inputs that the domain's ``list_inputs`` names
(file paths, or objects with a ``source`` attribute) to :class:`~seqtutor.corpus.CorpusSequence`
elements, or ``(source, DroppedInput)`` pairs for inputs that yield nothing (counted by reason).
:class:`ReadSequences` makes one from a plain function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import apache_beam as beam

from seqtutor.corpus import CorpusSequence, DroppedInput


def source_of(item) -> str:
    """An input's name in stats.json: its ``source`` attribute, or the path itself."""
    return str(getattr(item, "source", item))


class ReadSequences(beam.PTransform):
    """A corpus reader made of a plain function ``read(input)`` that yields CorpusSequence
    elements (or ``(source, tokens)`` pairs), and ``(source, DroppedInput)`` for a part of the
    input that gives nothing; a DroppedInput it raises is counted against the input."""

    def __init__(self, read: Callable[[object], Iterable[tuple]]):
        super().__init__()
        self._read = read

    def expand(self, inputs):
        return inputs | "Read" >> beam.FlatMap(self._safe_read)

    def _safe_read(self, item):
        try:
            for element in self._read(item):
                if isinstance(element[1], DroppedInput):
                    yield element
                else:
                    sequence = CorpusSequence(*element)
                    if hasattr(sequence.tokens, "tolist"):  # a numpy array: plain numbers
                        sequence = sequence._replace(tokens=sequence.tokens.tolist())
                    yield sequence
        except DroppedInput as error:
            yield source_of(item), error
