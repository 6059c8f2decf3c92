"""Damaged and odd bags, made from our own writer: cut mcap files keep every complete message before the
cut, a split bag loses only its damaged file, unreadable sqlite3 files and undecodable topics are skipped
with their own reason, and `moejepa-train` stops in one line (exit 2) or, with data.skip_bad, trains on
what is good and writes data_summary.json."""

import json
import shutil

import numpy as np
import pytest
from rosbags.rosbag2.storage_mcap import McapReader
from ruamel.yaml import YAML

from moejepa_ros.codecs import action_to_msg, make_image, new_message
from testing.bags import CAMERA, CMD, MS, README_TOPICS, T, frame, write_bag
from training.data.bag_reader import read_bag, read_bags
from training.data.episode import BagDataError
from training.data.topics import TopicConfig

SIZE, DT = 96, 50 * MS  # 27 kB images: the writer's 1 MiB chunks hold ~38, so a bag of 100 has 3 chunks
TOPICS = TopicConfig(**README_TOPICS, episode_topic=None, state_topic=None, split_gap_s=None)
SERVICE = "/add_two_ints/_service_event"
SERVICE_DEF = "=" * 80 + "\nSRV: example_interfaces/srv/AddTwoInts\nint64 a\nint64 b\n---\nint64 sum\n"


def camera_bag(path, n=100, start=0, storage="mcap", extra=None):
    """n camera frames 50 ms apart, each with the /cmd_vel Twist sent 1 ms before it (so every image has its
    command); `extra` {topic: add_connection kwargs} adds topics with one raw message each. Returns the bag
    and its frames."""
    recs = []
    for i in range(start, start + n):
        t = 1000 * MS + i * DT
        tw = action_to_msg(np.array([0.01 * i, -0.02 * i], np.float32), new_message(T["geometry_msgs/msg/Twist"]))
        recs.append((CMD, t - MS, tw))
        recs.append((CAMERA, t, make_image(T["sensor_msgs/msg/Image"], frame(i, SIZE, SIZE), "rgb8", t, "camera")))
    for topic in extra or {}:
        recs.append((topic, 1000 * MS + start * DT + 7 * MS, b"\x00\x01\x00\x00" + bytes(20)))
    types = {CAMERA: "sensor_msgs/msg/Image", CMD: "geometry_msgs/msg/Twist"}
    bag = write_bag(path, recs, types, storage, connections=extra)
    return bag, np.stack([frame(i, SIZE, SIZE) for i in range(start, start + n)])


def mcap_of(bag):
    (f,) = bag.glob("*.mcap")
    return f


def images_before(f, cut: int) -> int:
    """Ground truth from the intact file's own index: images in the chunks that end at or before `cut`."""
    r = McapReader(f)
    r.open()
    try:
        (cam,) = [c.id for c in r.connections if c.topic == CAMERA]
        return sum(c.channel_count.get(cam, 0) for c in r.chunks if c.chunk_start_offset + c.chunk_length <= cut)
    finally:
        r.close()


def chunk_ends(f) -> list[int]:
    r = McapReader(f)
    r.open()
    try:
        return [c.chunk_start_offset + c.chunk_length for c in r.chunks]
    finally:
        r.close()


def frames_of(eps):
    return np.concatenate([e.frames for e in eps]) if eps else np.zeros((0, SIZE, SIZE, 3), np.uint8)


@pytest.fixture(scope="module")
def intact(tmp_path_factory):
    """One 100-frame bag, written once; tests cut copies of it."""
    bag, truth = camera_bag(tmp_path_factory.mktemp("intact") / "bag")
    return bag, truth


def cut_copy(intact, tmp_path, where):
    """A copy of the intact bag with its mcap file cut at `where(file, chunk ends)` bytes."""
    bag = tmp_path / "cut"
    shutil.copytree(intact[0], bag)
    f = mcap_of(bag)
    data = f.read_bytes()
    cut = where(data, chunk_ends(f))
    f.write_bytes(data[:cut])
    return bag, cut


CUTS = {  # name -> where to cut (file bytes, chunk ends)
    "in the header": lambda data, ends: 20,
    "inside the second chunk": lambda data, ends: (ends[0] + ends[1]) // 2,
    "right after the second chunk": lambda data, ends: ends[1],
    "inside the last chunk": lambda data, ends: ends[-1] - 1000,
    "footer removed": lambda data, ends: len(data) - 37,
    "cut after the last chunk": lambda data, ends: ends[-1] + 30,
}


