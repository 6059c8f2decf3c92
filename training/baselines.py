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
  default). Weights saved as safetensors + JSON (no SB3 zip, which pickles).
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


def run_model_free(cfg, run_dir: str) -> dict:
    """Train SB3 SAC/PPO on `collect.env` (stacked frames) for `baseline.rl_steps` steps; evaluate; save."""
    from safetensors.torch import save_file
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    from moejepa_ros.sim import make_env

    kind = cfg.baseline.kind
    env_kwargs = dict(cfg.collect.env_kwargs)
    if cfg.collect.env == "two_rooms":
        env_kwargs.setdefault("mode", "goal")
        env_kwargs.setdefault("show_goal", True)  # a reactive policy must see its goal
    env_kwargs.update(cfg.baseline.rl_env_kwargs)

    def make() -> gym.Env:
        inner = gym.wrappers.TimeLimit(make_env(cfg.collect.env, **env_kwargs), cfg.eval.max_episode_steps)
        return Monitor(ChannelStack(inner))

    env = make()
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
            target_update_interval=2,
            policy_kwargs=dict(features_extractor_class=shift_extractor(), net_arch=[256, 256]),
            **common,
        )
    else:
        agent = PPO("CnnPolicy", env, n_steps=min(512, max(64, steps // 2)), batch_size=64, n_epochs=4, **common)
    t0 = time.perf_counter()
    agent.learn(total_timesteps=steps, progress_bar=False)
    train_s = time.perf_counter() - t0
    eval_env = make()  # its own episodes: the training env's Monitor holds the training returns
    mean_r, std_r = evaluate_policy(
        agent, eval_env, n_eval_episodes=max(1, cfg.eval.closed_loop_episodes), deterministic=True
    )
    sd = {k: v.detach().cpu().clone().contiguous() for k, v in agent.policy.state_dict().items()}  # unshare
    save_file(
        sd,
        os.path.join(run_dir, f"{kind}_policy.safetensors"),
        metadata={"algo": kind, "env": cfg.collect.env, "env_kwargs": json.dumps(env_kwargs)},
    )
    train_returns = [float(r) for r in env.get_episode_rewards()]
    result = {
        "baseline": kind,
        "env": cfg.collect.env,
        "env_steps": steps,
        "frame_stack": FRAME_STACK,
        "train_seconds": round(train_s, 2),
        "eval_return_mean": float(mean_r),
        "eval_return_std": float(std_r),
        "train_return_last": train_returns[-5:],
        "policy": os.path.join(run_dir, f"{kind}_policy.safetensors"),
    }
    with open(os.path.join(run_dir, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    env.close()
    eval_env.close()
    return result
