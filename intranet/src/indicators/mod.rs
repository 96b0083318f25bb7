//! The query layer over the rollups: every indicator of INDICATORS.md for a
//! scope (全国 → 省 → 市 → 县 → 医院, by the hospital's registered region) and a
//! period (days, ISO weeks, seasons), with small cells `<5` below national
//! scope. Every read takes a [`Scoped`], which only [`scoped`] makes.
//!
//! ```text
//!  account + ?scope ─▶ scope::scoped ─▶ Scoped ─┬▶ compute::report   (every indicator per bucket + total)
//!                                               ├▶ views::series / tree / quality / drug_reserve
//!                                               ├▶ nowcast, mem levels (crate::nowcast, crate::levels)
//!                                               └▶ fetch (the only SQL over rollup)
//! ```

pub mod cells;
pub mod compute;
pub mod fetch;
pub mod period;
pub mod scope;
pub mod views;

pub use cells::{Cell, Group, Mean, Ratio};
pub use compute::{Indicators, Report, report};
pub use period::{By, Period};
pub use scope::{Account, Forbidden, NATIONAL, Role, Scope, Scoped, scoped};
