"""The dataset format shared by every domain: TFRecord shards of ``tf.train.Example``.

Each record has an int64 list feature ``tokens`` (the sequence), a bytes feature ``source``
(where it came from) and an int64 ``start_step`` (its offset in the source). Shards are named
``<domain>-<split>.tfrecord-SSSSS-of-NNNNN`` and the directory carries TFDS metadata, so it loads
with plain tf.data (:func:`load_split`) and with ``tfds.builder_from_directory``.

Use in another project::

    from seqtutor.tfrecords import load_split
    ds = load_split("runs/melody/prepare_data", "train")   # yields {"tokens", "source", ...}

or, without this package::

    import tensorflow_datasets as tfds
    ds = tfds.builder_from_directory("runs/melody/prepare_data").as_dataset(split="train")
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from seqtutor import artifacts, layout
from seqtutor.corpus import EmptyCorpusError

SPLITS = ("train", "eval")


def shard_prefix(data_dir: str | Path, domain: str, split: str) -> str:
    """The path prefix a split's shards are written under."""
    return str(Path(data_dir) / f"{domain}-{split}.tfrecord")


def shard_name(prefix: str, index: int, num_shards: int) -> str:
    """Shard ``index`` of ``num_shards`` under ``prefix`` (Beam's and TFDS's naming)."""
    return f"{prefix}-{index:05d}-of-{num_shards:05d}"


def record_key(record: bytes, seed: int | None = None) -> bytes:
    """A stable, well-mixed key of a serialised record: its shard and its place in the shard
    come from it (TFDS orders its examples by a hash too), so the same records make
    byte-identical shards on every run, runner and worker count. With ``seed``, the hash is
    salted by it (:func:`records_in_random_order`; blake2b pads a salt with zeros, so seed 0
    gives the unseeded key)."""
    salt = b"" if seed is None else int(seed).to_bytes(16, "little", signed=True)
    return hashlib.blake2b(record, digest_size=16, salt=salt).digest()


def serialize_example(tokens, source: str, start_step: int) -> bytes:
    """One record as a serialised ``tf.train.Example``."""
    import tensorflow as tf

    feature = {
        "tokens": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(t) for t in tokens])),
        "source": tf.train.Feature(bytes_list=tf.train.BytesList(value=[source.encode()])),
        "start_step": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(start_step)])),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)  # the same bytes on every run


def tfds_features():
    """The TFDS FeaturesDict matching :func:`serialize_example`."""
    import numpy as np
    import tensorflow_datasets as tfds

    return tfds.features.FeaturesDict({
        "tokens": tfds.features.Tensor(shape=(None,), dtype=np.int64),
        "source": tfds.features.Text(),
        "start_step": tfds.features.Scalar(dtype=np.int64),
    })


def write_tfds_metadata(data_dir: str | Path, description: str) -> None:
    """Write dataset_info.json and features.json so ``tfds.builder_from_directory`` loads it."""
    import tensorflow_datasets as tfds

    tfds.folder_dataset.write_metadata(data_dir=str(data_dir), features=tfds_features(),
                                       description=description, check_data=True)


def shard_files(data_dir: str | Path, split: str) -> list[str]:
    """The TFRecord shard paths of one split, sorted."""
    return sorted(str(p) for p in Path(data_dir).glob(f"*-{split}.tfrecord-*-of-*"))


def _feature_spec() -> dict:
    """How tf.io parses a record of :func:`serialize_example`."""
    import tensorflow as tf

    return {"tokens": tf.io.RaggedFeature(tf.int64),
            "source": tf.io.FixedLenFeature([], tf.string),
            "start_step": tf.io.FixedLenFeature([], tf.int64)}


def load_split(data_dir: str | Path, split: str, *, deterministic: bool = True):
    """A ``tf.data.Dataset`` of parsed records (dicts of ``tokens``, ``source``, ``start_step``).

    Args:
      data_dir: a prepare_data artifact directory.
      split: "train" or "eval".
      deterministic: read shards in a fixed order (False interleaves them for speed).

    Raises:
      FileNotFoundError: the directory holds no shard of that split.
    """
    import tensorflow as tf

    files = shard_files(data_dir, split)
    if not files:
        raise FileNotFoundError(f"no {split!r} TFRecord shards in {data_dir}")
    spec = _feature_spec()
    dataset = tf.data.Dataset.from_tensor_slices(files)
    dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)),
                                 num_parallel_calls=tf.data.AUTOTUNE,
                                 deterministic=deterministic)
    return dataset.map(lambda record: tf.io.parse_single_example(record, spec),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)


