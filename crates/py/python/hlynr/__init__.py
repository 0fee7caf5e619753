"""hlynr from Python: its environments as Gymnasium envs, training runs,
trained policies and their metrics.

>>> import gymnasium as gym, hlynr
>>> env = gym.make("hlynr/Intercept-v0", scenario="medium")
>>> run = hlynr.train("configs/cartpole_ppo.yaml", steps=20_000)
>>> policy = hlynr.load_policy(run.run_dir)
>>> action, state = policy.predict(obs)
"""

from ._hlynr import __version__
from .envs import ENV_IDS, HlynrEnv, HlynrVectorEnv, register_envs
from .policy import Policy, load_policy
from .runs import Run, read_events, read_metrics, resolve_config, resume, train

__all__ = [
    "__version__",
    "ENV_IDS",
    "HlynrEnv",
    "HlynrVectorEnv",
    "Policy",
    "Run",
    "load_policy",
    "read_events",
    "read_metrics",
    "register_envs",
    "resolve_config",
    "resume",
    "train",
]

register_envs()
