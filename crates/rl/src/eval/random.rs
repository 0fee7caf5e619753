//! The uniform-random baseline: the floor any policy must beat.

use hlynr_env::{Policy, PolicyInput, Space};
use hlynr_rng::Rng;

/// Draws every action uniformly from the action space (bounded boxes; see
/// [`Space::sample`] for unbounded ones).
///
/// Its generator is reseeded at every episode start from the policy seed and
/// the episode count, so episode `k`'s actions do not depend on how long the
/// earlier episodes were, and an evaluation is reproducible. It is meant for
/// the one-environment episode loop of evaluation (every `reset_rows` call
/// starts the next episode's stream).
#[derive(Debug)]
pub struct RandomPolicy {
    space: Space,
    seed: u64,
    episodes_started: u64,
    rng: Rng,
}

impl RandomPolicy {
    /// A random policy over `space` with its own `seed`.
    pub fn new(space: Space, seed: u64) -> Self {
        Self {
            space,
            seed,
            episodes_started: 0,
            rng: Rng::from_stream(seed, 0),
        }
    }
}

impl Policy for RandomPolicy {
    fn name(&self) -> &str {
        "random"
    }

    fn act(
        &mut self,
        input: &PolicyInput<'_>,
        _deterministic: bool,
        actions: &mut [f32],
    ) -> Result<(), String> {
        let d = self.space.flat_dim();
        if actions.len() != input.n * d {
            return Err(format!(
                "random policy: action buffer has {} values, expected {} rows x {d}",
                actions.len(),
                input.n
            ));
        }
        for row in actions.chunks_exact_mut(d.max(1)) {
            self.space.sample(&mut self.rng, row);
        }
        Ok(())
    }

    fn reset_rows(&mut self, _rows: &[usize]) {
        self.rng = Rng::from_stream(self.seed, self.episodes_started);
        self.episodes_started += 1;
    }
}