@pytest.mark.parametrize("case", sorted(CUTS))
def test_a_cut_mcap_keeps_every_complete_message_before_the_cut(intact, tmp_path, case):
    bag, cut = cut_copy(intact, tmp_path, CUTS[case])
    f = mcap_of(bag)
    want = images_before(mcap_of(intact[0]), cut)
    if case in ("footer removed", "cut after the last chunk"):
        assert want == len(intact[1])
    with pytest.raises(BagDataError) as ei:
        read_bag(bag, TOPICS)
    assert str(f) in str(ei.value) and "skip_bad=true" in str(ei.value) and "\n" not in str(ei.value)
    if want == 0:
        eps, summ = read_bags(bag, TOPICS, skip_bad=True)
        assert eps == [] and "before the damage" in summ.skipped_files[str(bag)]
        return
    eps, summ = read_bag(bag, TOPICS, skip_bad=True)
    kept = frames_of(eps)
    assert summ.frames == len(kept) == want
    assert np.array_equal(kept, intact[1][:want])
    if case == "footer removed":  # the data section is whole, up to its Data End record
        assert summ.stopped == {}
    else:
        where = summ.stopped[str(f)]
        assert "record #" in where and ("cut off" in where or "ends without" in where)


def split_bag(tmp_path, parts=(40, 60)):
    """A bag split over several mcap files listed in one metadata.yaml; returns (bag, files, frames per file)."""
    bag, start, files, truths = None, 0, [], []
    for k, n in enumerate(parts):
        b, truth = camera_bag(tmp_path / f"part{k}", n, start)
        start += n
        truths.append(truth)
        if bag is None:
            bag = b
            files.append(mcap_of(b))
            continue
        f = bag / f"split_{k}.mcap"
        shutil.move(mcap_of(b), f)
        files.append(f)
    yaml = YAML(typ="safe")
    meta = yaml.load((bag / "metadata.yaml").read_text())
    meta["rosbag2_bagfile_information"]["relative_file_paths"] = [f.name for f in files]
    with open(bag / "metadata.yaml", "w") as fh:
        yaml.dump(meta, fh)
    return bag, files, truths


@pytest.mark.parametrize("damaged", [0, 1])
def test_a_split_bag_with_one_cut_file_keeps_the_intact_files(tmp_path, damaged):
    bag, files, truths = split_bag(tmp_path)
    f = files[damaged]
    ends = chunk_ends(f)
    assert len(ends) >= 2
    cut = ends[0] + 100
    want = images_before(f, cut)
    f.write_bytes(f.read_bytes()[:cut])
    with pytest.raises(BagDataError, match="skip_bad"):
        read_bag(bag, TOPICS)
    eps, summ = read_bag(bag, TOPICS, skip_bad=True)
    kept = [truths[0][:want], truths[1]] if damaged == 0 else [truths[0], truths[1][:want]]
    assert np.array_equal(frames_of(eps), np.concatenate(kept))
    assert list(summ.stopped) == [str(f)] and summ.skipped_files == {}


def test_a_listed_file_that_is_absent_costs_only_itself(tmp_path):
    bag, files, truths = split_bag(tmp_path)
    files[1].unlink()
    with pytest.raises(BagDataError, match="listed in metadata.yaml but absent"):
        read_bag(bag, TOPICS)
    eps, summ = read_bag(bag, TOPICS, skip_bad=True)
    assert np.array_equal(frames_of(eps), truths[0]) and list(summ.skipped_files) == [str(files[1])]


def test_an_sqlite3_bag_that_cannot_be_opened_is_skipped_with_its_reason(tmp_path):
    good, truth = camera_bag(tmp_path / "good", 30)
    bad, _ = camera_bag(tmp_path / "bad", 30, storage="sqlite3")
    (db,) = bad.glob("*.db3")
    db.write_bytes(b"this is not an sqlite database" * 10)
    with pytest.raises(BagDataError) as ei:
        read_bags([good, bad], TOPICS)
    assert str(db) in str(ei.value) and "sqlite3" in str(ei.value) and "corrupt or truncated" not in str(ei.value)
    eps, summ = read_bags([good, bad], TOPICS, skip_bad=True)
    assert np.array_equal(frames_of(eps), truth)
    assert "cannot open the sqlite3 file" in summ.skipped_files[str(bad)]


def test_a_service_event_channel_rosbags_cannot_parse_is_skipped_and_listed(tmp_path):
    from rosbags.highlevel import AnyReader

    extra = {SERVICE: dict(msgtype="example_interfaces/srv/AddTwoInts_Event", msgdef=SERVICE_DEF, rihs01="RIHS01_0")}
    bag, truth = camera_bag(tmp_path / "srv", 20, extra=extra)
    with pytest.raises(Exception, match="Could not parse"), AnyReader([bag]):
        pass  # what a whole-bag reader does with it
    eps, summ = read_bag(bag, TOPICS)  # no skip_bad needed: the topic is not one we read
    assert np.array_equal(frames_of(eps), truth)
    assert "cannot parse the definition" in summ.skipped_topics[SERVICE]
    assert any(SERVICE in n for n in summ.notes)


