//! The byte lane of observations (`u8` boxes such as camera frames) through
//! `VecEnv`, `FrameStack`, `FrameStackPolicy`, `VecNormalize` and saved states.

use hlynr_env::env::{from_state, to_state};
use hlynr_env::{
    BatchEnv, Dtype, Env, FrameStack, FrameStackPolicy, Info, ObsMut, Policy, PolicyInput, Space,
    Step, VecEnv, VecNormalize, VecNormalizeConfig, unstacked_space,
};
use serde_json::Value;

const SIDE: usize = 64;

/// A camera that films a counter: every pixel of frame `t` is `(t * 7 +
/// episode) mod 256`, beside a value lane `[t]`. Episodes last `horizon` steps.
#[derive(Debug, Clone)]
struct Camera {
    observation_space: Space,
    action_space: Space,
    horizon: u64,
    t: u64,
    episode: u64,
}

impl Camera {
    fn new(horizon: u64) -> Self {
        Self {
            observation_space: Space::Tuple {
                spaces: vec![
                    Space::byte_box(&[1, SIDE, SIDE]),
                    Space::uniform_box(0.0, 1e6, &[1]),
                ],
            },
            action_space: Space::Discrete { n: 2 },
            horizon,
            t: 0,
            episode: 0,
        }
    }

    fn pixel(&self) -> u8 {
        ((self.t * 7 + self.episode) % 256) as u8
    }

    fn observe(&self, obs: ObsMut<'_>) {
        obs.bytes.fill(self.pixel());
        obs.values[0] = self.t as f32;
    }
}

impl Env for Camera {
    fn observation_space(&self) -> &Space {
        &self.observation_space
    }
    fn action_space(&self) -> &Space {
        &self.action_space
    }
    fn reset(&mut self, seed: Option<u64>, obs: ObsMut<'_>, _: &mut Info) -> hlynr_env::Result<()> {
        self.episode = seed.unwrap_or(self.episode + 1);
        self.t = 0;
        self.observe(obs);
        Ok(())
    }
    fn step(&mut self, _: &[f32], obs: ObsMut<'_>, _: &mut Info) -> hlynr_env::Result<Step> {
        self.t += 1;
        self.observe(obs);
        Ok(Step {
            reward: 1.0,
            terminated: self.t == self.horizon,
            truncated: false,
        })
    }
    fn state(&self) -> Value {
        to_state(&(self.t, self.episode))
    }
    fn set_state(&mut self, state: &Value) -> hlynr_env::Result<()> {
        (self.t, self.episode) = from_state("Camera", state)?;
        Ok(())
    }
}

#[test]
fn byte_boxes_live_in_the_byte_lane() {
    let frames = Space::byte_box(&[4, SIDE, SIDE]);
    assert_eq!((frames.flat_dim(), frames.byte_dim()), (0, 4 * SIDE * SIDE));
    let obs = Camera::new(3).observation_space;
    assert_eq!((obs.flat_dim(), obs.byte_dim()), (1, SIDE * SIDE));
    assert_eq!(obs.byte_shapes(), vec![vec![1, SIDE, SIDE]]);
    // The dtype is part of the saved space; f32 boxes are written as before.
    let text = serde_json::to_string(&Space::byte_box(&[1, 1, 2])).unwrap();
    assert_eq!(
        text,
        r#"{"box":{"low":[0.0,0.0],"high":[255.0,255.0],"shape":[1,1,2],"dtype":"u8"}}"#
    );
    assert_eq!(
        serde_json::from_str::<Space>(&text).unwrap(),
        Space::byte_box(&[1, 1, 2])
    );
    assert!(
        !serde_json::to_string(&Space::uniform_box(0.0, 1.0, &[2]))
            .unwrap()
            .contains("dtype")
    );
    let narrow = Space::Box {
        low: vec![0.0, 10.0],
        high: vec![255.0, 20.0],
        shape: vec![2],
        dtype: Dtype::U8,
    };
    assert!(narrow.check_bytes(&[0, 15]).is_ok());
    let e = narrow.check_bytes(&[0, 30]).unwrap_err();
    assert!(e.contains("byte 1 = 30"), "{e}");
    assert!(
        narrow
            .check_bytes(&[0])
            .unwrap_err()
            .contains("expected 2 bytes")
    );
}

