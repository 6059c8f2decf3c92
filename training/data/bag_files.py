"""A bag as its storage files, each opened on its own so one damaged file costs only itself (a split bag
with one cut file keeps the others). An intact file is read through rosbags' own mcap/sqlite3 reader and
its index; an mcap file whose footer or summary is missing (a recorder that lost power) is read forward,
record by record, up to the damage (`training.data.mcap_scan`). The file list comes from metadata.yaml
when it is readable, else from the folder itself.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rosbags.interfaces import Connection
from rosbags.rosbag2.storage_mcap import McapReader
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Reader

from .mcap_scan import McapScan

STORAGE_SUFFIXES = {".mcap": "mcap", ".db3": "sqlite3"}
# rosbags' messages when it cannot use an mcap file's index, and what they mean
_MCAP_OPEN_REASONS = {
    "File end magic is invalid": "no footer: the file is unfinished or truncated",
    "Invalid MCAP footer": "damaged footer: the file is unfinished or truncated",
    "Invalid MCAP summary offset": "damaged footer: the file is unfinished or truncated",
    "Truncated record": "damaged summary section: the file is truncated",
    "Profile is not ros2": "the mcap profile is not ros2 (not a ROS 2 recording)",
    "File magic is invalid": "not an mcap file (bad magic)",
}


class FileProblem(Exception):
    """A storage file that cannot be read as it should; `recoverable` if a forward scan may still read it."""

    def __init__(self, problem: str, recoverable: bool = False):
        super().__init__(problem)
        self.problem, self.recoverable = problem, recoverable


class StorageFile:
    """One .mcap or .db3 file of a bag; `stopped` says where reading ended early and why (None: read whole)."""

    def __init__(self, path: Path, storage: str, compressed: str | None = None):
        self.path, self.storage, self.compressed = path, storage, compressed
        self.reader = None
        self.scan: McapScan | None = None
        self.stopped: str | None = None
        self.truncated = False
        self.read = 0  # messages read (of all connections asked for)
        self._tmp: str | None = None

    def open(self) -> list[Connection]:
        """Open with rosbags and return the file's connections; raise `FileProblem` if it cannot."""
        path = self._plain()
        cls = McapReader if self.storage == "mcap" else Sqlite3Reader
        reader = cls(path)
        try:
            reader.open()
        except Exception as e:
            text = str(e).strip()
            if self.storage == "mcap":
                reason = next((v for k, v in _MCAP_OPEN_REASONS.items() if k in text), f"damaged index ({text})")
                cut = "truncated" in reason or reason.startswith("damaged")  # the data before may be whole
                raise FileProblem(reason, recoverable=cut) from None
            raise FileProblem(f"cannot open the sqlite3 file ({type(e).__name__}: {text})") from None
        self.reader = reader
        return list(reader.connections)

    def open_scan(self) -> None:
        """Read this mcap file forward instead (after `open` raised a recoverable problem)."""
        self.scan = McapScan(self._plain())

    def messages(self, connections: list[Connection] | None = None) -> Iterator[tuple[Connection, int, bytes]]:
        """(connection, log ns, raw) for `connections` (opened) or every connection (scanned)."""
        if self.scan is not None:
            for item in self.scan.messages():
                self.read += 1
                yield item
            end = self.scan.end
            if end.problem is not None:
                self.stopped, self.truncated = f"{end.problem} at {end.where()}", end.truncated
            return
        it = self.reader.messages(connections)
        while True:
            try:
                item = next(it)
            except StopIteration:
                return
            except Exception as e:  # rosbags raises many kinds on damaged data
                self.stopped = f"unreadable data after {self.read} messages ({type(e).__name__}: {e})"
                return
            self.read += 1
            yield item

    def close(self) -> None:
        if self.reader is not None:
            try:
                self.reader.close()
            except Exception:
                pass
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _plain(self) -> Path:
        """The file itself, or for a bag compressed per file (zstd) its decompressed copy (a cut stream
        gives what it held up to the cut)."""
        if self.compressed is None:
            return self.path
        if self._tmp is None:
            from backports import zstd

            self._tmp = tempfile.mkdtemp(prefix="moejepa_bag_")
            out = Path(self._tmp) / self.path.stem
            with open(self.path, "rb") as raw, zstd.open(raw, "rb") as src, open(out, "wb") as dst:
                try:
                    shutil.copyfileobj(src, dst)
                except Exception as e:
                    self.stopped = f"compressed file cut short ({type(e).__name__}: {e})"
        return Path(self._tmp) / self.path.stem


@dataclass
class BagLayout:
    """A bag's storage files in order, the listed files that are absent, a note when metadata.yaml
    could not be used, and whether each message is zstd-compressed on its own (compression_mode: message)."""

    files: list[StorageFile]
    missing: dict[str, str] = field(default_factory=dict)  # listed file -> why it cannot be read
    note: str | None = None
    message_zstd: bool = False


def storage_files(bag: Path) -> BagLayout:
    """The layout of a bag folder (from metadata.yaml, else the folder's files) or of a lone file."""
    if bag.is_file():
        return BagLayout([StorageFile(bag, STORAGE_SUFFIXES.get(bag.suffix, "mcap"))])
    info, note = _metadata(bag / "metadata.yaml")
    listed = info.get("relative_file_paths")
    if not listed:
        found = sorted(f for f in bag.iterdir() if f.suffix in STORAGE_SUFFIXES and f.is_file())
        return BagLayout([StorageFile(f, STORAGE_SUFFIXES[f.suffix]) for f in found], note=note)
    storage = info.get("storage_identifier")
    mode = str(info.get("compression_mode") or "").lower()
    layout = BagLayout([], message_zstd=mode == "message")
    for name in listed:
        f = bag / Path(str(name)).name
        if not f.exists():
            layout.missing[str(f)] = "listed in metadata.yaml but absent"
            continue
        suffix = Path(f.stem).suffix if mode == "file" else f.suffix
        kind = STORAGE_SUFFIXES.get(suffix, storage if storage in STORAGE_SUFFIXES.values() else "mcap")
        layout.files.append(StorageFile(f, kind, "zstd" if mode == "file" else None))
    return layout


def _metadata(path: Path) -> tuple[dict, str | None]:
    """metadata.yaml's rosbag2_bagfile_information, or ({}, why it cannot be used)."""
    from ruamel.yaml import YAML

    try:
        doc = YAML(typ="safe").load(path.read_text())
        info = doc["rosbag2_bagfile_information"]
        if not isinstance(info, dict):
            raise TypeError("rosbag2_bagfile_information is not a mapping")
    except Exception as e:
        why = f"{type(e).__name__}: {e}".splitlines()[0]
        return {}, f"{path}: metadata.yaml unusable ({why}); reading the folder's .mcap/.db3 files"
    return info, None
