//! `flumon-tests`: flumon's cross-process end-to-end tests and the synthetic
//! data generator behind them ([`synth`], the `flumon-synth` binary).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod harness;
pub mod synth;
pub mod webdriver;