#[test]
fn a_stack_of_four_64x64_frames_is_16_kib_of_bytes() {
    let env = FrameStack::new(Camera::new(10), 4).unwrap();
    let space = env.observation_space().clone();
    assert_eq!(space.byte_dim(), 16 * 1024);
    // The value lane holds only the four side inputs, not the pixels.
    assert_eq!(space.flat_dim(), 4);
    let n = 3;
    let mut batch = VecEnv::from_fn(n, |_| FrameStack::new(Camera::new(10), 4).unwrap()).unwrap();
    batch.reset(1).unwrap();
    assert_eq!(batch.obs_bytes().len(), n * 16 * 1024);
    assert_eq!(std::mem::size_of_val(batch.obs()), n * 4 * 4);
}

#[test]
fn vec_env_keeps_bytes_of_final_observations_and_states() {
    let mut batch = VecEnv::from_fn(2, |i| Camera::new(2 + i as u64)).unwrap();
    batch.reset(5).unwrap();
    let bd = SIDE * SIDE;
    let pixel = |batch: &VecEnv<Camera>, i: usize| batch.obs_bytes()[i * bd];
    let first = [pixel(&batch, 0), pixel(&batch, 1)];
    batch.step(&[0.0, 1.0]).unwrap();
    assert_eq!(pixel(&batch, 0), first[0].wrapping_add(7));
    assert_eq!(batch.final_observation_bytes(0), None);
    // Env 0 ends its 2-step episode: its final frame is kept, the batch shows
    // the next episode's first frame.
    batch.step(&[0.0, 1.0]).unwrap();
    let fin = batch.final_observation_bytes(0).expect("env 0 finished");
    assert_eq!(fin.len(), bd);
    assert!(fin.iter().all(|&p| p == first[0].wrapping_add(14)));
    assert_ne!(pixel(&batch, 0), fin[0]);
    assert_eq!(batch.final_observation_bytes(1), None);

    // The byte lanes survive a save and restore exactly, and a restore into a
    // batch of different frames is refused.
    let saved = batch.state();
    let mut other = VecEnv::from_fn(2, |i| Camera::new(2 + i as u64)).unwrap();
    other.reset(99).unwrap();
    other.set_state(&saved).unwrap();
    assert_eq!(other.obs_bytes(), batch.obs_bytes());
    assert_eq!(
        other.final_observation_bytes(0),
        batch.final_observation_bytes(0)
    );
    let text = serde_json::to_string(&saved).unwrap();
    assert!(
        text.len() < 4 * 2 * 2 * bd,
        "bytes are saved compactly: {} chars",
        text.len()
    );
    let mut tampered = saved.clone();
    tampered["obs_bytes"] = Value::String("zz".into());
    assert!(other.set_state(&tampered).is_err());
}

#[test]
fn frame_stack_stacks_bytes_and_the_policy_adapter_agrees() {
    let mut wrapped = FrameStack::new(Camera::new(4), 3).unwrap();
    let mut bare = Camera::new(4);
    let stacked_space = wrapped.observation_space().clone();
    let (vd, bd) = (stacked_space.flat_dim(), stacked_space.byte_dim());
    let mut policy = FrameStackPolicy::new(Recorder::default(), 3, &stacked_space).unwrap();
    let (mut sv, mut sb) = (vec![0.0; vd], vec![0u8; bd]);
    let (mut v, mut b) = (vec![0.0; 1], vec![0u8; SIDE * SIDE]);
    let mut info = Info::default();
    let mut actions = [0.0];
    wrapped
        .reset(Some(3), ObsMut::new(&mut sv, &mut sb), &mut info)
        .unwrap();
    bare.reset(Some(3), ObsMut::new(&mut v, &mut b), &mut info)
        .unwrap();
    policy.reset_rows(&[0]);
    for _ in 0..3 {
        let input = PolicyInput {
            n: 1,
            obs: &v,
            obs_bytes: &b,
            controller_view: &[],
        };
        policy.act(&input, true, &mut actions).unwrap();
        let seen = policy.inner().0.last().unwrap();
        assert_eq!((&seen.0, &seen.1), (&sv, &sb));
        wrapped
            .step(&actions, ObsMut::new(&mut sv, &mut sb), &mut info)
            .unwrap();
        bare.step(&actions, ObsMut::new(&mut v, &mut b), &mut info)
            .unwrap();
    }
    // Oldest first: the newest frame is the last third of the byte lane.
    let frame = SIDE * SIDE;
    assert_eq!(&sb[2 * frame..], &b[..]);
    assert_eq!(sb[0].wrapping_add(14), sb[2 * frame]);
    let saved = wrapped.state();
    let mut restored = FrameStack::new(Camera::new(4), 3).unwrap();
    restored.set_state(&saved).unwrap();
    let (mut rv, mut rb) = (vec![0.0; vd], vec![0u8; bd]);
    restored
        .step(&actions, ObsMut::new(&mut rv, &mut rb), &mut info)
        .unwrap();
    wrapped
        .step(&actions, ObsMut::new(&mut sv, &mut sb), &mut info)
        .unwrap();
    assert_eq!((rv, rb), (sv, sb));
}

