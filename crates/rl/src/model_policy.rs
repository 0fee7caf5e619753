//! A trained policy as an evaluation [`Policy`]: observations go through the
//! run's observation normaliser, frozen, then the network.

use hlynr_env::{ObsNormalizer, Policy, PolicyInput};

use crate::algorithm::PolicySnapshot;

/// A trained network with its frozen observation normaliser, under a report name.
#[derive(Debug)]
pub struct ModelPolicy {
    name: String,
    snapshot: PolicySnapshot,
    normalized: Vec<f32>,
}

impl ModelPolicy {
    /// The policy of `snapshot`, named `name` in reports.
    pub fn new(name: impl Into<String>, mut snapshot: PolicySnapshot) -> Self {
        if let Some(n) = &mut snapshot.normalizer {
            n.freeze();
        }
        ModelPolicy {
            name: name.into(),
            snapshot,
            normalized: Vec::new(),
        }
    }

    /// The observation normaliser (frozen), if the run used one.
    pub fn normalizer(&self) -> Option<&ObsNormalizer> {
        self.snapshot.normalizer.as_ref()
    }

    /// Observation values per env the model takes.
    pub fn obs_dim(&self) -> usize {
        self.snapshot.obs_dim
    }

    /// Renames the policy (report names must be unique).
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }
}

impl Policy for ModelPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn act(
        &mut self,
        input: &PolicyInput<'_>,
        deterministic: bool,
        actions: &mut [f32],
    ) -> std::result::Result<(), String> {
        let (values, bytes) = (self.snapshot.obs_dim, self.snapshot.obs_bytes);
        if input.obs.len() != values * input.n || input.obs_bytes.len() != bytes * input.n {
            return Err(format!(
                "model `{}` takes {values} observation values and {bytes} bytes per env (its training env's), got {} and {} for {} env(s)",
                self.name,
                input.obs.len(),
                input.obs_bytes.len(),
                input.n
            ));
        }
        let Some(norm) = &self.snapshot.normalizer else {
            return self.snapshot.net.act(input, deterministic, actions);
        };
        self.normalized.resize(input.obs.len(), 0.0);
        norm.normalize(input.obs, &mut self.normalized)
            .map_err(|e| e.to_string())?;
        let normalized = PolicyInput {
            obs: &self.normalized,
            ..*input
        };
        self.snapshot.net.act(&normalized, deterministic, actions)
    }

    fn reset_rows(&mut self, rows: &[usize]) {
        self.snapshot.net.reset_rows(rows);
    }
}