@pytest.mark.parametrize(
    "kwargs, text",
    [
        (dict(serialization_format="ros1"), "serialisation format 'ros1' is not supported"),
        (dict(msgdef=SERVICE_DEF, rihs01="RIHS01_0"), "cannot parse the definition of sensor_msgs/msg/Image"),
    ],
)
def test_errors_that_are_not_corruption_say_what_they_are(tmp_path, kwargs, text):
    """The camera topic itself undecodable: one line with its true reason, naming file and topic."""
    bag = write_bag(
        tmp_path / "odd",
        [(CAMERA, 1000 * MS, b"\x00\x01\x00\x00" + bytes(40))],
        {CAMERA: "sensor_msgs/msg/Image", CMD: "geometry_msgs/msg/Twist"},
        connections={CAMERA: dict(msgtype="sensor_msgs/msg/Image", **kwargs)},
    )
    with pytest.raises(BagDataError) as ei:
        read_bag(bag, TOPICS)
    msg = str(ei.value)
    assert text in msg and f"topic {CAMERA}" in msg and "corrupt" not in msg and "truncated" not in msg


def test_metadata_version_1_reads(tmp_path):
    bag, truth = camera_bag(tmp_path / "v1", 20)
    yaml = YAML(typ="safe")
    meta = yaml.load((bag / "metadata.yaml").read_text())
    info = meta["rosbag2_bagfile_information"]
    info["version"] = 1
    for key in ("files", "custom_data", "ros_distro", "compression_format", "compression_mode"):
        info.pop(key, None)
    with open(bag / "metadata.yaml", "w") as fh:
        yaml.dump(meta, fh)
    eps, _ = read_bag(bag, TOPICS)
    assert np.array_equal(frames_of(eps), truth)


# -- from the CLI ---------------------------------------------------------------------------------


def test_cli_stops_in_one_line_or_trains_on_the_good_bags_with_skip_bad(tmp_path, capsys):
    import torch

    from training.cli import main

    torch.set_num_threads(1)
    bags = tmp_path / "bags"
    good, truth = camera_bag(bags / "good", 60)
    cut, _ = camera_bag(bags / "cut", 100, start=200)
    f = mcap_of(cut)
    cut_at = chunk_ends(f)[1] + 10
    want_cut = images_before(f, cut_at)
    f.write_bytes(f.read_bytes()[:cut_at])
    topics = [f"data.topics.{k}={'null' if v is None else v}" for k, v in README_TOPICS.items()]
    args = ["fit", "-c", "tiny", f"run.out_dir={tmp_path / 'run'}", f"data.bags=[{bags}]", "train.steps=2", *topics]
    args += ["data.topics.episode_topic=null", "data.topics.state_topic=null", "data.val_episodes=0"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(f) in err[0] and "Traceback" not in err[0]
    assert main([*args, "data.skip_bad=true"]) == 0
    out = capsys.readouterr()
    summary = json.loads((tmp_path / "run" / "data_summary.json").read_text())
    by_bag = {b["bag"]: b for b in summary["bags"]}
    assert by_bag[str(good)]["frames_kept"] == len(truth) and by_bag[str(good)]["stopped_early"] == {}
    assert by_bag[str(cut)]["frames_kept"] == want_cut > 0
    assert "record #" in by_bag[str(cut)]["stopped_early"][str(f)]
    assert summary["frames"] == len(truth) + want_cut
    assert "readable prefix" in out.err


@pytest.mark.parametrize("mode", ["file", "message"])
def test_compressed_bags_read_and_a_cut_compressed_file_keeps_its_prefix(tmp_path, mode):
    """rosbag2's zstd compression per file or per message reads as before; a per-file-compressed mcap
    cut short gives what its stream held up to the cut."""
    from rosbags.rosbag2 import Reader, StoragePlugin, Writer
    from rosbags.rosbag2.enums import CompressionFormat, CompressionMode

    plain, truth = camera_bag(tmp_path / "plain", 100)
    bag = tmp_path / f"zstd_{mode}"
    w = Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP)
    w.set_compression(CompressionMode[mode.upper()], CompressionFormat.ZSTD)
    with Reader(plain) as r, w:
        conns = {
            c.id: w.add_connection(c.topic, c.msgtype, msgdef=c.msgdef.data, rihs01=c.digest) for c in r.connections
        }
        for c, t, raw in r.messages():
            w.write(conns[c.id], t, raw)
    eps, summ = read_bag(bag, TOPICS)
    assert np.array_equal(frames_of(eps), truth) and summ.stopped == {}
    if mode == "file":
        (f,) = bag.glob("*.zstd")
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
        eps, summ = read_bag(bag, TOPICS, skip_bad=True)
        kept = frames_of(eps)
        assert 0 < len(kept) < len(truth) and np.array_equal(kept, truth[: len(kept)])
        assert str(f) in summ.stopped


def test_a_file_that_is_not_mcap_says_so_and_no_prefix_is_promised(tmp_path):
    good, truth = camera_bag(tmp_path / "good", 20)
    bad = tmp_path / "notes.mcap"
    bad.write_bytes(b"# not a recording\n" * 20)
    with pytest.raises(BagDataError) as ei:
        read_bags([good, bad], TOPICS)
    assert f"{bad}: not an mcap file (bad magic)" in str(ei.value) and "skip_bad" not in str(ei.value)
    eps, summ = read_bags([good, bad], TOPICS, skip_bad=True)
    assert np.array_equal(frames_of(eps), truth) and list(summ.skipped_files) == [str(bad)]
