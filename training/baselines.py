"""Baselines as switches of the same pipeline (`baseline.kind`).

- `dense`: the predictor with one expert at equal *active* parameters (`model_config` applies
  `dense_equivalent`); `no_pretrain`: Stage 2 ignores `fit.init_encoder`.
- `pixel_recon`: a decoder on the latents and a pixel reconstruction loss of the current frame
  and of each predicted future frame, added to the world-model loss (a Dreamer/PlaNet-style
  generative objective; set `model.losses.latent=0` for a pure reconstruction model). The
  decoder is a training-side module wrapped around the unchanged `WorldModel`.
- `sac` / `ppo`: a model-free agent from pixels with stable-baselines3 on the gymnasium env, seeing the
  last `FRAME_STACK` frames stacked on channels (one frame shows no velocity); SAC follows DrQ (Kostrikov
  et al. 2021): random-shift augmentation of the pixels while training, a small conv encoder, 1000 seed
  steps, one update per env step, lr 1e-3, tau 0.01, initial temperature 0.1 and target entropy -|A| (SB3's
  default). Weights saved as safetensors + JSON (no SB3 zip, which pickles); the run evaluates every
  `baseline.eval_every` env steps on the MBRL loop's evaluation seeds and resumes from its last evaluation
  (training/model_free_state.py).
"""

from __future__ import annotations

import json
import os
import time

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from moejepa_ros.model.config import ModelConfig

from .logging_utils import log


class PixelReconstruction(nn.Module):
    """Conv-transpose decoder z -> RGB frame, and `loss(model, batch, stage)` = WM loss + recon."""

    def __init__(self, mc: ModelConfig, weight: float = 1.0, width: int = 32):
        super().__init__()
        if mc.image_size % 16:
            raise ValueError(f"pixel_recon: image_size={mc.image_size} must be divisible by 16")
        self.weight, self.s0, self.width = float(weight), mc.image_size // 16, width
        self.fc = nn.Linear(mc.latent_dim, 4 * width * self.s0 * self.s0)
        layers = []
        ch = 4 * width
        for out in (2 * width, width, width):
            layers += [nn.ConvTranspose2d(ch, out, 4, 2, 1), nn.SiLU()]
            ch = out
        layers += [nn.ConvTranspose2d(ch, 3, 4, 2, 1)]
        self.deconv = nn.Sequential(*layers)
        self.k = mc.frame_stack

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z [N, D] -> frames [N, 3, S, S] in the encoder's scale (x/255 - 0.5)."""
        h = self.fc(z).reshape(-1, 4 * self.width, self.s0, self.s0)
        return self.deconv(h)

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], stage: int):
        total, terms = model.loss(batch, stage)
        frames = batch["frames"]
        k = self.k
        B, T = frames.shape[:2]
        H = T - k
        stacks = frames.unfold(1, k, 1).permute(0, 1, 5, 2, 3, 4)  # [B, H+1, k, S, S, 3]
        z0 = model.encode(stacks[:, 0])
        zs = [z0]
        if stage == 2:
            acts = batch["actions"][:, k - 1 : k - 1 + H].float()
            zs.append(model.rollout(z0, acts).reshape(-1, z0.shape[-1]))
            target = frames[:, k - 1 :]  # last frame of stacks 0..H
        else:
            target = frames[:, k - 1 : k]
        z = torch.cat([zs[0]] + zs[1:], 0) if len(zs) > 1 else zs[0]
        tgt = torch.cat([target[:, 0]] + ([target[:, 1:].reshape(-1, *target.shape[2:])] if len(zs) > 1 else []), 0)
        tgt = tgt.permute(0, 3, 1, 2).float() / 255.0 - 0.5
        recon = F.mse_loss(self.decode(z).float(), tgt)
        terms = dict(terms)
        terms["recon"] = recon.detach()
        total = total + self.weight * recon
        terms["total"] = total.detach()
        return total, terms


# ------------------------------------------------------------------------------ SB3
FRAME_STACK = 3  # frames a model-free agent sees (DrQ / SAC-AE stack 3)


