//! The game's 17-value prey observation (`STATE_DIM = 5 + 2*3 + 2*3`).
//!
//! | index | value | scale |
//! |---|---|---|
//! | 0, 1 | own x, y | / arena radius, in `[-1, 1]` |
//! | 2 | energy | / `max_energy`, in `[0, 1]` |
//! | 3 | special active | 0 or 1 |
//! | 4 | starvation timer | ticks since the last star / `starvation_ticks`, in `[0, 1]` |
//! | 5..11 | the 3 nearest stars, (dx, dy) each, nearest first | / arena radius, in `[-2, 2]` |
//! | 11..17 | the 3 nearest predators, likewise | / arena radius, in `[-2, 2]` |
//!
//! Missing stars or predators are zero-padded, as in the game.

use hlynr_env::Space;

use crate::config::ArenaConfig;
use crate::world::{Point, Prey};

/// Length of one prey's observation.
pub const OBS_DIM: usize = 17;

/// Stars and predators reported, nearest first.
pub const NEAREST: usize = 3;

/// First index of the nearest stars' offsets.
pub const STARS_AT: usize = 5;

/// First index of the nearest predators' offsets.
pub const PREDATORS_AT: usize = STARS_AT + 2 * NEAREST;

/// The observation space (bounds as in the table above).
pub fn space() -> Space {
    let mut low = vec![-1.0, -1.0, 0.0, 0.0, 0.0];
    let mut high = vec![1.0, 1.0, 1.0, 1.0, 1.0];
    low.resize(OBS_DIM, -2.0);
    high.resize(OBS_DIM, 2.0);
    Space::box_1d(low, high)
}

/// The `NEAREST` points of `points` closest to `from`, nearest first.
fn nearest(from: Point, points: &[Point]) -> [Option<(f64, Point)>; NEAREST] {
    // Squared distances, nearest first; most points fail the first test.
    let mut d = [f64::INFINITY; NEAREST];
    let mut p = [[0.0; 2]; NEAREST];
    for &q in points {
        let d2 = (q[0] - from[0]).powi(2) + (q[1] - from[1]).powi(2);
        if d2 >= d[NEAREST - 1] {
            continue;
        }
        let mut k = NEAREST - 1;
        while k > 0 && d2 < d[k - 1] {
            d[k] = d[k - 1];
            p[k] = p[k - 1];
            k -= 1;
        }
        d[k] = d2;
        p[k] = q;
    }
    std::array::from_fn(|k| d[k].is_finite().then_some((d[k], p[k])))
}

/// Writes `prey`'s observation into `out` (`OBS_DIM` values).
pub fn write(c: &ArenaConfig, prey: &Prey, stars: &[Point], predators: &[Point], out: &mut [f32]) {
    let r = c.arena_radius_px;
    out[0] = (prey.pos[0] / r) as f32;
    out[1] = (prey.pos[1] / r) as f32;
    out[2] = (prey.energy / c.max_energy) as f32;
    out[3] = f32::from(u8::from(prey.special_left > 0));
    out[4] = (f64::from(prey.hunger_ticks) / f64::from(c.starvation_ticks)).min(1.0) as f32;
    for (at, points) in [(STARS_AT, stars), (PREDATORS_AT, predators)] {
        for (k, near) in nearest(prey.pos, points).iter().enumerate() {
            let (dx, dy) = near.map_or((0.0, 0.0), |(_, q)| {
                ((q[0] - prey.pos[0]) / r, (q[1] - prey.pos[1]) / r)
            });
            out[at + 2 * k] = dx as f32;
            out[at + 2 * k + 1] = dy as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_three_in_order_and_padding() {
        let pts = [[10.0, 0.0], [1.0, 0.0], [5.0, 0.0], [3.0, 0.0], [-2.0, 0.0]];
        let got: Vec<f64> = nearest([0.0, 0.0], &pts)
            .iter()
            .map(|n| n.unwrap().1[0])
            .collect();
        assert_eq!(got, [1.0, -2.0, 3.0]);
        let two = nearest([0.0, 0.0], &pts[..2]);
        assert!(two[2].is_none());
        assert_eq!(two[0].unwrap().1[0], 1.0);
    }

    #[test]
    fn fields_are_scaled_as_documented() {
        let c = ArenaConfig::default();
        let prey = Prey {
            pos: [150.0, -30.0],
            energy: 5.0,
            special_left: 3,
            special_kills: 0,
            hunger_ticks: 450,
            age_ticks: 0,
            total_reward: 0.0,
            stars_eaten: 0,
            births: 0,
            predators_killed: 0,
            decisions: 0,
        };
        let mut out = [9.0f32; OBS_DIM];
        write(&c, &prey, &[[150.0, 0.0]], &[], &mut out);
        assert_eq!(&out[..5], &[0.5, -0.1, 0.25, 1.0, 0.5]);
        assert_eq!(&out[5..7], &[0.0, 0.1]);
        assert!(out[7..].iter().all(|&v| v == 0.0), "{out:?}");
        assert_eq!(space().check(&out), Ok(()));
    }
}
