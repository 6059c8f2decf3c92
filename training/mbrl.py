"""Stage 3 (`mbrl`): plan in the simulator, append the episodes to the replay bags, re-fit; repeat.

Round r: the current model + planner (with exploration noise) records `mbrl.episodes_per_iter`
episodes into `<out_dir>/mbrl/bags/round_<r>`; Stage-2 training continues from the current
weights for `mbrl.fit_steps_per_iter` steps on all bags (collect + every round so far) in
`<out_dir>/mbrl/round_<r>`; closed-loop evaluation runs every `mbrl.eval_every` rounds (and once
on the starting model, so a learning curve starts at the seed data). This is PlaNet's outer loop
(Hafner et al. 2019, alg. 1: collect one episode with the planner + exploration noise, then C
model updates on all data so far).

`<out_dir>/mbrl/state.json` records finished rounds, so a killed run resumes at the round it was
in (and that round's re-fit resumes from its own checkpoints). Each round also records its
environment steps and frames (steps x action repeat, the unit of the DMC literature), and its
wall time split into planning (inside the policy), environment (stepping, rendering, writing the
bag) and training. Evaluation episodes use their own seeds (`EVAL_SEED` + 1000 x run.seed + i);
training episodes use `episode_seed(run.seed + 100003 (r + 1), i)`, so the two never coincide.

`mbrl.loop=online` is TD-MPC's loop instead (Hansen et al. 2022; `mbrl_online`): `mbrl.seed_episodes` of
uniform random actions, one burst of `mbrl.seed_updates` updates on them, then every env step of a planner
episode is followed by `mbrl.updates_per_step` updates (`training.td.TDLearner`: model, Q ensemble, actor)
on windows of an in-memory replay that finished episodes are appended to (`training.replay`; one `.npz`
per episode, never re-decoded), drawn uniformly or, with `mbrl.priority_alpha` > 0, by TD-error priority
as TD-MPC does; the exploration noise can fall over the run (`mbrl.explore_std_final`). The planner
bootstraps with Q and is seeded by the actor (`plan.objectives.reward.terminal_q`,
`plan.planner.policy_prior_samples`). After every episode the whole agent (model, optimisers, target Q,
replay priorities, generators, the global ones included, counters) is written to `<out_dir>/mbrl/agent`, so a
killed run resumes at the episode it was in and goes on as it would have; `training.run_pack` carries it to
another machine or session with its episodes as actions (the frames are re-rendered).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time

import numpy as np
import torch

from moejepa_ros.model.checkpoint import load_checkpoint, save_derived

from .config import ConfigError, TrainConfig, grey_ranges
from .datasets import bag_sources, run_subdir
from .distributed import DistInfo
from .evaluate import closed_loop
from .export import find_model
from .logging_utils import log
from .run_dir import last_complete, swap_in, write_atomic
from .train_state import capture_rng, restore_rng

EVAL_SEED = 10_000


def _round_cfg(cfg: TrainConfig) -> TrainConfig:
    steps = cfg.mbrl.fit_steps_per_iter
    return dataclasses.replace(
        cfg,
        train=dataclasses.replace(cfg.train, steps=steps, stop_at=0),
        optim=dataclasses.replace(cfg.optim, warmup_steps=min(cfg.optim.warmup_steps, max(1, steps // 10))),
        run=dataclasses.replace(cfg.run, resume="auto"),
        fit=dataclasses.replace(cfg.fit, init_encoder=""),
    )


class _TimedPolicy:
    """Wraps a policy: counts its calls (= env steps) and the seconds spent inside it (planning)."""

    def __init__(self, policy):
        self.policy, self.calls, self.seconds = policy, 0, 0.0

    def reset(self) -> None:
        self.policy.reset()

    def __call__(self, obs, info):
        t = time.perf_counter()
        a = self.policy(obs, info)
        self.seconds += time.perf_counter() - t
        self.calls += 1
        return a


def action_repeat_of(env_name: str, env_kwargs: dict) -> int:
    """Simulator steps per env step (DMC's action repeat; 1 for other envs): frames = steps x this."""
    if not env_name.startswith("dmc:"):
        return 1
    from moejepa_ros.sim import make_env

    env = make_env(env_name, **env_kwargs)
    try:
        return int(getattr(env.unwrapped, "action_repeat", 1))
    finally:
        env.close()


def _seed_env_steps(cfg: TrainConfig, sources) -> int:
    """Env steps in the base (seed-phase) data: images minus one terminal image per episode."""
    if not sources:
        return 0
    from training.data.cache import build_cache
    from training.data.report import report_data
    from training.data.topics import TopicConfig

    from .stages import model_config

    topics = TopicConfig.from_dict(dict(cfg.data.topics)) if cfg.data.topics else TopicConfig()
    cache = build_cache(
        sources,
        cfg.data.cache_dir or run_subdir(cfg, "cache"),
        topics,
        model_config(cfg).image_size,
        skip_bad=cfg.data.skip_bad,
        ranges=grey_ranges(cfg.data),
    )
    report_data(cache, cfg.run.out_dir)
    return int(np.sum(np.maximum(cache.episode_lengths - 1, 0)))


def _eval(cfg: TrainConfig, ckpt: str, device, frames: int) -> dict:
    model, meta = load_checkpoint(ckpt, device)
    return _evaluate(cfg, model, meta, device, frames)


def planner_horizon_at(m, horizon: int, env_steps: int) -> int:
    """The online loop's planning horizon after `env_steps`: `horizon`, or TD-MPC's ramp (Hansen et al. 2022)
    int(1 + (horizon - 1) * env_steps / horizon_ramp_steps), capped at `horizon`."""
    if m.horizon_ramp_steps <= 0:
        return int(horizon)
    return int(min(horizon, 1 + (horizon - 1) * env_steps / m.horizon_ramp_steps))


def _write_state(path: str, state: dict) -> None:
    def plain(o):  # what json cannot write: non-finite floats as null, anything else as its str
        return None if isinstance(o, float) and not math.isfinite(o) else str(o)

    write_atomic(path, json.dumps(state, indent=1, default=plain))


def mbrl(cfg: TrainConfig, device: torch.device) -> dict:
    """Stage 3 by `mbrl.loop`: PlaNet-style rounds on bags, or TD-MPC's online loop."""
    return mbrl_online(cfg, device) if cfg.mbrl.loop == "online" else mbrl_rounds(cfg, device)


def mbrl_rounds(cfg: TrainConfig, device: torch.device) -> dict:
    from moejepa_ros.control import PlannerPolicy
    from training.rollouts import record_rollouts

    from .stages import train_stage

    m = cfg.mbrl
    root = run_subdir(cfg, "mbrl")
    os.makedirs(root, exist_ok=True)
    state_path = os.path.join(root, "state.json")
    state = {"rounds": [], "history": []}
    if os.path.isfile(state_path):
        with open(state_path) as f:
            state = json.load(f)
    start = len(state["rounds"])
    current = state["rounds"][-1]["checkpoint"] if state["rounds"] else find_model(cfg, "", order=("fit",))
    base_sources = [s for s in bag_sources(dataclasses.replace(cfg, data=cfg.data)) if not s.endswith("mbrl/bags")]
    env_kwargs = dict(cfg.collect.env_kwargs)
    env_kwargs.update(m.env_kwargs)
    if "action_repeat" not in state:
        state["action_repeat"] = action_repeat_of(cfg.collect.env, env_kwargs)
        state["seed_env_steps"] = _seed_env_steps(cfg, base_sources)
    repeat = int(state["action_repeat"])
    frames = (state["seed_env_steps"] + sum(e.get("env_steps", 0) for e in state["rounds"])) * repeat
    if start == 0 and m.eval_episodes > 0 and m.eval_every > 0 and "initial_eval" not in state:
        state["initial_eval"] = _eval(cfg, current, device, frames)
        _write_state(state_path, state)
    cache_dir = cfg.data.cache_dir or run_subdir(cfg, "cache")
    info = DistInfo()
    t0 = time.perf_counter()
    for r in range(start, m.iterations):
        model, meta = load_checkpoint(current, device)
        pol = _TimedPolicy(
            PlannerPolicy(
                model,
                cfg.plan.planner,
                cfg.plan.objectives,
                meta["action_low"],
                meta["action_high"],
                device,
                explore_std=m.explore_std,
                seed=cfg.run.seed + r,
            )
        )
        bag_dir = os.path.join(root, "bags", f"round_{r:03d}")
        shutil.rmtree(bag_dir, ignore_errors=True)  # a half-written round from a killed run
        tr = time.perf_counter()
        record_rollouts(
            cfg.collect.env,
            pol,
            m.episodes_per_iter,
            bag_dir,
            workers=1,
            storage=cfg.collect.storage,
            seed=cfg.run.seed + 100_003 * (r + 1),
            max_steps=m.max_episode_steps,
            env_kwargs=env_kwargs,
        )
        collect_s = time.perf_counter() - tr
        frames += pol.calls * repeat
        rounds = [os.path.join(root, "bags", f"round_{i:03d}") for i in range(r + 1)]
        caches_before = set(os.listdir(cache_dir)) if os.path.isdir(cache_dir) else set()
        res = train_stage(
            _round_cfg(cfg),
            2,
            f"mbrl/round_{r:03d}",
            info,
            device,
            sources=base_sources + rounds,
            init_weights=model,
            desc=f"mbrl {r}",
        )
        new_caches = sorted(set(os.listdir(cache_dir)) - caches_before) if os.path.isdir(cache_dir) else []
        entry = {
            "round": r,
            "checkpoint": res.checkpoint,
            "env_steps": pol.calls,
            "frames": frames,
            "collect_seconds": round(collect_s, 2),
            "plan_seconds": round(pol.seconds, 2),
            "env_seconds": round(collect_s - pol.seconds, 2),
            "fit_seconds": round(res.elapsed_s, 2),
            "fit_steps": m.fit_steps_per_iter,
            "caches": new_caches,
            "last": res.last_terms,
        }
        if m.eval_episodes > 0 and (m.eval_every and (r + 1) % m.eval_every == 0 or r == m.iterations - 1):
            entry["eval"] = _eval(cfg, res.checkpoint, device, frames)
        # the previous round's decoded cache is superseded by this round's (it holds all bags so far)
        for prev in state["rounds"][-1:]:
            for c in prev.get("caches", []):
                shutil.rmtree(os.path.join(cache_dir, c), ignore_errors=True)
        state["rounds"].append(entry)
        current = res.checkpoint
        _write_state(state_path, state)
    if not state["rounds"]:
        raise ConfigError("mbrl: no rounds were run (mbrl.iterations must be >= 1)")
    final = os.path.join(root, "model.safetensors")
    model, meta = load_checkpoint(current)
    tr_meta = dict(meta.get("training") or {})
    tr_meta.update(subcommand="mbrl", rounds=len(state["rounds"]), frames=frames)
    save_derived(final, model, meta, tr_meta)
    return {
        "checkpoint": final,
        "rounds": len(state["rounds"]),
        "frames": frames,
        "eval": [e.get("eval", {}).get("success_rate") for e in state["rounds"]],
        "returns": [e["eval"]["return_mean"] for e in state["rounds"] if "eval" in e],
        "seconds": round(time.perf_counter() - t0, 2),
    }


# ------------------------------------------------------------------------------------------ online loop
AGENT_TENSORS = "agent_state.safetensors"
PRIORITIES = "replay.priorities"  # the prioritized replay's per-window priorities, among the agent tensors


def online_reset_seed(run_seed: int, episode: int) -> int:
    """The simulator's reset seed of the online loop's training episode `episode` (0-based, seed ones included)."""
    return run_seed * 100_003 + episode + 1


def explore_std_at(m, env_steps: int) -> float:
    """The online loop's exploration noise after `env_steps`: `explore_std`, or TD-MPC's linear fall from it
    to `explore_std_final` over `explore_decay_steps`."""
    if m.explore_std_final < 0:
        return float(m.explore_std)
    f = min(1.0, env_steps / m.explore_decay_steps)
    return float(m.explore_std + f * (m.explore_std_final - m.explore_std))


def _save_agent(root: str, model, meta: dict, learner, state: dict, replay) -> None:
    """Model + learner state + JSON into `<root>/agent`, swapped in whole (a kill leaves the previous one)."""
    from safetensors.torch import save_file

    from moejepa_ros.model.checkpoint import save_checkpoint

    tmp, final = os.path.join(root, "agent.tmp"), os.path.join(root, "agent")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_checkpoint(os.path.join(tmp, "model.safetensors"), model, meta)
    js, tensors = learner.state()
    if replay.alpha > 0:
        tensors[PRIORITIES] = torch.from_numpy(replay.priorities.copy())
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(tmp, AGENT_TENSORS))
    _write_state(os.path.join(tmp, "state.json"), {**state, "learner": js})
    swap_in(tmp, final)


