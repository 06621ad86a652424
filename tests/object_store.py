"""A Beam file system for tests: an in-memory object store under the scheme ``memstore://``.

Like GCS or S3 it has no directories, only keys, so a glob is matched by Beam's own pattern
rules (``**`` crosses ``/``) over a listing by prefix. Beam finds it as it finds GCS, by its
scheme, once this module is imported (it registers every subclass of FileSystem).
"""

from __future__ import annotations

import io

from apache_beam.io.filesystem import FileMetadata, FileSystem

SCHEME = "memstore"
OBJECTS: dict[str, bytes] = {}  # full path (memstore://bucket/key) -> content


def put(path: str, data: bytes) -> None:
    OBJECTS[path] = data


class MemoryObjectStore(FileSystem):
    @classmethod
    def scheme(cls):
        return SCHEME

    def has_dirs(self):
        return False

    def _list(self, dir_or_prefix):
        for path, data in sorted(OBJECTS.items()):
            if path.startswith(dir_or_prefix):
                yield FileMetadata(path, len(data))

    def exists(self, path):
        return path in OBJECTS

    def size(self, path):
        return len(OBJECTS[path])

    def metadata(self, path):
        return FileMetadata(path, len(OBJECTS[path]))

    def open(self, path, mime_type="application/octet-stream", compression_type=None):
        if path not in OBJECTS:
            raise FileNotFoundError(path)
        return io.BufferedReader(io.BytesIO(OBJECTS[path]))

    def join(self, basepath, *paths):
        return "/".join([basepath.rstrip("/"), *paths])

    def split(self, path):
        head, _, tail = path.rpartition("/")
        return head, tail

    # The tests only read: the rest of FileSystem's interface is not part of the double.
    def _read_only(self, *args, **kwargs):
        raise NotImplementedError(f"{SCHEME}:// is read-only in the tests")

    mkdirs = create = copy = rename = delete = last_updated = checksum = _read_only
