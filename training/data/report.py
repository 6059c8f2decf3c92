"""What a run's data was made of: `<run dir>/data_summary.json` (per bag: frames kept, frames and episodes
dropped by reason, where reading of a damaged file stopped, skipped files and topics, clock checks, notes) and a short
summary for people on stderr, written by every command that reads bags."""

from __future__ import annotations

import json
import logging
import os

from .cache import DataCache
from .episode import ReadSummary

FILE = "data_summary.json"
log = logging.getLogger("moejepa.train")
_reported: dict[str, str] = {}  # path -> what this process last wrote there


def bag_entry(bag: str, s: ReadSummary) -> dict:
    """One bag's line in data_summary.json."""
    return {
        "bag": bag,
        "frames_kept": s.frames,
        "episodes": s.episodes,
        "skipped": s.skipped_files.get(bag),
        "skipped_files": {f: why for f, why in s.skipped_files.items() if f != bag},
        "frames_dropped": dict(s.dropped_frames),
        "episodes_dropped": dict(s.dropped_episodes),
        "stopped_early": dict(s.stopped),
        "skipped_topics": dict(s.skipped_topics),
        "clocks": s.clocks.get(bag),
        "errors": list(s.errors),
        "notes": list(s.notes),
    }


def human_summary(cache: DataCache) -> str:
    """A few lines: the totals, then one line per bag that lost anything."""
    lines = [f"data: {cache.summary} (cache {cache.root})"]
    for bag, s in cache.bag_summaries.items():
        if bag in s.skipped_files:
            lines.append(f"  skipped {bag}: {s.skipped_files[bag]}")
            continue
        for f, where in s.stopped.items():
            lines.append(f"  {f}: kept the readable prefix, {s.frames} frames; stopped: {where}")
        for f, why in s.skipped_files.items():
            lines.append(f"  skipped file {f}: {why}")
        if s.dropped_frames:
            lines.append(f"  {bag}: dropped frames {dict(s.dropped_frames)}")
        for topic, why in s.skipped_topics.items():
            lines.append(f"  {bag}: topic {topic} not read ({why})")
        for warning in s.clocks.get(bag, {}).get("warnings", []):
            lines.append(f"  {bag}: {warning}")
    return "\n".join(lines)


def report_data(cache: DataCache, run_dir: str) -> str:
    """Write `<run_dir>/data_summary.json` and log the human summary (once per change); returns the path."""
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, FILE)
    doc = {
        "cache": str(cache.root),
        "frames": cache.num_frames,
        "episodes": cache.num_episodes,
        "total": cache.summary.to_dict(),
        "bags": [bag_entry(b, s) for b, s in cache.bag_summaries.items()],
    }
    text = json.dumps(doc, indent=1)
    if _reported.get(path) == text:  # the same data read again by this process (e.g. for the verdict)
        return path
    _reported[path] = text
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    log.info(human_summary(cache))
    return path