def _agent_dir(root: str) -> str | None:
    """The last complete agent checkpoint (`agent`, or `agent.old` when a kill hit the swap)."""
    return last_complete(os.path.join(root, "agent"))


def _evaluate(cfg: TrainConfig, model, meta: dict, device, frames: int, horizon: int | None = None) -> dict:
    """Closed-loop returns of `model` on the evaluation episodes (seeds apart from training's), planning
    `horizon` steps ahead when given (the online loop's ramp), else the planner config's."""
    m = cfg.mbrl
    if horizon is not None:
        cfg = dataclasses.replace(
            cfg, plan=dataclasses.replace(cfg.plan, planner={**cfg.plan.planner, "horizon": horizon})
        )
    t = time.perf_counter()
    ev = closed_loop(
        cfg,
        model,
        meta,
        m.eval_episodes,
        m.max_episode_steps,
        device,
        env_kwargs=m.env_kwargs,
        seed=EVAL_SEED + 1000 * cfg.run.seed,
    )
    ev.update(
        return_std=float(np.std(ev["returns"])), frames=int(frames), eval_seconds=round(time.perf_counter() - t, 2)
    )
    log.info("mbrl eval at %d frames: return %.1f +- %.1f", frames, ev["return_mean"], ev["return_std"])
    return ev