class ChannelStack(gym.ObservationWrapper):
    """RGB frames [S, S, 3] -> the last k frames concatenated on channels [S, S, 3k], oldest first
    (an episode starts from its first frame repeated k times, as the planner's frame stack)."""

    def __init__(self, env: gym.Env, k: int = FRAME_STACK):
        super().__init__(env)
        h, w, c = env.observation_space.shape
        self.k, self.frames = int(k), []
        self.observation_space = gym.spaces.Box(0, 255, (h, w, c * self.k), np.uint8)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.frames = [obs] * self.k
        return np.concatenate(self.frames, -1), info

    def observation(self, obs: np.ndarray) -> np.ndarray:
        self.frames = self.frames[1:] + [obs]
        return np.concatenate(self.frames, -1)


def shift_extractor(pad: int = 4, features_dim: int = 50):
    """SB3 features extractor class: DrQ's random shift (replicate-pad by `pad`, random crop back) while the
    policy trains, then four 3x3 convs of 32 channels and a linear layer + LayerNorm + tanh (DrQ's encoder)."""
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class ShiftConvEncoder(BaseFeaturesExtractor):
        def __init__(self, observation_space: gym.spaces.Box):
            super().__init__(observation_space, features_dim)
            c, h, w = observation_space.shape
            self.pad = int(pad)
            self.convs = nn.Sequential(
                nn.Conv2d(c, 32, 3, 2), nn.ReLU(),
                nn.Conv2d(32, 32, 3, 1), nn.ReLU(),
                nn.Conv2d(32, 32, 3, 1), nn.ReLU(),
                nn.Conv2d(32, 32, 3, 1), nn.ReLU(),
                nn.Flatten(),
            )  # fmt: skip
            with torch.no_grad():
                n = self.convs(torch.zeros(1, c, h, w)).shape[1]
            self.head = nn.Sequential(nn.Linear(n, features_dim), nn.LayerNorm(features_dim), nn.Tanh())

        def shift(self, x: torch.Tensor) -> torch.Tensor:
            """x [B, C, S, S] moved by up to `pad` pixels each way (one offset per sample), edges replicated."""
            S = x.shape[-1]
            padded = F.pad(x, (self.pad,) * 4, mode="replicate")
            off = torch.randint(0, 2 * self.pad + 1, (x.shape[0], 2)).tolist()
            return torch.stack([padded[i, :, y : y + S, z : z + S] for i, (y, z) in enumerate(off)])

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            if self.training and self.pad:
                obs = self.shift(obs)
            return self.head(self.convs(obs))

    return ShiftConvEncoder


def evaluate_agent(agent, make_env_fn, episodes: int, seed: int) -> list[float]:
    """Deterministic returns of `agent` on `episodes` episodes from seeds `seed`, `seed + 1`, ... (the MBRL
    loop's evaluation seeds, training/mbrl.py, so both meet the same starts)."""
    env, returns = make_env_fn(), []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            action, _ = agent.predict(obs, deterministic=True)
            obs, r, terminated, truncated, _ = env.step(action)
            total, done = total + float(r), terminated or truncated
        returns.append(total)
    env.close()
    return returns


