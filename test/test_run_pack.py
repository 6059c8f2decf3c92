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
    # both go on by one planner episode as a run that was never stopped: the same actions, returns and evaluation
    ra, rb = run(capsys, a, "mbrl.iterations=2"), run(capsys, b, "mbrl.iterations=2")
    rc = run(capsys, tmp_path / "c", "mbrl.iterations=2")
    assert ra["episodes"] == rb["episodes"] == rc["episodes"] == 3 and ra["returns"] == rb["returns"] == rc["returns"]
    for other in (b, tmp_path / "c"):
        assert np.array_equal(episodes(a)[2]["actions"], episodes(other)[2]["actions"])


def test_a_pack_that_does_not_re_render_is_refused_and_writes_nothing(tmp_path, capsys):
    a, pack = tmp_path / "a", tmp_path / "pack"
    run(capsys, a, "mbrl.iterations=1")
    # an agent saved before it kept its run.seed is packed with the seed given, which its resumed run then keeps
    state_path = a / "mbrl" / "agent" / "state.json"
    state = json.loads(state_path.read_text())
    del state["run_seed"]
    state_path.write_text(json.dumps(state))
    assert run_pack.main(["pack", str(a), str(pack)]) == 2
    assert "does not record run.seed" in capsys.readouterr().err
    assert run_pack.main(["pack", str(a), str(pack), "--seed", "3"]) == 0
    assert json.loads((pack / "agent" / "state.json").read_text())["run_seed"] == 3
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
    # a pack is never written over a run, nor over a directory that is not a pack, nor with another run.seed
    assert run_pack.main(["pack", str(a), str(a / "inside")]) == 2
    assert "outside the run directory" in capsys.readouterr().err
    (tmp_path / "notes").mkdir()
    assert run_pack.main(["pack", str(a), str(tmp_path / "notes")]) == 2
    assert "is not a run pack" in capsys.readouterr().err
    state_path.write_text(json.dumps({**state, "run_seed": 3}))
    assert run_pack.main(["pack", str(a), str(tmp_path / "p3"), "--seed", "4"]) == 2
    assert "started with run.seed=3, not 4" in capsys.readouterr().err
    # a cut episodes file, a pack without its agent, and a run that has not finished an episode are named
    (pack / run_pack.EPISODES).write_bytes((pack / run_pack.EPISODES).read_bytes()[:100])
    assert run_pack.main(["unpack", str(pack), str(tmp_path / "b")]) == 2
    assert "not a readable run pack" in capsys.readouterr().err
    np.savez_compressed(pack / run_pack.EPISODES, **arrays)
    (pack / "agent" / "state.json").unlink()
    assert run_pack.main(["unpack", str(pack), str(tmp_path / "b")]) == 2
    assert "missing ['state.json']" in capsys.readouterr().err
    assert run_pack.main(["pack", str(tmp_path / "empty"), str(tmp_path / "p2")]) == 2
    assert "nothing to pack" in capsys.readouterr().err


def test_a_run_resumes_only_with_its_own_seed(tmp_path, capsys):
    run(capsys, tmp_path, "mbrl.iterations=1")
    rc = main(["mbrl", "-c", "dmc", f"run.out_dir={tmp_path}", *TINY, "mbrl.iterations=2", "run.seed=4"])
    assert rc == 2 and "started with run.seed=3" in capsys.readouterr().err