#[test]
fn normalisation_leaves_bytes_alone() {
    let batch = VecEnv::from_fn(2, |_| Camera::new(3)).unwrap();
    let mut env = VecNormalize::new(batch, VecNormalizeConfig::default()).unwrap();
    env.reset(0).unwrap();
    for _ in 0..4 {
        env.step(&[1.0, 0.0]).unwrap();
        assert_eq!(env.obs_bytes(), env.inner().obs_bytes());
        assert_eq!(env.obs_bytes().len(), 2 * SIDE * SIDE);
    }
}

#[test]
fn byte_actions_are_refused() {
    let mut camera = Camera::new(3);
    camera.action_space = Space::byte_box(&[2]);
    let e = VecEnv::new(vec![camera]).unwrap_err().to_string();
    assert!(e.contains("byte box"), "{e}");
}

/// Records both lanes of what it is given.
#[derive(Default)]
struct Recorder(Vec<(Vec<f32>, Vec<u8>)>);

impl Policy for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn act(&mut self, input: &PolicyInput<'_>, _: bool, actions: &mut [f32]) -> Result<(), String> {
        self.0.push((input.obs.to_vec(), input.obs_bytes.to_vec()));
        actions.fill(0.0);
        Ok(())
    }
}

/// An env that only declares an observation space.
struct SpaceOnly(Space);

impl Env for SpaceOnly {
    fn observation_space(&self) -> &Space {
        &self.0
    }
    fn action_space(&self) -> &Space {
        &self.0
    }
    fn reset(&mut self, _: Option<u64>, _: ObsMut<'_>, _: &mut Info) -> hlynr_env::Result<()> {
        Ok(())
    }
    fn step(&mut self, _: &[f32], _: ObsMut<'_>, _: &mut Info) -> hlynr_env::Result<Step> {
        Ok(Step::default())
    }
}

#[test]
fn unstacking_inverts_the_frame_stack_space() {
    let camera = Space::Tuple {
        spaces: vec![
            Space::byte_box(&[1, 8, 8]),
            Space::uniform_box(0.0, 1.0, &[3]),
        ],
    };
    let spaces = [
        camera,
        Space::box_1d(vec![-1.0, 0.0], vec![1.0, 2.0]),
        Space::Discrete { n: 5 },
        Space::MultiDiscrete { nvec: vec![2, 3] },
    ];
    for space in spaces {
        for k in [1, 4] {
            let env = FrameStack::new(SpaceOnly(space.clone()), k).unwrap();
            let stacked = env.observation_space();
            assert_eq!(
                unstacked_space(stacked, k).as_ref(),
                Some(&space),
                "{space:?} k={k}"
            );
        }
    }
    // Not a stack of 3: refused rather than guessed.
    let four = Space::uniform_box(0.0, 1.0, &[4, 2]);
    assert_eq!(unstacked_space(&four, 3), None);
    assert_eq!(unstacked_space(&four, 0), None);
    let uneven = Space::MultiDiscrete {
        nvec: vec![2, 3, 2, 4],
    };
    assert_eq!(unstacked_space(&uneven, 2), None);
}
