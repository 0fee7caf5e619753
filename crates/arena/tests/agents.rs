//! The arena's two faces, the agent-slot training batch and the turn-based
//! evaluation env, against each other and against their contracts.

use hlynr_arena::observation::OBS_DIM;
use hlynr_arena::world::ACTION_DIM;
use hlynr_arena::{ArenaBatch, ArenaConfig, ArenaEnv, FleeAndEat};
use hlynr_env::{BatchEnv, Env, Info, ObsMut};
use hlynr_rng::{Rng, derive_seed};

fn random_actions(rng: &mut Rng, rows: usize) -> Vec<f32> {
    (0..rows)
        .flat_map(|_| {
            [
                rng.uniform_range_f32(-1.0, 1.0),
                rng.uniform_range_f32(-1.0, 1.0),
                rng.below(3) as f32,
            ]
        })
        .collect()
}

/// A shorter game, so tests see time limits and restarts, with decisions
/// every `ticks` ticks.
fn short_game(ticks: u32) -> ArenaConfig {
    ArenaConfig {
        max_ticks: 1500,
        ticks_per_action: ticks,
        ..ArenaConfig::default()
    }
}

#[test]
fn slots_report_lives_and_mask_empty_rows() {
    for ticks in [1, 4] {
        slots_report_lives(ticks);
    }
}

fn slots_report_lives(ticks: u32) {
    let c = short_game(ticks);
    let mut batch = ArenaBatch::new(&c, 3).unwrap();
    assert_eq!(batch.num_envs(), 3 * c.max_prey);
    batch.reset(11).unwrap();
    let active = batch.active().unwrap().to_vec();
    for w in 0..3 {
        let row = &active[w * c.max_prey..(w + 1) * c.max_prey];
        assert!(row[..c.initial_prey].iter().all(|&a| a));
        assert!(row[c.initial_prey..].iter().all(|&a| !a));
    }
    let mut rng = Rng::seed_from_u64(1);
    let (mut deaths, mut truncations, mut inactive_steps) = (0, 0, 0);
    let mut lengths = vec![0u64; batch.num_envs()];
    // World 0 plays the scripted prey (who outlast the game), the others at random.
    let scripted = FleeAndEat::new(&c);
    for _ in 0..4000 / ticks {
        let before = batch.active().unwrap().to_vec();
        let mut actions = random_actions(&mut rng, batch.num_envs());
        for (slot, obs) in batch.obs()[..c.max_prey * OBS_DIM]
            .chunks_exact(OBS_DIM)
            .enumerate()
        {
            scripted.decide(
                obs,
                &mut actions[slot * ACTION_DIM..(slot + 1) * ACTION_DIM],
            );
        }
        batch.step(&actions).unwrap();
        for i in 0..batch.num_envs() {
            let (term, trunc) = (batch.terminated()[i], batch.truncated()[i]);
            if !before[i] {
                inactive_steps += 1;
                assert_eq!(batch.rewards()[i], 0.0, "an empty row earns nothing");
                assert!(!term && !trunc, "an empty row ends nothing");
                continue;
            }
            lengths[i] += 1;
            if term || trunc {
                let ep = batch.infos()[i].episode.expect("a life's statistics");
                assert_eq!(ep.episode_length, lengths[i], "row {i}");
                lengths[i] = 0;
                deaths += usize::from(term);
                truncations += usize::from(trunc);
                assert_eq!(trunc, batch.final_observation(i).is_some());
            }
        }
        // Rows holding no agent show zeros.
        for (i, &a) in batch.active().unwrap().iter().enumerate() {
            if !a {
                assert!(
                    batch.obs()[i * OBS_DIM..(i + 1) * OBS_DIM]
                        .iter()
                        .all(|&v| v == 0.0)
                );
            }
        }
    }
    assert!(
        deaths > 20 && truncations > 0 && inactive_steps > 0,
        "{deaths} {truncations}"
    );
}

#[test]
fn batch_state_continues_exactly() {
    let c = short_game(1);
    let mut a = ArenaBatch::new(&c, 2).unwrap();
    a.reset(4).unwrap();
    let mut rng = Rng::seed_from_u64(2);
    for _ in 0..300 {
        a.step(&random_actions(&mut rng, a.num_envs())).unwrap();
    }
    let mut b = ArenaBatch::new(&c, 2).unwrap();
    b.set_state(&a.state()).unwrap();
    assert_eq!(a.infos(), b.infos());
    for _ in 0..1500 {
        let act = random_actions(&mut rng, a.num_envs());
        a.step(&act).unwrap();
        b.step(&act).unwrap();
    }
    assert_eq!(a.state(), b.state());
    assert!(
        ArenaBatch::new(&c, 3)
            .unwrap()
            .set_state(&a.state())
            .is_err()
    );
}

#[test]
fn evaluation_env_plays_the_training_world() {
    // One world driven through the batch and through the turn-based env with
    // the same policy gives the same game, decision for decision.
    for ticks in [1, 4] {
        same_game(ticks);
    }
}

fn same_game(ticks: u32) {
    let c = short_game(ticks);
    let policy = FleeAndEat::new(&c);
    let mut batch = ArenaBatch::new(&c, 1).unwrap();
    batch.reset(21).unwrap();
    let mut env = ArenaEnv::new(&c).unwrap();
    let mut obs = vec![0.0f32; OBS_DIM];
    let mut info = Info::default();
    env.reset(
        Some(derive_seed(21, 0)),
        ObsMut::values(&mut obs),
        &mut info,
    )
    .unwrap();
    let mut actions = vec![0.0f32; c.max_prey * ACTION_DIM];
    let mut env_return = 0.0;
    let mut batch_return = 0.0;
    let mut decisions = 0u64;
    loop {
        for (slot, row) in batch.obs().chunks_exact(OBS_DIM).enumerate() {
            policy.decide(
                row,
                &mut actions[slot * ACTION_DIM..(slot + 1) * ACTION_DIM],
            );
        }
        let live = batch.active().unwrap().iter().filter(|&&a| a).count();
        let mut step = Default::default();
        for _ in 0..live {
            let mut a = [0.0f32; ACTION_DIM];
            policy.decide(&obs, &mut a);
            step = env.step(&a, ObsMut::values(&mut obs), &mut info).unwrap();
            env_return += step.reward;
            decisions += 1;
        }
        let world_before = batch.worlds()[0].clone();
        batch.step(&actions).unwrap();
        batch_return += batch.rewards().iter().map(|&r| f64::from(r)).sum::<f64>();
        if step.done() {
            assert!(step.truncated, "the scripted prey outlast the short game");
            assert_eq!(info.is_success, Some(true));
            assert!(info.get("game_s").unwrap() > 24.9);
            let stars = info.get("stars_eaten").unwrap();
            assert!(stars > 10.0, "{stars}");
            break;
        }
        assert_eq!(
            env.world(),
            &batch.worlds()[0],
            "after tick {}",
            world_before.tick()
        );
    }
    assert!(
        (env_return - batch_return).abs() < 1e-3,
        "{env_return} {batch_return}"
    );
    assert!(decisions >= u64::from(c.max_ticks / ticks) * c.initial_prey as u64 / 2);
}
