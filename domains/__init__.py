"""Domains: everything the pipeline knows about one kind of sequence, behind one protocol.

A domain is a class derived from :class:`Domain`, built as ``Domain(reward_config, vocab,
data_dir)`` (the validated ``reward`` section, the dataset's vocab.json, the prepare_data
directory or None). It declares:

- ``data_config`` and ``reward_config``: its option types (``seqtutor.config.Options``
  subclasses) for the config's ``prepare_data`` and ``reward`` sections;
- its data preparation, run by the one Beam job (``data_prep/sequence_job.py``) with the
  validated prepare_data options: ``list_inputs(options)`` (what the reader reads, listed in the
  driver before Beam starts; by default the files of ``options.input`` whose names end in
  ``input_suffixes``), ``corpus_reader(options)`` (a Beam PTransform from those inputs to
  ``seqtutor.corpus.CorpusSequence`` elements, or ``(source, DroppedInput)`` for an input
  counted as dropped; ``seqtutor.readers.ReadSequences`` makes one from a plain function),
  ``vocabulary(options, summary)`` (vocab.json, at least ``domain`` and ``num_tokens``, from the
  job's corpus summary: ``tokens``, ``min_length``, ``max_length`` and the ``train_maxima``),
  and where the defaults do not fit: ``encode(vocab, tokens)`` (token strings to ids),
  ``records(options, ids)`` (a sequence cut into ``(start, piece)`` records),
  ``train_maxima(tokens)``, ``input_stats(options, inputs)`` (stats.json's extra figures) and
  ``dataset_description``;
- ``name``, ``num_tokens``, ``end_token`` (None: fixed-length episodes), ``statistic_keys``,
  ``statistic_info`` (key -> ``seqtutor.statistic.Statistic``: label, unit, which way is better;
  an undeclared key is shown as a plain, unranked value), ``paper_table`` (``{"source": ...,
  "columns": [...], "rows": {key: values}}``, may be empty), ``details_key``, ``details_unit``
  and ``details_row_units`` (the unit of the details table's rows, and of any row that differs)
  and ``sample_suffix``;
- for tuning: ``episode_length(configured)``, ``priming_tokens(rng, count)`` (the input before
  the first action), ``step_mask(actions)`` (the steps inside each episode),
  ``task_reward(actions [B, T]) -> [B, T]`` and, for the curves, ``curve_fields`` and
  ``curve_point(actions)``;
- for evaluation: ``evaluate(actions, log_prior) -> (statistics, details)``,
  ``data_episodes(records, length, limit)``, ``write_samples(stem, actions)``,
  ``export(out, model, actions)`` (``seqtutor generate``) and ``samples_html(name, actions)``
  (the report);
- ``metrics_extras()``: settings that metrics.json records beside the statistics;
- ``close()`` (and ``with domain:``), which releases what it holds.

The registry :data:`DOMAINS` names the built-in domains; a config may also name a domain by
import path (``domain: mypackage.module:MyDomain``) or by a ``seqtutor.domains`` entry point
(see ``seqtutor.plugins``), so a new domain needs no edit of this package.
"""

from __future__ import annotations

from seqtutor import corpus, plugins, statistic

# name -> class, or "module:Class" (imported when first used, so that one domain's
# dependencies do not load for another).
DOMAINS: dict[str, type | str] = {
    "melody": "seqtutor.domains.melody.domain:MelodyDomain",
    "molecule": "seqtutor.domains.molecule.domain:MoleculeDomain",
}


class Domain:
    """Base of every domain: the protocol's defaults, and a context manager whose ``close``
    releases the domain's resources (none unless a domain overrides it)."""

    # The statistics of each tuning-curve point that the domain adds to the mean r_T.
    curve_fields: tuple[str, ...] = ()
    statistic_info: dict = {}
    paper_table: dict = {}
    details_unit: str = statistic.VALUE
    details_row_units: dict[str, str] = {}
    input_suffixes: tuple[str, ...] = ()
    dataset_description: str = ""

    # Data preparation: the Beam job calls these with the prepare_data options (see above).

    @classmethod
    def list_inputs(cls, options) -> list:
        """The files of ``options.input`` (directories searched for ``input_suffixes``)."""
        return corpus.list_input_files(options.input, cls.input_suffixes)

    @classmethod
    def corpus_reader(cls, options):
        raise NotImplementedError(f"the {cls.__name__} domain has no corpus_reader")

    @classmethod
    def vocabulary(cls, options, summary: dict) -> dict:
        raise NotImplementedError(f"the {cls.__name__} domain has no vocabulary")

    @staticmethod
    def encode(vocab: dict, tokens) -> list[int]:
        """A sequence's token ids (the reader gives ids already, by default)."""
        return [int(token) for token in tokens]

    @staticmethod
    def records(options, ids) -> list[tuple[int, list[int]]]:
        """The records of one sequence as (start step, ids): the whole of it, by default."""
        return [(0, ids)]

    @staticmethod
    def train_maxima(tokens) -> dict[str, int]:
        """Figures of one sequence whose maximum over the training split the corpus summary
        (and so the vocabulary) holds under the same name (none by default)."""
        return {}

    @classmethod
    def input_stats(cls, options, inputs: list) -> dict:
        """stats.json's figures about the inputs besides their count (none by default)."""
        return {}

    def metrics_extras(self) -> dict:
        """Settings recorded in metrics.json beside the statistics (none by default)."""
        return {}

    def curve_point(self, actions) -> dict[str, float]:
        """Statistics of episodes sampled from the policy: ``mean_task_reward`` (r_T summed
        over each episode, averaged) and the ``curve_fields``."""
        return {"mean_task_reward": float(self.task_reward(actions).sum(axis=1).mean())}

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def register_domain(name: str, domain_class: type | str) -> None:
    """Register a domain class (or its ``module:Class`` path) under ``name``."""
    if name in DOMAINS:
        raise ValueError(f"domain {name!r} is already registered")
    DOMAINS[name] = domain_class


def get_domain(name: str, reward_config, vocab: dict | None = None, data_dir=None) -> Domain:
    """The domain object for ``name`` with its reward options, the dataset's vocabulary and
    (for statistics against the training data, such as novelty) the dataset directory."""
    return plugins.domain_class(name)(reward_config, vocab, data_dir)
