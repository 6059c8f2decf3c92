"""A forward, record-by-record read of an mcap file whose footer or summary is missing or damaged (a
recorder that lost power, a copy cut short): every complete message up to the damage is yielded, in one
pass over a memory map, and `McapScan.end` says where reading stopped and why.

The mcap layout read here: the magic, then records of (opcode u8, length u64, body); Schema (0x03) and
Channel (0x04) records may sit at the top level or inside Chunk (0x06) records, whose body is stored
uncompressed, zstd or lz4 (the compressions rosbag2 and the rosbags writer use). Reading ends cleanly
at the Data End (0x0F) or Footer (0x02) record; the summary section after it is not needed.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zlib import crc32

from rosbags.interfaces import Connection, ConnectionExtRosbag2, MessageDefinition, MessageDefinitionFormat

MAGIC = b"\x89MCAP0\r\n"
_U16, _U32, _U64 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<Q")
_CHUNK_HEAD = struct.Struct("<QQQI")  # start time, end time, uncompressed size, crc
_MESSAGE_HEAD = struct.Struct("<HIQQ")  # channel id, sequence, log time, publish time
_DEFINITION_FORMATS = {
    "ros2msg": MessageDefinitionFormat.MSG,
    "ros2idl": MessageDefinitionFormat.IDL,
    "omgidl": MessageDefinitionFormat.IDL,
}


def _decompress(data: memoryview, compression: str) -> bytes:
    if compression == "":
        return bytes(data)
    if compression == "zstd":
        from backports import zstd

        return zstd.decompress(data)
    if compression == "lz4":
        from lz4.frame import decompress

        return decompress(data)
    raise ValueError(f"unsupported chunk compression {compression!r}")


@dataclass(frozen=True)
class ScanEnd:
    """Where a scan stopped: byte `offset` of top-level `record` (0 = the first after the magic);
    `problem` is None for a clean end, else what was wrong there; `truncated` if the file simply ends."""

    offset: int
    record: int
    messages: int
    problem: str | None = None
    truncated: bool = False

    def where(self) -> str:
        return f"byte {self.offset} (record #{self.record}, after {self.messages} complete messages)"


class _Damage(Exception):
    def __init__(self, problem: str, truncated: bool = False):
        super().__init__(problem)
        self.problem, self.truncated = problem, truncated


class McapScan:
    """Reads one mcap file front to back; `connections` grows as Channel records appear."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.schemas: dict[int, tuple[str, str, str]] = {}  # id -> (name, encoding, data)
        self.connections: dict[int, Connection] = {}
        self.end: ScanEnd | None = None

    def messages(self) -> Iterator[tuple[Connection, int, bytes]]:
        """(connection, log time ns, serialised message) in file order; sets `end` when done."""
        with open(self.path, "rb") as f:
            size = f.seek(0, 2)
            if size < len(MAGIC):
                self.end = ScanEnd(0, 0, 0, f"file too short for an mcap file ({size} bytes)", truncated=True)
                return
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        pos, record, count = len(MAGIC), 0, 0
        try:
            if buf[:8] != MAGIC:
                raise _Damage("not an mcap file (bad magic)")
            while True:
                if pos == size:
                    raise _Damage("file ends without a footer", truncated=True)
                if size - pos < 9:
                    raise _Damage(f"record header cut off ({size - pos} of 9 bytes)", truncated=True)
                op, (length,) = buf[pos], _U64.unpack_from(buf, pos + 1)
                body = pos + 9
                if body + length > size:
                    raise _Damage(f"record cut off ({size - body} of {length} bytes)", truncated=True)
                if op in (0x0F, 0x02):  # Data End, Footer
                    break
                for item in self._record(op, buf[body : body + length]):
                    yield item
                    count += 1
                pos, record = body + length, record + 1
            self.end = ScanEnd(pos, record, count)
        except _Damage as e:
            self.end = ScanEnd(pos, record, count, e.problem, e.truncated)
        finally:
            buf.close()

    def _record(
        self, op: int, body: bytes | memoryview, in_chunk: bool = False
    ) -> Iterator[tuple[Connection, int, bytes]]:
        try:
            if op == 0x05:
                cid, _, log_ns, _ = _MESSAGE_HEAD.unpack_from(body)
                conn = self.connections.get(cid)
                if conn is not None:
                    yield conn, log_ns, bytes(body[_MESSAGE_HEAD.size :])
            elif op == 0x03:
                (sid,), at = _U16.unpack_from(body), 2
                name, at = _string(body, at)
                encoding, at = _string(body, at)
                data, _ = _bytes(body, at)
                self.schemas.setdefault(sid, (name, encoding, data.decode()))
            elif op == 0x04:
                self._channel(body)
            elif op == 0x06 and not in_chunk:
                yield from self._chunk(body)
        except (struct.error, UnicodeDecodeError, IndexError) as e:
            raise _Damage(f"malformed record (opcode 0x{op:02x}: {e})") from None

    def _channel(self, body: bytes | memoryview) -> None:
        cid, sid = _U16.unpack_from(body)[0], _U16.unpack_from(body, 2)[0]
        topic, at = _string(body, 4)
        encoding, _ = _string(body, at)
        if cid in self.connections:
            return
        name, fmt, data = self.schemas.get(sid, ("", "", ""))
        if sid and not name:
            raise _Damage(f"channel {topic} refers to schema {sid}, not defined before it")
        msgdef = MessageDefinition(_DEFINITION_FORMATS.get(fmt, MessageDefinitionFormat.NONE), data)
        ext = ConnectionExtRosbag2(encoding, [])
        self.connections[cid] = Connection(cid, topic, name, msgdef, "", 0, ext, self)

    def _chunk(self, body: bytes | memoryview) -> Iterator[tuple[Connection, int, bytes]]:
        _, _, raw_size, crc = _CHUNK_HEAD.unpack_from(body)
        compression, at = _string(body, _CHUNK_HEAD.size)
        (n,) = _U64.unpack_from(body, at)
        at += 8
        if at + n > len(body):
            raise _Damage(f"chunk data overruns its record ({n} bytes at {at} of {len(body)})")
        try:
            raw = _decompress(memoryview(body)[at : at + n], compression)
        except Exception as e:  # zstd/lz4 raise their own kinds on bad data
            raise _Damage(f"chunk does not decompress ({compression}: {e})") from None
        if len(raw) != raw_size or (crc and crc32(raw) != crc):
            raise _Damage("chunk checksum or size mismatch")
        inner, pos = memoryview(raw), 0
        while pos < raw_size:
            if raw_size - pos < 9:
                raise _Damage("record cut off inside a chunk")
            op, (length,) = inner[pos], _U64.unpack_from(inner, pos + 1)
            if pos + 9 + length > raw_size:
                raise _Damage("record overruns its chunk")
            yield from self._record(op, inner[pos + 9 : pos + 9 + length], in_chunk=True)
            pos += 9 + length


def _bytes(body: bytes | memoryview, at: int) -> tuple[bytes, int]:
    (n,) = _U32.unpack_from(body, at)
    if at + 4 + n > len(body):
        raise IndexError(f"string of {n} bytes overruns its record")
    return bytes(body[at + 4 : at + 4 + n]), at + 4 + n


def _string(body: bytes | memoryview, at: int) -> tuple[str, int]:
    data, at = _bytes(body, at)
    return data.decode(), at