def records_in_random_order(data_dir: str | Path, split: str, seed: int):
    """Every record of ``split``, parsed as :func:`load_split` parses it, in a uniform random
    order that ``seed`` fixes: the order of each record's seeded :func:`record_key`.

    The first N are a fair sample of the split whatever order the shards hold (a corpus's file
    order has structure: MOSES's drifts) and however many shards there are; the same records
    and seed give the same order. Reads the split's serialised records into memory (the MOSES
    eval split: 158,261 records, about 16 MB) and parses them as they are consumed.

    Raises:
      FileNotFoundError: the directory holds no shard of that split.
    """
    import tensorflow as tf

    files = shard_files(data_dir, split)
    if not files:
        raise FileNotFoundError(f"no {split!r} TFRecord shards in {data_dir}")
    records = sorted(tf.data.TFRecordDataset(files).as_numpy_iterator(),
                     key=lambda record: record_key(record, seed))
    spec = _feature_spec()
    return ({key: value.numpy() for key, value in tf.io.parse_single_example(record, spec).items()}
            for record in records)


def read_sources(data_dir: str | Path, split: str, batch_size: int = 8192) -> list[str]:
    """Every record's ``source`` string in ``split`` (for molecules, its canonical SMILES).

    Parses that one feature in batches: element by element, a Python loop over the 1.4 million
    MOSES records took minutes of every molecule evaluation.

    Raises:
      FileNotFoundError: the directory holds no shard of that split.
    """
    import tensorflow as tf

    files = shard_files(data_dir, split)
    if not files:
        raise FileNotFoundError(f"no {split!r} TFRecord shards in {data_dir}")
    spec = {"source": tf.io.FixedLenFeature([], tf.string)}
    dataset = (tf.data.TFRecordDataset(files, num_parallel_reads=min(4, len(files)))
               .batch(batch_size)
               .map(lambda records: tf.io.parse_example(records, spec)["source"],
                    num_parallel_calls=tf.data.AUTOTUNE)
               .prefetch(tf.data.AUTOTUNE))
    return [source.decode() for batch in dataset.as_numpy_iterator() for source in batch]


def read_vocab(data_dir: str | Path) -> dict:
    """The vocabulary (vocab.json) saved beside the shards."""
    path = Path(data_dir) / layout.VOCAB_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {layout.VOCAB_FILE} in {data_dir}")
    try:
        vocab = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:  # not UTF-8, not JSON
        raise artifacts.damaged(path, error) from error
    if not isinstance(vocab, dict) or "num_tokens" not in vocab:
        raise artifacts.damaged(path, ValueError("not a vocabulary (no num_tokens)"))
    return vocab


def finish_dataset(data_dir: str | Path, stats: dict, vocab: dict, description: str,
                   empty_detail: str) -> None:
    """Write a Beam job's stats.json, then, unless a split is empty, vocab.json and the TFDS
    metadata: a dataset without records in a split is never left looking complete.

    Raises:
      EmptyCorpusError: a split has no record; the message names the split, then
        ``empty_detail`` (where the inputs went and what to change) and a few dropped inputs
        (the failed stage's stats.json goes with its directory).
    """
    data_dir = Path(data_dir)
    (data_dir / layout.STATS_FILE).write_text(json.dumps(stats, indent=1) + "\n")
    empty = [split for split, n in stats["records_out"].items() if n == 0]
    if empty:
        examples = "; ".join(f"{drop['source']}: {drop['reason']} ({drop['detail'][:80]})"
                             for drop in stats.get("dropped_examples", [])[:3])
        raise EmptyCorpusError(f"no {' or '.join(empty)} {empty_detail}"
                               + (f"; dropped, for example: {examples}" if examples else ""))
    (data_dir / layout.VOCAB_FILE).write_text(json.dumps(vocab, indent=1) + "\n")
    write_tfds_metadata(data_dir, description)
