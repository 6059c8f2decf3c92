"""rosbag2 (mcap or sqlite3, detected) -> aligned `Episode`s, for rollout bags and robot bags alike.

Topic names/types and the alignment rule come from a `TopicConfig` (see `training.data.topics`).
Images are decoded by `moejepa_ros.codecs.image_to_rgb` -- the same function the live nodes use --
and actions by `codecs.msg_to_action`. Bad input raises `BagDataError` naming the file, topic and
message index; with `skip_bad=True` the bad bag/record is dropped, the rest still loads, and the
`ReadSummary` says what was dropped and why. A bag without the image or action topic is an error that
lists the topics it has; an absent reward, episode or state topic is a note and reading goes on.
Storage files are opened one by one (`training.data.bag_files`): with `skip_bad`, a cut mcap file gives
its readable prefix and a split bag loses only its damaged file. Other topics whose types cannot be
decoded are skipped and listed (`training.data.msg_types`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from moejepa_ros.codecs import CodecError, GreyRanges, action_size, image_to_rgb, msg_to_action

from . import clocks
from .align import Series, align, increasing
from .bag_files import BagLayout, FileProblem, StorageFile, storage_files
from .episode import BagDataError, Episode, ReadSummary
from .msg_types import BagTypes
from .state import STATE_TYPES
from .topics import TopicConfig

BAG_SUFFIXES = (".mcap", ".db3")


def find_bags(sources: str | Path | Iterable[str | Path]) -> list[Path]:
    """One bag (a folder with metadata.yaml, or a .mcap/.db3 file), many, or folders of bags."""
    if isinstance(sources, (str, Path)):
        sources = [sources]
    found: list[Path] = []
    for src in sources:
        p = Path(src)
        if not p.exists():
            raise BagDataError(p, "no such file or folder")
        if p.is_file():
            if p.suffix not in BAG_SUFFIXES:
                raise BagDataError(
                    p, f"not a bag: expected a folder with metadata.yaml or a {'/'.join(BAG_SUFFIXES)} file"
                )
            found.append(p)
        elif (p / "metadata.yaml").exists():
            found.append(p)
        else:
            # Hidden folders (e.g. a rollout still being written) are not bags yet.
            visible = lambda f: not any(part.startswith(".") for part in f.relative_to(p).parts)  # noqa: E731
            inner = sorted({m.parent for m in p.rglob("metadata.yaml") if visible(m)})
            loose = sorted(
                f
                for f in p.rglob("*")
                if f.suffix in BAG_SUFFIXES
                and f.is_file()
                and visible(f)
                and not any(d == f.parent or d in f.parents for d in inner)
            )
            if not inner and not loose:
                raise BagDataError(p, "folder holds no bags (no metadata.yaml, .mcap or .db3)")
            found += inner + loose
    return sorted(dict.fromkeys(found))


def _header_ns(msg) -> int:
    """The message's header stamp in ns, or 0 (unset, as many command publishers leave it) without a header."""
    if not hasattr(msg, "header"):
        return 0
    st = msg.header.stamp
    return int(st.sec) * 1_000_000_000 + int(st.nanosec)


