//! `flumon-synth`: a synthetic world of hospitals reporting influenza cases,
//! and the daily uploads they make (INTERFACE.md), for end-to-end tests and
//! benchmarks.
//!
//! ```text
//!  seed ─▶ hospitals.rs (USCC, name, level, export habits)
//!       ─▶ epidemic.rs  (season curve ─▶ encounters per hospital-day)
//!       ─▶ encounter.rs (skeleton ─▶ details: people.rs, care.rs, stay.rs, text.rs)
//!       ─▶ records.rs   (the version of each record an upload carries ─▶ row.rs Row)
//!          daily.rs     (stock and visits rows)
//!       ─▶ writers/     (CSV / XLSX / JSON, parts; plant.rs invalid copies)
//!       ─▶ OUT/<ZZJGDM>/<date>/<type>.<ext>, OUT/manifest.json (manifest.rs), OUT/hospitals.json
//! ```
//!
//! Everything is drawn from ChaCha8 streams keyed by what is drawn
//! (rng.rs), so the same seed and options give byte-identical files, and the
//! upload of day D depends only on (seed, hospital, D, options): generating
//! consecutive days gives one consistent world, each day resending the last
//! `days` days with the changes and deletes made since.

pub mod care;
pub mod clinical;
pub mod daily;
pub mod encounter;
pub mod epidemic;
pub mod generate;
pub mod hospitals;
pub mod manifest;
pub mod people;
pub mod plant;
pub mod records;
pub mod regions;
pub mod rng;
pub mod row;
pub mod stay;
pub mod text;
pub mod writers;

pub use generate::{Options, RunStats, run, upload};
pub use manifest::{ExpectedError, FileEntry, Manifest, PlantedIdAt};
pub use writers::{FormatChoice, HeaderMode};