def online_learner(cfg: TrainConfig, model, low, high, seed: int):
    """The online loop's TDLearner of `model` as `cfg` sets it (model.losses.gamma, optim.*, mbrl.*)."""
    from .td import TDLearner

    m = cfg.mbrl
    return TDLearner(
        model,
        low,
        high,
        gamma=model.cfg.losses.gamma,
        lr=cfg.optim.lr,
        encoder_lr_scale=cfg.optim.encoder_lr_scale,
        grad_clip=cfg.optim.grad_clip,
        tau=m.tau,
        n_step=m.n_step,
        q_target=m.q_target,
        idm_weight=m.idm_weight,
        seed=seed,
    )


def online_replay(cfg: TrainConfig, frame_stack: int, root: str):
    """The online loop's EpisodeReplay under `root` as `cfg` sets it (data.horizon, augmentation, priorities)."""
    from .replay import EpisodeReplay

    m = cfg.mbrl
    return EpisodeReplay(
        root,
        frame_stack,
        cfg.data.horizon,
        cfg.data.augment_shift,
        priority_alpha=m.priority_alpha,
        priority_beta=m.priority_beta,
        augment_rotate=cfg.data.augment_rotate,
    )


def mbrl_online(cfg: TrainConfig, device: torch.device) -> dict:
    """TD-MPC's online loop (see the module docstring); returns the final checkpoint and the curve."""
    from safetensors.torch import load_file

    from moejepa_ros.control import PlannerPolicy
    from moejepa_ros.control.preprocess import preprocess
    from moejepa_ros.model.checkpoint import save_checkpoint
    from moejepa_ros.model.world_model import WorldModel
    from moejepa_ros.sim import make_env

    from .stages import model_config

    m = cfg.mbrl
    root = run_subdir(cfg, "mbrl")
    os.makedirs(root, exist_ok=True)
    env_kwargs = {**cfg.collect.env_kwargs, **m.env_kwargs}
    env = make_env(cfg.collect.env, **env_kwargs)
    low = np.asarray(env.action_space.low, np.float32)
    high = np.asarray(env.action_space.high, np.float32)
    repeat = int(getattr(env.unwrapped, "action_repeat", 1))
    mc = model_config(cfg, int(low.shape[0]))
    if mc.num_q < 1:
        raise ConfigError(f"model.num_q={mc.num_q}: mbrl.loop=online learns a Q ensemble, set model.num_q >= 1")
    torch.manual_seed(cfg.run.seed)  # the initial weights, and the router's noise stream, differ between seeds
    model = WorldModel(mc).to(device)
    meta = {
        "action_low": low.tolist(),
        "action_high": high.tolist(),
        "preprocessing": dict(model.preprocessing, resize="cv2.INTER_AREA to image_size"),
        "training": {
            "subcommand": "mbrl",
            "loop": "online",
            "env": cfg.collect.env,
            "env_kwargs": env_kwargs,
            "reward_scale": cfg.data.reward_scale,
        },
    }
    learner = online_learner(cfg, model, low, high, cfg.run.seed)
    replay = online_replay(cfg, mc.frame_stack, os.path.join(root, "episodes"))
    policy = PlannerPolicy(
        model, cfg.plan.planner, cfg.plan.objectives, low, high, device, explore_std=m.explore_std, seed=cfg.run.seed
    )
    rng = np.random.default_rng([cfg.run.seed, 20])
    state = {"episodes": 0, "env_steps": 0, "updates": 0, "action_repeat": repeat, "log": [], "evals": []}
    agent = _agent_dir(root)
    if agent is not None:
        with open(os.path.join(agent, "state.json")) as f:
            state = json.load(f)
        model.load_state_dict(load_file(os.path.join(agent, "model.safetensors"), device=str(device)))
        tensors = load_file(os.path.join(agent, AGENT_TENSORS), device=str(device))
        learner.load_state(state.pop("learner"), tensors)
        rng.bit_generator.state = state["rng"]
        policy.rng.bit_generator.state = state["explore_rng"]
        if "global_rng" in state:  # torch's (the router's noise), numpy's and Python's global generators
            restore_rng(state["global_rng"])
        replay.load(state["episodes"])
        saved = tensors.get(PRIORITIES)
        if replay.alpha > 0 and saved is not None and len(saved) == len(replay.priorities):
            replay.priorities = saved.cpu().double().numpy()
        log.info("mbrl: resumed after episode %d (%d frames)", state["episodes"], state["env_steps"] * repeat)
    if state.setdefault("run_seed", cfg.run.seed) != cfg.run.seed:  # the episodes' reset seeds follow from it
        raise ConfigError(
            f"run.seed={cfg.run.seed}: {root} was started with run.seed={state['run_seed']}; resume it so"
        )
    model.eval()
    full_horizon = policy.controller.cfg.horizon
    total = m.seed_episodes + m.iterations
    per_update = float(m.updates_per_step)
    t0 = time.perf_counter()

    def updates(n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            batch = replay.sample(cfg.data.batch_size, rng)
            terms = learner.update(batch)
            if "index" in batch:
                replay.update_priorities(batch["index"], learner.last_priority)
        state["updates"] += n
        if n:
            state["last_terms"] = terms
        return time.perf_counter() - t

    for ep in range(state["episodes"], total):
        seeding = ep < m.seed_episodes
        split = {"env": 0.0, "planning": 0.0, "training": 0.0}
        t = time.perf_counter()
        obs, info = env.reset(seed=online_reset_seed(cfg.run.seed, ep))
        policy.reset()
        policy.explore_std = explore_std_at(m, state["env_steps"])
        horizon = planner_horizon_at(m, full_horizon, state["env_steps"])
        if horizon != policy.controller.cfg.horizon:
            policy.controller.update(planner_cfg=policy.controller.cfg.replace(horizon=horizon))
        split["env"] += time.perf_counter() - t
        frames, actions, rewards, owed, ret = [preprocess(obs, mc.image_size)], [], [], 0.0, 0.0
        for step in range(m.max_episode_steps):
            t = time.perf_counter()
            a = rng.uniform(low, high).astype(np.float32) if seeding else policy(obs, {"step": step})
            split["planning"] += time.perf_counter() - t
            t = time.perf_counter()
            obs, r, term, trunc, info = env.step(a)
            split["env"] += time.perf_counter() - t
            frames.append(preprocess(obs, mc.image_size))
            actions.append(np.asarray(a, np.float32))
            rewards.append(float(r) * cfg.data.reward_scale)
            ret += float(r)
            if not seeding and len(replay):
                owed += per_update
                split["training"] += updates(int(owed))
                owed -= int(owed)
            if term or trunc:
                break
        replay.add(np.stack(frames), np.stack(actions), np.asarray(rewards, np.float32))
        state["env_steps"] += len(actions)
        if ep == m.seed_episodes - 1:  # the burst on the seed data
            split["training"] += updates(replay.steps if m.seed_updates < 0 else m.seed_updates)
        frames_now = state["env_steps"] * repeat
        entry = {"episode": ep, "seed": seeding, "steps": len(actions), "frames": frames_now, "return": round(ret, 2)}
        if not seeding:
            entry["explore_std"] = round(policy.explore_std, 4)
            entry["horizon"] = policy.controller.planner.cfg.horizon  # the horizon the planner ran with
        entry.update({f"{k}_seconds": round(v, 2) for k, v in split.items()})
        state["log"].append(entry)
        planned = ep + 1 - m.seed_episodes
        if m.eval_episodes > 0 and planned >= 0 and ((m.eval_every and planned % m.eval_every == 0) or ep == total - 1):
            # as TD-MPC, evaluated at the horizon of the episode just collected
            state["evals"].append(_evaluate(cfg, model, meta, device, frames_now, horizon))
        log.info(
            "mbrl episode %d (%s): return %.1f, %d frames, %d updates; s env %.1f plan %.1f train %.1f",
            ep,
            "seed" if seeding else "planner",
            ret,
            frames_now,
            state["updates"],
            split["env"],
            split["planning"],
            split["training"],
        )
        state["episodes"] = ep + 1
        state["rng"] = rng.bit_generator.state
        state["explore_rng"] = policy.rng.bit_generator.state
        state["global_rng"] = capture_rng()
        _save_agent(root, model, meta, learner, state, replay)
    env.close()
    final = os.path.join(root, "model.safetensors")
    frames_now = state["env_steps"] * repeat
    save_checkpoint(final, model, {**meta, "training": {**meta["training"], "frames": frames_now, "episodes": total}})
    return {
        "checkpoint": final,
        "episodes": state["episodes"],
        "frames": frames_now,
        "updates": state["updates"],
        "returns": [e["return_mean"] for e in state["evals"]],
        "seconds": round(time.perf_counter() - t0, 2),
    }