def run_model_free(cfg, run_dir: str) -> dict:
    """Train SB3 SAC/PPO on `collect.env` (stacked frames) for `baseline.rl_steps` steps, evaluating every
    `baseline.eval_every` steps (PPO: after the whole rollout that crosses it). Each evaluation saves the
    policy, `result.json` (the curve so far) and the resumable state in `<run_dir>/resume`
    (training/model_free_state.py), so a killed or extended run continues from its last evaluation:
    `run.resume=auto` (default) resumes from there, `never` moves an earlier run aside, a directory resumes
    from that state. A resumed run reseeds its generators with the run seed + env steps done (it does not
    replay the first run's random draws) and starts a new episode: the one cut by a kill is lost, none when
    `eval_every` is a multiple of the episode length."""
    from safetensors.torch import save_file
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.monitor import Monitor

    from moejepa_ros.sim import make_env

    from .mbrl import EVAL_SEED
    from .model_free_state import load_state, save_state
    from .run_dir import move_aside, write_atomic
    from .train_state import ResumeError

    kind = cfg.baseline.kind
    env_kwargs = dict(cfg.collect.env_kwargs)
    if cfg.collect.env == "two_rooms":
        env_kwargs.setdefault("mode", "goal")
        env_kwargs.setdefault("show_goal", True)  # a reactive policy must see its goal
    env_kwargs.update(cfg.baseline.rl_env_kwargs)

    def make_plain() -> gym.Env:
        return ChannelStack(gym.wrappers.TimeLimit(make_env(cfg.collect.env, **env_kwargs), cfg.eval.max_episode_steps))

    if cfg.run.resume == "never":
        move_aside(run_dir)
    env = Monitor(make_plain())
    os.makedirs(run_dir, exist_ok=True)
    common = dict(seed=cfg.run.seed, verbose=0, device="cpu", tensorboard_log=os.path.join(run_dir, "tb"))
    steps = int(cfg.baseline.rl_steps)
    if kind == "sac":
        agent = SAC(
            "CnnPolicy",
            env,
            learning_rate=1e-3,
            buffer_size=min(100_000, max(1000, steps)),
            learning_starts=min(1000, steps // 4),
            batch_size=128,
            tau=0.01,
            train_freq=1,
            gradient_steps=1,
            ent_coef="auto_0.1",
            # DrQ moves the target critic every 2nd update; SB3 counts this interval within one train() call,
            # so with one gradient step per call the target moves (by tau) after every update whatever it is
            target_update_interval=1,
            policy_kwargs=dict(features_extractor_class=shift_extractor(), net_arch=[256, 256]),
            **common,
        )
    else:
        agent = PPO("CnnPolicy", env, n_steps=min(512, max(64, steps // 2)), batch_size=64, n_epochs=4, **common)
    resume_dir = os.path.join(run_dir, "resume")
    named = cfg.run.resume not in ("auto", "never")
    state = load_state(agent, cfg.run.resume if named else resume_dir)
    if state is None and named:
        raise ResumeError(f"run.resume={cfg.run.resume}: no model-free agent state (state.json) there")
    if state is None:
        state = {"curve": [], "train_returns": [], "train_seconds": 0.0}
    else:
        agent.set_random_seed(cfg.run.seed + agent.num_timesteps)
        log.info("%s: resumed at %d env steps (budget %d)", kind, agent.num_timesteps, steps)
    every = int(cfg.baseline.eval_every) or steps
    episodes, seed = max(1, cfg.eval.closed_loop_episodes), EVAL_SEED + 1000 * cfg.run.seed
    policy_path = os.path.join(run_dir, f"{kind}_policy.safetensors")

    def write_result() -> dict:
        result = {
            "baseline": kind,
            "env": cfg.collect.env,
            "env_steps": int(agent.num_timesteps),
            "rl_steps": steps,
            "frame_stack": FRAME_STACK,
            "train_seconds": state["train_seconds"],
            "eval_return_mean": state["curve"][-1]["return_mean"],
            "eval_return_std": state["curve"][-1]["return_std"],
            "eval_seeds": [seed, seed + episodes - 1],
            "curve": state["curve"],
            "train_return_last": state["train_returns"][-5:],
            "policy": policy_path,
        }
        write_atomic(os.path.join(run_dir, "result.json"), json.dumps(result, indent=1))
        return result

    while agent.num_timesteps < steps:
        seen = len(env.get_episode_rewards())
        t0 = time.perf_counter()
        n = min(every - agent.num_timesteps % every, steps - agent.num_timesteps)
        agent.learn(total_timesteps=n, reset_num_timesteps=False, progress_bar=False)
        state["train_seconds"] = round(state["train_seconds"] + time.perf_counter() - t0, 2)
        state["train_returns"] += [float(r) for r in env.get_episode_rewards()[seen:]]
        t0 = time.perf_counter()
        returns = evaluate_agent(agent, make_plain, episodes, seed)
        state["curve"].append(
            {
                "env_steps": int(agent.num_timesteps),
                "return_mean": float(np.mean(returns)),
                "return_std": float(np.std(returns)),
                "returns": returns,
                "eval_seconds": round(time.perf_counter() - t0, 2),
            }
        )
        log.info("%s at %d env steps: return %.1f", kind, agent.num_timesteps, state["curve"][-1]["return_mean"])
        sd = {k: v.detach().cpu().clone().contiguous() for k, v in agent.policy.state_dict().items()}  # unshare
        meta = {"algo": kind, "env": cfg.collect.env, "env_kwargs": json.dumps(env_kwargs)}
        save_file(sd, policy_path + ".tmp", metadata=meta)
        os.replace(policy_path + ".tmp", policy_path)
        write_result()
        save_state(agent, state, resume_dir)  # last: a kill before it repeats this chunk, after it skips it
    env.close()
    if agent.num_timesteps > steps:
        log.info("%s: %d env steps already done, more than baseline.rl_steps=%d", kind, agent.num_timesteps, steps)
    return write_result()