class _BagRead:
    """State of reading one bag: decoded series plus the bad-record bookkeeping."""

    def __init__(self, path: Path, topics: TopicConfig, skip_bad: bool, transform, ranges: GreyRanges):
        self.path, self.cfg, self.skip_bad, self.transform, self.ranges = path, topics, skip_bad, transform, ranges
        self.summary = ReadSummary(files=[str(path)])
        self.frames: list[np.ndarray] = []
        self.img_header: list[int] = []
        self.img_log: list[int] = []
        self.break_before: list[bool] = []
        self.series: dict[str, tuple[list[int], list[int], list]] = {}  # key -> header stamps, log times, values
        self.poison: list[int] = []
        self.image_shape: tuple[int, ...] | None = None
        self.action_dim: int | None = None
        self.state_dim: int | None = None
        self.state_names: tuple[str, ...] | None = None
        self._pending_break = False

    def file_failed(self, file: str | Path, problem: str) -> None:
        """A storage file that cannot be read at all: stop, or (skip_bad) skip it and read the others."""
        err = BagDataError(file, problem)
        if not self.skip_bad:
            raise err
        self.summary.skipped_files[str(file)] = problem
        self.summary.errors.append(str(err))

    def file_stopped(self, f: StorageFile) -> None:
        """A storage file read up to damage: stop, or (skip_bad) keep what came before and say where."""
        err = BagDataError(f.path, f.stopped)
        if not self.skip_bad:
            raise err
        self.summary.stopped[str(f.path)] = f.stopped
        self.summary.errors.append(str(err))
        self.summary.notes.append(f"{f.path}: kept the {f.read} complete messages before the damage")

    def bad(self, topic: str, index: int, problem: str, log_ns: int, is_image: bool) -> None:
        err = BagDataError(self.path, problem, topic, index)
        if not self.skip_bad:
            raise err
        self.summary.errors.append(str(err))
        if is_image:
            self.summary.dropped_frames[err.reason] += 1
            self._pending_break = True
        else:
            self.poison.append(log_ns)

    def on_image(self, msg, log_ns: int, index: int) -> None:
        topic = self.cfg.image_topic
        try:
            rgb = image_to_rgb(msg, ranges=self.ranges)
        except CodecError as e:
            return self.bad(topic, index, f"undecodable image ({e})", log_ns, True)
        if self.image_shape is None:
            self.image_shape = rgb.shape
        elif rgb.shape != self.image_shape:
            return self.bad(
                topic,
                index,
                f"image size changed mid-bag: {rgb.shape[1]}x{rgb.shape[0]} "
                f"after {self.image_shape[1]}x{self.image_shape[0]}",
                log_ns,
                True,
            )
        if self.transform is not None:
            rgb = self.transform(rgb)
        else:
            rgb = np.array(rgb, copy=True)  # never keep a view into the message buffer
        self.frames.append(rgb)
        self.img_header.append(_header_ns(msg))
        self.img_log.append(log_ns)
        self.break_before.append(self._pending_break)
        self._pending_break = False

    def on_action(self, msg, log_ns: int, index: int) -> None:
        cfg = self.cfg
        try:
            if self.action_dim is None:
                self.action_dim = action_size(msg, fields=cfg.action_fields)
                if self.action_dim < 1:
                    self.action_dim = None
                    raise CodecError("empty action")
            a = msg_to_action(msg, self.action_dim, fields=cfg.action_fields)
        except CodecError as e:
            return self.bad(cfg.action_topic, index, f"unreadable action ({e})", log_ns, False)
        self._add("action", msg, log_ns, a)

    def _add(self, key: str, msg, log_ns: int, value) -> None:
        hd, lg, vals = self.series.setdefault(key, ([], [], []))
        hd.append(_header_ns(msg))
        lg.append(log_ns)
        vals.append(value)

    def clock_series(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """topic -> (header stamps, log times) of every topic read, for `clocks.choose`."""
        cfg = self.cfg
        topic = {"action": cfg.action_topic, "reward": cfg.reward_topic, "episode": cfg.episode_topic}
        topic["state"] = cfg.state_topic
        out = {cfg.image_topic: (np.asarray(self.img_header, np.int64), np.asarray(self.img_log, np.int64))}
        for key, (hd, lg, _) in self.series.items():
            out[topic[key]] = (np.asarray(hd, np.int64), np.asarray(lg, np.int64))
        return out

    def get(self, key: str, source: str, dtype, width: int | None = None) -> Series | None:
        if key not in self.series:
            return None
        hd, lg, vals = self.series[key]
        v = np.asarray(vals, dtype)
        if width is not None:
            v = v.reshape(len(hd), width)
        st = clocks.header_or_log(np.asarray(hd, np.int64), np.asarray(lg, np.int64), source)
        return Series(st, v).sorted()


def read_bag(
    path: str | Path,
    topics: TopicConfig | None = None,
    *,
    skip_bad: bool = False,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ranges: GreyRanges = GreyRanges(),
) -> tuple[list[Episode], ReadSummary]:
    """Read one bag into aligned episodes. `transform(rgb)` runs on each decoded frame (e.g. a
    resize to model resolution) so a long high-resolution bag never sits in memory whole; `ranges`
    map depth / mono16 images to 0..255 (`data.depth_range`, `data.mono16_range`)."""
    cfg = topics or TopicConfig()
    path = Path(path)
    r = _BagRead(path, cfg, skip_bad, transform, ranges)
    layout = storage_files(path)
    if layout.note:
        r.summary.notes.append(layout.note)
    for file, why in layout.missing.items():
        r.file_failed(file, why)
    if not layout.files:
        raise BagDataError(path, "the bag holds no readable .mcap or .db3 file")
    try:
        _read_files(layout, r)
    finally:
        for f in layout.files:
            f.close()
    return _assemble(r)


def _absent_note(cfg: TopicConfig, key: str) -> str:
    """What reading does without an optional topic."""
    if key == "reward_topic":
        return "rewards are 0"
    if key == "episode_topic":
        if cfg.split_gap_s is None:
            return "episodes split only where frames are dropped"
        return f"episodes split at gaps > split_gap_s={cfg.split_gap_s} s"
    return "no state (probes and evaluation go without it)"


class _Selection:
    """Which connections to read: the image and action topics must be there with the configured types (else
    one line listing what the bag has); optional topics are read when present and noted when absent; any
    other topic whose messages could not be decoded is listed as skipped. Judged per connection as it
    appears, so files scanned without an index work too."""

    def __init__(self, r: _BagRead):
        cfg = r.cfg
        self.r, self.types = r, BagTypes()
        self.required = {
            cfg.image_topic: ("image_topic", (cfg.image_msgtype,)),
            cfg.action_topic: ("action_topic", (cfg.action_msgtype,)),
        }
        self.wanted = dict(self.required)
        for topic, key, types in (
            (cfg.reward_topic, "reward_topic", ("std_msgs/msg/Float32",)),
            (cfg.episode_topic, "episode_topic", ("std_msgs/msg/Int32",)),
            (cfg.state_topic, "state_topic", tuple(STATE_TYPES)),
        ):
            if topic:
                self.wanted[topic] = (key, types)
        self.seen: dict[str, set[str]] = {}
        self._decided: dict[int, Callable | None] = {}

    def deserializer(self, conn) -> Callable | None:
        """The decoder for `conn`'s messages, or None for a topic not read; raises on a wrong type."""
        got = self._decided.get(id(conn), False)
        if got is not False:
            return got
        r, topic = self.r, conn.topic
        self.seen.setdefault(topic, set()).add(conn.msgtype)
        problem = self.types.problem(conn)
        dec = None
        if topic not in self.wanted:
            if problem and topic not in r.summary.skipped_topics:
                r.summary.skipped_topics[topic] = f"{conn.msgtype}: {problem}"
                r.summary.notes.append(f"{r.path}: topic {topic} skipped: {problem}")
        else:
            key, allowed = self.wanted[topic]
            if conn.msgtype not in allowed:
                expected = allowed[0] if len(allowed) == 1 else f"one of {list(allowed)}"
                fix = (
                    f"data.topics.{key.replace('_topic', '_type')}"
                    if topic in self.required
                    else f"data.topics.{key}=null"
                )
                raise BagDataError(
                    r.path, f"wrong message type: expected {expected}, found {conn.msgtype}; set {fix}", topic
                )
            if problem:
                raise BagDataError(r.path, problem, topic)
            dec = self.types.deserializer(conn)
            if key == "state_topic" and r.state_names is None:
                r.state_names = STATE_TYPES[conn.msgtype].names
        self._decided[id(conn)] = dec
        return dec

    def check(self, image_count: int | None) -> None:
        """After the connections are known: required topics present (else one line naming what the bag
        has), absent optional topics noted, and images there (`image_count` None: not known yet)."""
        r = self.r
        for topic, (key, _) in self.wanted.items():
            if topic in self.seen:
                continue
            if topic in self.required:
                have = ", ".join(f"{t} ({'/'.join(sorted(ty))})" for t, ty in sorted(self.seen.items())) or "none"
                raise BagDataError(r.path, f"missing topic: the bag has {have}; set data.topics.{key}", topic)
            note = f"{r.path}: optional topic {topic} absent: {_absent_note(r.cfg, key)}"
            if note not in r.summary.notes:
                r.summary.notes.append(note)
        if image_count == 0:
            raise BagDataError(r.path, "topic has no messages", r.cfg.image_topic)


def _read_files(layout: BagLayout, r: _BagRead) -> None:
    """Open every storage file (a damaged mcap file is scanned forward with `skip_bad`), check the topics
    once all connections are known up front, then read the files in order."""
    sel = _Selection(r)
    opened: list[tuple[StorageFile, list | None]] = []
    for f in layout.files:
        try:
            opened.append((f, f.open()))
        except FileProblem as e:
            if not (e.recoverable and r.skip_bad):
                hint = "; data.skip_bad=true keeps its readable prefix" if e.recoverable else ""
                r.file_failed(f.path, e.problem + hint)
                continue
            f.open_scan()
            r.summary.notes.append(f"{f.path}: {e.problem}; read forward up to the damage")
            opened.append((f, None))
    if not opened:
        raise BagDataError(r.path, f"no storage file could be read: {'; '.join(r.summary.skipped_files.values())}")
    indexed = all(conns is not None for _, conns in opened)
    image_count = 0
    if indexed:
        for _, conns in opened:
            for c in conns:
                sel.deserializer(c)
                image_count += c.msgcount if c.topic == r.cfg.image_topic else 0
        sel.check(image_count)
    unzip = None
    if layout.message_zstd:
        from backports import zstd

        unzip = zstd.decompress
    counts: dict[str, int] = {}
    for f, conns in opened:
        wanted = None if conns is None else [c for c in conns if sel.deserializer(c) is not None]
        if wanted == []:
            continue
        for conn, log_ns, raw in f.messages(wanted):
            dec = sel.deserializer(conn)
            if dec is None:
                continue
            topic = conn.topic
            index = counts.get(topic, 0)
            counts[topic] = index + 1
            try:
                msg = dec(raw if unzip is None else unzip(raw))
            except Exception as e:
                r.bad(topic, index, f"unreadable record ({type(e).__name__}: {e})", log_ns, topic == r.cfg.image_topic)
                continue
            _dispatch(r, conn, topic, msg, log_ns, index)
        if f.stopped:
            r.file_stopped(f)
    if not indexed:
        try:
            sel.check(counts.get(r.cfg.image_topic, 0))
        except BagDataError as e:
            if not r.summary.stopped:
                raise
            damage = "; ".join(f"{f}: {where}" for f, where in r.summary.stopped.items())
            raise BagDataError(r.path, f"{e.problem.split(';')[0]} before the damage ({damage})", e.topic) from None


def _dispatch(r: _BagRead, conn, topic: str, msg, log_ns: int, index: int) -> None:
    """Hand one decoded message to what its topic feeds."""
    cfg = r.cfg
    if topic == cfg.image_topic:
        r.on_image(msg, log_ns, index)
    elif topic == cfg.action_topic:
        r.on_action(msg, log_ns, index)
    elif topic == cfg.reward_topic:
        v = float(msg.data)
        if not np.isfinite(v):
            r.bad(topic, index, f"non-finite reward {v}", log_ns, False)
        else:
            r._add("reward", msg, log_ns, v)
    elif topic == cfg.episode_topic:
        r._add("episode", msg, log_ns, int(msg.data))
    elif topic == cfg.state_topic:
        v = STATE_TYPES[conn.msgtype].decode(msg)
        if r.state_dim is None:
            r.state_dim = v.size
        if v.size != r.state_dim:
            r.bad(topic, index, f"state length changed: {v.size} after {r.state_dim}", log_ns, False)
        else:
            r._add("state", msg, log_ns, v)


OUT_OF_ORDER = "out-of-order or duplicate image stamp"


def _in_order(r: _BagRead, source: str) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """The image stamps under `source`, the frames and the break marks, less the frames whose stamp is out of
    order or a duplicate (counted and noted; the frame after one starts a new episode, as after any drop)."""
    stamps = clocks.header_or_log(np.asarray(r.img_header, np.int64), np.asarray(r.img_log, np.int64), source)
    brk = np.asarray(r.break_before, bool)
    keep = increasing(stamps)
    if keep.all():
        return stamps, r.frames, brk
    bad = np.flatnonzero(~keep)
    r.summary.dropped_frames[OUT_OF_ORDER] += len(bad)
    i = int(bad[0])
    r.summary.notes.append(
        f"{r.path}: topic {r.cfg.image_topic}: dropped {len(bad)} frame(s) whose {source} stamp is out of order or a "
        f"duplicate (first: decoded image #{i} at {stamps[i]} ns)"
    )
    kept = np.flatnonzero(keep)
    dropped_before = np.cumsum(~keep)[kept]
    brk = brk[kept] | (np.diff(dropped_before, prepend=0) > 0)
    return stamps[kept], [r.frames[k] for k in kept], brk


def _assemble(r: _BagRead) -> tuple[list[Episode], ReadSummary]:
    cfg, summ = r.cfg, r.summary
    if not r.frames:
        raise BagDataError(r.path, "no readable images", cfg.image_topic)
    source, check = clocks.choose(r.clock_series(), cfg.stamp_source, cfg.clock_tolerance_s)
    summ.clocks[str(r.path)] = check
    stamps, frames, break_before = _in_order(r, source)
    actions = r.get("action", source, np.float32, r.action_dim or 1) or Series.empty(r.action_dim or 1)
    ns = lambda s: None if s is None else int(round(s * 1e9))  # noqa: E731
    try:
        al = align(
            stamps,
            actions,
            rewards=r.get("reward", source, np.float32),
            state=r.get("state", source, np.float32, r.state_dim),
            markers=r.get("episode", source, np.int64),
            break_before=break_before,
            poison=np.asarray(r.poison, np.int64),
            split_gap_ns=ns(cfg.split_gap_s),
            mode=cfg.align,
            tolerance_ns=ns(cfg.tolerance_s),
            max_hold_ns=ns(cfg.max_hold_s),
            min_len=cfg.min_episode_len,
        )
    except ValueError as e:
        raise BagDataError(r.path, f"cannot align: {e}", cfg.image_topic) from None
    if len(al.held_age_ns):
        age = al.held_age_ns / 1e9
        check["held_action_age_s"] = {"median": round(float(np.median(age)), 6), "max": round(float(age.max()), 6)}
    summ.dropped_frames.update(al.dropped_frames)
    summ.dropped_episodes.update(al.dropped_episodes)
    if not al.segments and not r.skip_bad:
        why = "".join(f"; {w}" for w in check["warnings"])
        raise BagDataError(
            r.path, f"no usable episode: dropped frames {dict(summ.dropped_frames)}{why}", cfg.image_topic
        )
    episodes = []
    for k, seg in enumerate(al.segments):
        seg_frames = np.stack(frames[seg.start : seg.stop])
        episodes.append(
            Episode(
                frames=seg_frames,
                actions=seg.actions,
                rewards=seg.rewards,
                state=seg.state,
                stamps_ns=stamps[seg.start : seg.stop],
                source=str(r.path),
                index=seg.episode if seg.episode >= 0 else k,
                state_names=None if seg.state is None else r.state_names,
            )
        )
    summ.episodes = len(episodes)
    summ.frames = int(sum(len(e) for e in episodes))
    return episodes, summ


def iter_bags(
    sources, topics: TopicConfig | None = None, *, skip_bad: bool = False, transform=None, ranges=GreyRanges()
) -> Iterator[tuple[Path, list[Episode], ReadSummary]]:
    """Read bags one at a time: yields (bag, episodes, summary); a bad bag with `skip_bad` yields
    no episodes and a summary naming why it was skipped."""
    for bag in find_bags(sources):
        try:
            eps, summ = read_bag(bag, topics, skip_bad=skip_bad, transform=transform, ranges=ranges)
        except BagDataError as e:
            if not skip_bad:
                raise
            summ = ReadSummary(files=[str(bag)], skipped_files={str(bag): e.problem}, errors=[str(e)])
            eps = []
        yield bag, eps, summ


def read_bags(
    sources, topics: TopicConfig | None = None, *, skip_bad: bool = False, transform=None, ranges=GreyRanges()
) -> tuple[list[Episode], ReadSummary]:
    """Read one bag, many bags or folders of bags into episodes plus one merged summary."""
    episodes: list[Episode] = []
    total = ReadSummary()
    for _, eps, summ in iter_bags(sources, topics, skip_bad=skip_bad, transform=transform, ranges=ranges):
        episodes += eps
        total.merge(summ)
    return episodes, total
