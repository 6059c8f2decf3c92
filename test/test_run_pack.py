"""`training.run_pack` on a real online run (MuJoCo cartpole, tiny): the pack keeps the agent and the actions,
unpacking re-renders the frames exactly, and the unpacked run goes on as the original does."""

import json
import os

import numpy as np
import pytest

from testing.models import TINY_DMC_AGENT
from training import run_pack
from training.cli import main
from training.replay import episode_path

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = TINY_DMC_AGENT + ["mbrl.seed_episodes=1", "mbrl.eval_every=1", "mbrl.eval_episodes=1", "run.seed=3"]


def run(capsys, out, *extra):
    rc = main(["mbrl", "-c", "dmc", f"run.out_dir={out}", *TINY, *extra])
    captured = capsys.readouterr()
    assert rc == 0, captured.err[-2000:]
    return json.loads(captured.out.strip().splitlines()[-1])


def episodes(out):
    root, i, eps = os.path.join(out, "mbrl", "episodes"), 0, []
    while os.path.isfile(episode_path(root, i)):
        with np.load(episode_path(root, i)) as d:
            eps.append({k: d[k] for k in ("frames", "actions", "rewards")})
        i += 1
    return eps


def test_an_unpacked_run_has_the_same_frames_and_goes_on_as_the_original(tmp_path, capsys):
    a, b, pack = tmp_path / "a", tmp_path / "b", tmp_path / "pack"
    run(capsys, a, "mbrl.iterations=1")
    manifest = run_pack.pack(str(a), str(pack))
    assert manifest["episodes"] == 2 and manifest["run_seed"] == 3 and manifest["env"] == "dmc:cartpole_swingup"
    assert not any(f.endswith(".npz") and f.startswith("episode_") for f in os.listdir(pack))  # no frames kept
    assert run_pack.main(["unpack", str(pack), str(b)]) == 0
    ea, eb = episodes(a), episodes(b)
    assert len(ea) == len(eb) == 2
    for x, y in zip(ea, eb):
        for k in x:
            assert np.array_equal(x[k], y[k]), k
    for name in run_pack.AGENT_FILES:
        assert (a / "mbrl" / "agent" / name).read_bytes() == (b / "mbrl" / "agent" / name).read_bytes()
    # both go on by one planner episode: the same actions, returns and evaluation
    ra, rb = run(capsys, a, "mbrl.iterations=2"), run(capsys, b, "mbrl.iterations=2")
    assert ra["episodes"] == rb["episodes"] == 3 and ra["returns"] == rb["returns"]
    assert np.array_equal(episodes(a)[2]["actions"], episodes(b)[2]["actions"])


def test_a_pack_that_does_not_re_render_is_refused_and_writes_nothing(tmp_path, capsys):
    a, pack = tmp_path / "a", tmp_path / "pack"
    run(capsys, a, "mbrl.iterations=1")
    assert run_pack.main(["pack", str(a), str(pack)]) == 0
    capsys.readouterr()
    # unpacking next to the run it came from is refused: the directory holds an online run
    assert run_pack.main(["unpack", str(pack), str(a)]) == 2
    assert "exists" in capsys.readouterr().err
    # one action of the second episode changed: its frames are not the recorded ones
    with np.load(pack / run_pack.EPISODES) as d:
        arrays = {k: d[k].copy() for k in d.files}
    arrays["actions"][int(arrays["lengths"][0]) + 2] *= -1
    np.savez_compressed(pack / run_pack.EPISODES, **arrays)
    assert run_pack.main(["unpack", str(pack), str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "episode 1 re-rendered to other" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b" / "mbrl").exists()
    # a pack without its agent, and a run that has not finished an episode, are named
    (pack / "agent" / "state.json").unlink()
    assert run_pack.main(["unpack", str(pack), str(tmp_path / "b")]) == 2
    assert "missing ['state.json']" in capsys.readouterr().err
    assert run_pack.main(["pack", str(tmp_path / "empty"), str(tmp_path / "p2")]) == 2
    assert "nothing to pack" in capsys.readouterr().err


def test_a_run_resumes_only_with_its_own_seed(tmp_path, capsys):
    run(capsys, tmp_path, "mbrl.iterations=1")
    rc = main(["mbrl", "-c", "dmc", f"run.out_dir={tmp_path}", *TINY, "mbrl.iterations=2", "run.seed=4"])
    assert rc == 2 and "started with run.seed=3" in capsys.readouterr().err
