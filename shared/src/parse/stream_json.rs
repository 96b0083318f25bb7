//! Streaming JSON for [`parse_stream`](super::stream::parse_stream): the
//! decoder of `json.rs` (same codes, messages and row numbers) over an
//! `io::Read`, handing rows to a [`Chunker`] instead of collecting them.
//!
//! ```text
//!  UTF-8 text (Read) ─▶ serde_json::Deserializer::from_reader ─▶ json::decode (Top ─▶ Records ─▶ Record)
//!                                                       row ─▶ Chunker ─▶ sink(Vec<RawRow>)
//! ```

use std::io::Read;

use super::json::{RowSink, decode};
use super::stream::{Chunker, StreamError};
use crate::error::Error;
use crate::model::{RawRow, RecordType};

impl<E, F: FnMut(Vec<RawRow>) -> Result<(), E>> RowSink for Chunker<'_, E, F> {
    fn push(&mut self, row: Option<RawRow>) -> Result<bool, Error> {
        Chunker::push(self, row)
    }
}

/// Parse a UTF-8 JSON text from `text`.
pub(crate) fn parse<R: Read, E, F: FnMut(Vec<RawRow>) -> Result<(), E>>(
    ty: RecordType,
    text: R,
    mut chunker: Chunker<'_, E, F>,
) -> Result<usize, StreamError<E>> {
    decode(ty, &mut serde_json::Deserializer::from_reader(text), &mut chunker)?;
    chunker.finish()
}
