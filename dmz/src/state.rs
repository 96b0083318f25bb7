//! The shared state of the running DMZ, handed to every handler and task.
//!
//! ```text
//!  run() ─▶ AppState(Arc<Inner>) ─┬─▶ public router (web pages, /api/v1/*)
//!                                 ├─▶ admin router (web admin, /metrics, operator endpoints)
//!                                 ├─▶ batcher task (wake: batcher_wake)
//!                                 └─▶ checkpoint task (hourly journal checkpoints)
//!  Inner: config · store (sled) · keys · audit journal · metrics · rate limits · per-hospital locks
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, Semaphore};

use crate::audit::Audit;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;
use crate::store::Store;

/// Cheap to clone; every handler gets one.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

/// What the state holds.
pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub keys: Keys,
    pub metrics: Metrics,
    pub audit: Audit,
    pub limits: RateLimits,
    /// Wakes the batcher early (new entries queued, or shutting down).
    pub batcher_wake: Notify,
    /// Bounds uploads processed at once.
    pub upload_slots: Semaphore,
    /// Bounds upload bodies held in memory at once (twice the processing slots).
    pub body_slots: Semaphore,
    /// One upload at a time per hospital (scope and slot state are per hospital).
    org_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state from a loaded configuration, opened store and keys.
    pub fn new(config: Config, store: Store, keys: Keys, audit: Audit, metrics: Metrics) -> AppState {
        let limits = RateLimits::new(&config.limits);
        let slots = config.limits.max_concurrent_uploads.max(1);
        AppState(Arc::new(Inner {
            config,
            store,
            keys,
            metrics,
            audit,
            limits,
            batcher_wake: Notify::new(),
            upload_slots: Semaphore::new(slots),
            body_slots: Semaphore::new(slots.saturating_mul(2)),
            org_locks: Mutex::new(HashMap::new()),
        }))
    }

    /// Appends an entry to the DMZ's audit journal (fsynced before it
    /// returns). `detail` must hold no identifier and no secret.
    pub async fn audit(&self, kind: &str, detail: serde_json::Value) -> Result<(), Error> {
        self.0.audit.append(kind, detail).await
    }

    /// The lock that serialises uploads of hospital `org`.
    pub fn org_lock(&self, org: &str) -> Result<Arc<tokio::sync::Mutex<()>>> {
        let mut m = self.0.org_locks.lock().map_err(|_| Error::Internal("org lock map poisoned".into()))?;
        if m.len() > 100_000 {
            m.retain(|_, l| Arc::strong_count(l) > 1);
        }
        Ok(Arc::clone(m.entry(org.to_owned()).or_default()))
    }
}
