//! Per-episode sessions: each holds its own policy instance, so a frame
//! stack, a recurrent state or anything else a policy keeps between steps
//! belongs to one episode only. A session keeps the model version it was
//! opened with until it ends (an episode is never served by two models).

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hlynr_env::Policy;
use hlynr_intercept::InterceptEnv;

use crate::model::Model;

/// One episode's policy instance.
pub struct Session {
    pub policy: Box<dyn Policy>,
    pub model: Arc<Model>,
    pub steps: u64,
    /// An interception session's sensing pipeline, driven by the client's
    /// truth (`None` for plain sessions).
    pub intercept: Option<Box<InterceptEnv>>,
    last_used: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("policy", &self.policy.name())
            .field("model_version", &self.model.version)
            .field("steps", &self.steps)
            .finish()
    }
}

/// The open sessions.
pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Mutex<Session>>>>,
    idle: Duration,
    max: usize,
    ids: RandomState,
    counter: AtomicU64,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("open", &self.len())
            .field("idle", &self.idle)
            .field("max", &self.max)
            .finish()
    }
}

/// Longest session id a client may choose.
pub const MAX_ID_LEN: usize = 128;

/// Why a session could not be opened.
#[derive(Debug, PartialEq, Eq)]
pub enum OpenError {
    /// The id is taken by an open session.
    Taken,
    /// Every slot is in use.
    Full(usize),
    /// The id is empty, too long or not printable ASCII.
    BadId,
}

impl Sessions {
    /// At most `max` sessions, each ended after `idle` without a request.
    pub fn new(idle: Duration, max: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            idle,
            max,
            ids: RandomState::new(),
            counter: AtomicU64::new(0),
        }
    }

    /// Open sessions.
    pub fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Opens a session under `id` (an unpredictable one when `None`).
    pub fn open(
        &self,
        id: Option<String>,
        model: Arc<Model>,
        policy: Box<dyn Policy>,
        intercept: Option<Box<InterceptEnv>>,
    ) -> Result<String, OpenError> {
        let id = match id {
            Some(id) => {
                if id.is_empty()
                    || id.len() > MAX_ID_LEN
                    || !id.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err(OpenError::BadId);
                }
                id
            }
            None => {
                let mut h = self.ids.build_hasher();
                h.write_u64(self.counter.fetch_add(1, Ordering::Relaxed));
                format!("{:016x}", h.finish())
            }
        };
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.contains_key(&id) {
            return Err(OpenError::Taken);
        }
        if map.len() >= self.max {
            return Err(OpenError::Full(self.max));
        }
        map.insert(
            id.clone(),
            Arc::new(Mutex::new(Session {
                policy,
                model,
                steps: 0,
                intercept,
                last_used: Instant::now(),
            })),
        );
        Ok(id)
    }

    /// The session `id`, marked as used now.
    pub fn get(&self, id: &str) -> Option<Arc<Mutex<Session>>> {
        let found = self
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()?;
        found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last_used = Instant::now();
        Some(found)
    }

    /// Ends session `id`; `false` when there was none.
    pub fn end(&self, id: &str) -> bool {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
            .is_some()
    }

    /// Ends the sessions idle for longer than the limit; returns how many.
    pub fn expire(&self) -> usize {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let before = map.len();
        map.retain(|_, s| {
            // A session in use right now is not idle.
            s.try_lock()
                .map_or(true, |s| now.duration_since(s.last_used) <= self.idle)
        });
        before - map.len()
    }
}
