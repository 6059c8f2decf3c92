"""Message types of a bag's connections, each judged on its own: a definition rosbags cannot parse (e.g.
Jazzy's service-event channels), a serialisation other than CDR or a type nobody defines costs only its
own topic, with its own one-line reason. Connections without an embedded definition (older sqlite3
bags) use the standard ROS 2 types.
"""

from __future__ import annotations

from collections.abc import Callable

from rosbags.interfaces import Connection, MessageDefinitionFormat
from rosbags.typesys import Stores, TypesysError, get_types_from_idl, get_types_from_msg, get_typestore

_STANDARD = None
_IDL_SEP = "=" * 80 + "\n"


def standard_types():
    """The ROS 2 types of the newest distribution rosbags knows, for bags that carry no definitions."""
    global _STANDARD
    if _STANDARD is None:
        _STANDARD = get_typestore(Stores.ROS2_KILTED)
    return _STANDARD


def _parse(conn: Connection) -> dict:
    fmt, text = conn.msgdef.format, conn.msgdef.data
    if fmt == MessageDefinitionFormat.MSG:
        return get_types_from_msg(text, conn.msgtype)
    types: dict = {}
    parts = text.split(_IDL_SEP)[1:] if text.startswith(f"{_IDL_SEP}IDL: ") else [text]
    for part in parts:
        types.update(get_types_from_idl(part.split("\n", 1)[1] if text.startswith(_IDL_SEP) else part))
    return types


class BagTypes:
    """One bag's type store, filled from its connections' own definitions as they are needed."""

    def __init__(self):
        self.store = get_typestore(Stores.EMPTY)
        self._checked: dict[tuple, str | None] = {}
        self._parsed: dict[tuple, dict] = {}  # parsed, not yet registered (registering generates code)

    @staticmethod
    def _key(conn: Connection) -> tuple:
        return (conn.msgtype, conn.msgdef.format, conn.msgdef.data, conn.ext.serialization_format)

    def problem(self, conn: Connection) -> str | None:
        """Why messages of `conn` cannot be decoded (None: they can); parses its definition once."""
        key = self._key(conn)
        if key in self._checked:
            return self._checked[key]
        fmt = conn.ext.serialization_format
        why = None
        if fmt != "cdr":
            why = f"serialisation format {fmt!r} is not supported (only cdr)"
        elif conn.msgdef.format == MessageDefinitionFormat.NONE:
            if conn.msgtype not in standard_types().types:
                why = f"unknown type {conn.msgtype}: the bag carries no definition and it is not a standard ROS 2 type"
        else:
            try:
                self._parsed[key] = _parse(conn)
            except Exception as e:  # the msg/idl parsers raise several kinds
                why = f"cannot parse the definition of {conn.msgtype} ({type(e).__name__}: {e})"
        self._checked[key] = why
        return why

    def deserializer(self, conn: Connection) -> Callable[[bytes], object]:
        """raw CDR bytes -> message for a connection whose `problem` is None."""
        if conn.msgdef.format == MessageDefinitionFormat.NONE:
            std = standard_types()
            return lambda raw: std.deserialize_cdr(raw, conn.msgtype)
        parsed = self._parsed.pop(self._key(conn), None)
        if parsed:
            try:
                self.store.register(parsed)
            except TypesysError as e:
                raise ValueError(f"type {conn.msgtype} conflicts with another definition in the bag ({e})") from None
        store, msgtype = self.store, conn.msgtype
        return lambda raw: store.deserialize_cdr(raw, msgtype)
