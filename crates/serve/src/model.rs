//! The served model: the policy of a run's checkpoint, a pool of instances
//! for stateless batches, and its reload when the checkpoint changes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use hlynr_env::{Policy, PolicyInput, Space};
use hlynr_rl::trainer::{LoadedModel, load_model, locate_model};

/// One loaded version of the model.
pub struct Model {
    /// 1 for the model loaded at start, +1 per reload.
    pub version: u64,
    /// Env steps of the checkpoint.
    pub env_steps: u64,
    /// The checkpoint directory it came from.
    pub checkpoint: PathBuf,
    /// Space of one bare observation (before any frame stack).
    pub observation_space: Space,
    /// Space of one action.
    pub action_space: Space,
    /// Each episode needs its own instance (frame stack or recurrent state).
    pub keeps_state: bool,
    /// An interception run's resolved scenario: what its driven sessions
    /// (`/v1/intercept/sessions`) build their sensing pipeline from.
    pub intercept: Option<hlynr_intercept::ScenarioConfig>,
    /// An arena run's browser game, its prey played by this model
    /// (`GET /arena`).
    pub arena_page: Option<String>,
    /// Behind a lock: its policy (used only to build instances) is `Send`, not `Sync`.
    loaded: Mutex<LoadedModel>,
    pool: Vec<Mutex<Box<dyn Policy>>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("version", &self.version)
            .field("env_steps", &self.env_steps)
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

/// The checkpoint's identity on disk: a new one was written when it changes.
pub type Stamp = Option<(SystemTime, u64)>;

/// The stamp of checkpoint directory `dir` (its state file).
pub fn stamp(dir: &Path) -> Stamp {
    let meta = std::fs::metadata(dir.join(hlynr_rl::checkpoint::STATE_FILE)).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl Model {
    /// Loads the checkpoint at `checkpoint` of the run at `run_dir`, with
    /// `pool` instances for stateless batches.
    pub fn load(
        run_dir: &Path,
        checkpoint: &Path,
        version: u64,
        pool: usize,
    ) -> Result<Self, String> {
        let loaded = load_model(run_dir, checkpoint).map_err(|e| e.to_string())?;
        let pool = (0..pool.max(1))
            .map(|_| loaded.fresh_policy().map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let observation_space = match loaded.record.frame_stack {
            Some(_) => bare_space(&loaded)?,
            None => loaded.record.observation_space.clone(),
        };
        let intercept = match loaded.config.env.id.as_str() {
            "intercept" => Some(
                hlynr_envs::intercept::InterceptFactory::new(&loaded.config)
                    .map_err(|e| e.to_string())?
                    .scenario()
                    .clone(),
            ),
            _ => None,
        };
        let arena_page = match loaded.config.env.id.as_str() {
            hlynr_envs::ARENA => Some(hlynr_arena::web::page(
                hlynr_envs::ArenaFactory::new(&loaded.config)
                    .map_err(|e| e.to_string())?
                    .arena(),
                hlynr_arena::web::Driver::Served,
            )),
            _ => None,
        };
        Ok(Self {
            version,
            env_steps: loaded.env_steps,
            intercept,
            arena_page,
            checkpoint: loaded.checkpoint.clone(),
            action_space: loaded.record.action_space.clone(),
            keeps_state: loaded.keeps_state(),
            observation_space,
            loaded: Mutex::new(loaded),
            pool,
            next: AtomicUsize::new(0),
        })
    }

    /// A new instance for one episode.
    pub fn instance(&self) -> Result<Box<dyn Policy>, String> {
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fresh_policy()
            .map_err(|e| e.to_string())
    }

    /// Actions of a stateless model for `input`, on a free pooled instance.
    pub fn act(
        &self,
        input: &PolicyInput<'_>,
        deterministic: bool,
        actions: &mut [f32],
    ) -> Result<(), String> {
        let n = self.pool.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            if let Ok(mut p) = self.pool[(start + k) % n].try_lock() {
                return p.act(input, deterministic, actions);
            }
        }
        self.pool[start % n]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .act(input, deterministic, actions)
    }
}

/// The observation space of one frame of a model trained on stacked frames.
fn bare_space(loaded: &LoadedModel) -> Result<Space, String> {
    let k = loaded.record.frame_stack.unwrap_or(1);
    hlynr_env::unstacked_space(&loaded.record.observation_space, k)
        .ok_or_else(|| format!("the model's observation space does not split into {k} frames"))
}

/// The current model, swapped whole on reload so that requests in flight
/// finish on the version they started with.
#[derive(Debug)]
pub struct ModelSlot {
    run_dir: PathBuf,
    /// The path given (`RUN_DIR` or a checkpoint) to locate the checkpoint again.
    target: PathBuf,
    pool: usize,
    current: RwLock<Arc<Model>>,
    stamp: Mutex<Stamp>,
}

impl ModelSlot {
    /// Loads the model of `target` (`RUN_DIR`: its `best/`, else `last/`;
    /// or `RUN_DIR/checkpoints/NAME`).
    pub fn open(target: &Path, pool: usize) -> Result<Self, String> {
        let (run_dir, checkpoint) = locate_model(target).map_err(|e| e.to_string())?;
        let stamp = stamp(&checkpoint);
        let model = Model::load(&run_dir, &checkpoint, 1, pool)?;
        Ok(Self {
            run_dir,
            target: target.to_path_buf(),
            pool,
            current: RwLock::new(Arc::new(model)),
            stamp: Mutex::new(stamp),
        })
    }

    /// The model serving now.
    pub fn current(&self) -> Arc<Model> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reloads when the checkpoint on disk changed (checkpoints are written
    /// atomically, so a changed stamp is a complete checkpoint). Returns the
    /// new version, or the error that kept the old one serving.
    pub fn reload_if_changed(&self) -> Result<Option<u64>, String> {
        let (_, checkpoint) = locate_model(&self.target).map_err(|e| e.to_string())?;
        let now = stamp(&checkpoint);
        let mut seen = self.stamp.lock().unwrap_or_else(PoisonError::into_inner);
        if now.is_none() || now == *seen {
            return Ok(None);
        }
        let version = self.current().version + 1;
        let model = Model::load(&self.run_dir, &checkpoint, version, self.pool)?;
        *seen = now;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(model);
        Ok(Some(version))
    }
}
