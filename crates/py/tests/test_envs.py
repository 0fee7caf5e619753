"""hlynr's environments through Gymnasium: registration, API conformance,
the vector env against the single env, and clear errors."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import hlynr
from hlynr import _hlynr


def test_every_hlynr_env_is_registered_and_passes_check_env():
    assert set(hlynr.ENV_IDS.values()) == set(_hlynr.env_ids())
    assert "hlynr/Intercept-v0" in hlynr.ENV_IDS and "hlynr/Racing-v0" in hlynr.ENV_IDS
    for gym_id in hlynr.ENV_IDS:
        env = gym.make(gym_id)
        check_env(env.unwrapped, skip_render_check=True)


def test_settings_are_keyword_arguments_read_strictly():
    hard = gym.make("hlynr/Intercept-v0", scenario="hard").unwrapped
    easy = gym.make("hlynr/Intercept-v0", scenario="easy").unwrapped
    # Different scenarios really are different environments.
    o_hard, _ = hard.reset(seed=3)
    o_easy, _ = easy.reset(seed=3)
    for _ in range(40):
        o_hard, *_ = hard.step(np.zeros(2, np.float32))
        o_easy, *_ = easy.step(np.zeros(2, np.float32))
    assert not np.array_equal(o_hard, o_easy)
    with pytest.raises(ValueError, match="did you mean `scenario`"):
        gym.make("hlynr/Intercept-v0", scenaro="hard")
    with pytest.raises(ValueError, match="did you mean `hard`"):
        gym.make("hlynr/Intercept-v0", scenario="hardd")
    with pytest.raises(ValueError, match="CartPole-v1 takes no settings"):
        gym.make("hlynr/CartPole-v1", gravity=3.0)


def test_camera_frames_are_uint8_and_the_frame_stack_stacks_them():
    env = gym.make("hlynr/Racing-v0", track="oval", frame_stack=4)
    frames, vector = env.observation_space.spaces[0], env.observation_space.spaces[-1]
    obs, _ = env.reset(seed=1)
    assert len(obs) == 8  # 4 x (frame, speed/gear/rpm)
    assert obs[0].dtype == np.uint8 and obs[0].shape == (1, 64, 64) == frames.shape
    assert vector.dtype == np.float32
    assert obs in env.observation_space
    obs, *_ = env.step(0)
    assert obs in env.observation_space


def test_seeded_episodes_repeat_and_unseeded_ones_differ():
    env = gym.make("hlynr/Intercept-v0")
    a, _ = env.reset(seed=11)
    b, _ = env.reset(seed=11)
    np.testing.assert_array_equal(a, b)
    # Like Gymnasium's envs, a first reset without a seed draws one.
    starts = [gym.make("hlynr/CartPole-v1").reset()[0] for _ in range(3)]
    assert not all(np.array_equal(starts[0], s) for s in starts[1:])


def test_bad_actions_name_the_space_and_the_value():
    env = gym.make("hlynr/Intercept-v0").unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"outside \[-1, 1\]"):
        env.step(np.array([3.0, 0.0], np.float32))
    with pytest.raises(ValueError, match=r"expected shape \(2,\), got \(3,\)"):
        env.step(np.zeros(3, np.float32))
    cart = gym.make("hlynr/CartPole-v1").unwrapped
    cart.reset(seed=0)
    with pytest.raises(ValueError, match="Discrete"):
        cart.step(0.5)
    with pytest.raises(ValueError, match=r"slot 0 = 2 is not an integer index in 0\.\.2"):
        cart.step(2)


def test_the_vector_env_steps_exactly_as_single_envs_do():
    n, seed = 4, 21
    vec = gym.make_vec("hlynr/Intercept-v0", num_envs=n, vectorization_mode="vector_entry_point")
    assert isinstance(vec, hlynr.HlynrVectorEnv)
    assert vec.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    singles = [hlynr.HlynrEnv("intercept") for _ in range(n)]
    obs, _ = vec.reset(seed=seed)
    expected = np.stack([e.reset(seed=_hlynr.derive_seed(seed, i))[0] for i, e in enumerate(singles)])
    np.testing.assert_array_equal(obs, expected)
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(600):
        actions = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
        obs, rewards, terminated, truncated, info = vec.step(actions)
        assert obs.dtype == np.float32 and obs.shape == (n, 26)
        assert rewards.shape == (n,) and terminated.dtype == bool
        for i, env in enumerate(singles):
            o, r, te, tr, single_info = env.step(actions[i])
            assert (te, tr) == (terminated[i], truncated[i])
            assert r == pytest.approx(rewards[i], rel=1e-6, abs=1e-6)
            if te or tr:
                finished += 1
                np.testing.assert_array_equal(info["final_obs"][i], o)
                assert info["_final_obs"][i]
                final = info["final_info"]
                assert final["_is_success"][i] and final["is_success"][i] == single_info["is_success"]
                assert final["episode"]["l"][i] > 0
                o, _ = env.reset()  # the vector env continues each env's generator too
            else:
                assert "final_obs" not in info or not info["_final_obs"][i]
            np.testing.assert_array_equal(obs[i], o)
    assert finished > 0


def test_vector_env_refuses_bad_batches():
    vec = hlynr.HlynrVectorEnv("CartPole-v1", 3)
    vec.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected shape \(3,\), got \(2,\)"):
        vec.step(np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="one seed"):
        vec.reset(seed=[1, 2, 3])
    with pytest.raises(ValueError, match="at least 1"):
        hlynr.HlynrVectorEnv("CartPole-v1", 0)


def test_the_vector_env_hands_camera_frames_over_as_uint8():
    vec = hlynr.HlynrVectorEnv("racing", 3, track="oval", max_episode_steps=5)
    frames, vector = vec.reset(seed=2)[0]
    assert frames.dtype == np.uint8 and frames.shape == (3, 1, 64, 64)
    assert vector.dtype == np.float32 and vector.shape == (3, 3)
    assert (frames, vector) in vec.observation_space
    single = hlynr.HlynrEnv("racing", track="oval", max_episode_steps=5)
    first, _ = single.reset(seed=_hlynr.derive_seed(2, 1))
    np.testing.assert_array_equal(frames[1], first[0])
    full_gas = np.ones(3, np.int64)
    for step in range(5):
        (frames, vector), _, terminated, truncated, info = vec.step(full_gas)
    # The fifth step hits the limit: every env ends, its last observation
    # (camera bytes and speed) kept in final_obs; the next episode starts
    # at rest.
    assert (truncated | terminated).all()
    last_frames, last_vector = info["final_obs"][1]
    assert last_frames.dtype == np.uint8 and last_frames.shape == (1, 64, 64)
    assert last_vector[0] > 0 and vector[1, 0] == 0


def test_the_arena_plays_whole_games_and_refuses_a_vector_of_slots():
    env = gym.make("hlynr/Arena-v0").unwrapped
    obs, _ = env.reset(seed=4)
    assert obs.shape == (17,) and obs in env.observation_space
    done, steps = False, 0
    while not done:
        obs, _, terminated, truncated, info = env.step(env.action_space.sample())
        done, steps = terminated or truncated, steps + 1
    assert steps > 6 and "game_s" in info and info["is_success"] in (True, False)
    with pytest.raises(ValueError, match="agent slots"):
        gym.make_vec("hlynr/Arena-v0", num_envs=16, vectorization_mode="vector_entry_point")
