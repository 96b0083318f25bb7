//! Incremental entry point for large uploads: the same answers as
//! [`parse_upload`](super::parse_upload), without ever holding the file.
//!
//! ```text
//!  body chunks ─▶ Scan::update   (first 4 KiB kept for sniffing; NUL, BOM,
//!                 │               UTF-8 and GB18030 validity, CSV quote balance:
//!                 │               byte state machines, O(1) memory)
//!                 ▼ Scan::finish ─▶ whole-file error (same code and message as parse_upload)
//!                 │                 or Plan { format, charset, BOM length }
//!  the same bytes again (a Read) ─▶ parse_stream(plan) ─▶ skip BOM ─▶ GB18030→UTF-8 (GbReader)
//!                 ─▶ CSV (csv::Reader) / JSON (stream_json.rs, serde over io::Read)
//!                 ─▶ rows in chunks of `chunk_rows` ─▶ sink(Vec<RawRow>)
//! ```
//! A whole-file error found while parsing (`FILE_ROW_WIDTH` at row 150,000,
//! `FILE_TOO_MANY_ROWS`) can come after rows were handed out: callers that act
//! on rows run the parse once with a discarding sink first (the bytes are the
//! same, so the second run cannot fail differently). XLSX is not handled
//! here (a zip needs random access): [`Plan::format`] says so and the caller
//! reads it with `parse_upload`.
//!
//! Equivalence with `parse_upload` is tested (`stream_tests.rs`) over the
//! parser fixtures, cut into chunks of many sizes. One known difference: a
//! JSON *structure* error (e.g. a record that is a number) may name a column
//! one further, because serde_json's reader counts the byte it peeked.

use std::io::{self, Read};

use csv::{ReaderBuilder, StringRecord};
use encoding_rs::{DecoderResult, GB18030};

use super::header::{Header, RowBuilder};
use super::{Charset, FILE_CSV, FILE_ENCODING, FILE_TRUNCATED, Format, Limits, detect, too_many_rows};
use crate::error::Error;
use crate::model::{Cell, RawRow, RecordType, type_def};

const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";
/// Bytes kept from the start of the file for sniffing.
const SAMPLE: usize = 4096;

/// CSV quote-balance state (as `csv.rs`'s check).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Q {
    Start,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// What is learnt about an upload while its bytes go past.
pub struct Scan {
    content_type: Option<String>,
    /// The first bytes (≤ [`SAMPLE`]); the machines below start once it is full.
    prefix: Vec<u8>,
    started: bool,
    bom: bool,
    /// First byte after the BOM that is not ASCII whitespace, when not in `prefix`.
    first_nonws: Option<u8>,
    has_nul: bool,
    total: u64,
    // UTF-8
    utf8_ok: bool,
    utf8_carry: Vec<u8>,
    newlines: usize,
    utf8_bad_line: usize,
    // GB18030
    gb: encoding_rs::Decoder,
    gb_ok: bool,
    gb_scratch: Vec<u8>,
    // CSV quotes
    q: Q,
    q_line: u64,
    q_opened: u64,
}

/// How to read the bytes again: the format, the charset, the BOM to skip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub format: Format,
    pub charset: Charset,
    pub bom_len: usize,
}

impl Scan {
    /// A scan of an upload declared with `content_type`.
    pub fn new(content_type: Option<&str>) -> Scan {
        Scan {
            content_type: content_type.map(str::to_owned),
            prefix: Vec::with_capacity(SAMPLE),
            started: false,
            bom: false,
            first_nonws: None,
            has_nul: false,
            total: 0,
            utf8_ok: true,
            utf8_carry: Vec::new(),
            newlines: 0,
            utf8_bad_line: 0,
            gb: GB18030.new_decoder_without_bom_handling(),
            gb_ok: true,
            gb_scratch: vec![0; 16 * 1024],
            q: Q::Start,
            q_line: 1,
            q_opened: 1,
        }
    }

    /// Bytes seen so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Feeds the next bytes of the upload.
    pub fn update(&mut self, bytes: &[u8]) {
        self.total = self.total.saturating_add(bytes.len() as u64);
        if self.started {
            self.machines(bytes);
            return;
        }
        let room = SAMPLE.saturating_sub(self.prefix.len());
        let (head, rest) = bytes.split_at(room.min(bytes.len()));
        self.prefix.extend_from_slice(head);
        if self.prefix.len() >= SAMPLE {
            self.start();
            self.machines(rest);
        }
    }

    fn start(&mut self) {
        self.started = true;
        self.bom = self.prefix.starts_with(UTF8_BOM);
        let prefix = std::mem::take(&mut self.prefix);
        let body = if self.bom { prefix.get(UTF8_BOM.len()..).unwrap_or_default() } else { prefix.as_slice() };
        self.machines(body);
        self.prefix = prefix;
    }

    /// The byte machines over text after the BOM.
    fn machines(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if !self.has_nul && bytes.contains(&0) {
            self.has_nul = true;
        }
        if self.first_nonws.is_none() {
            self.first_nonws = bytes.iter().copied().find(|b| !b.is_ascii_whitespace());
        }
        self.utf8(bytes);
        self.gb18030(bytes, false);
        self.quotes(bytes);
    }

    fn utf8(&mut self, bytes: &[u8]) {
        if !self.utf8_ok {
            return;
        }
        let mut buf = std::mem::take(&mut self.utf8_carry);
        buf.extend_from_slice(bytes);
        match std::str::from_utf8(&buf) {
            Ok(_) => self.newlines += count_nl(&buf),
            Err(e) => {
                let valid = buf.get(..e.valid_up_to()).unwrap_or_default();
                if e.error_len().is_none() {
                    self.newlines += count_nl(valid);
                    self.utf8_carry = buf.get(e.valid_up_to()..).unwrap_or_default().to_vec();
                } else {
                    self.utf8_ok = false;
                    self.utf8_bad_line = self.newlines + count_nl(valid) + 1;
                }
            }
        }
    }

    fn gb18030(&mut self, mut bytes: &[u8], last: bool) {
        if !self.gb_ok {
            return;
        }
        loop {
            let (res, read, _) = self.gb.decode_to_utf8_without_replacement(bytes, &mut self.gb_scratch, last);
            bytes = bytes.get(read..).unwrap_or_default();
            match res {
                DecoderResult::InputEmpty => return,
                DecoderResult::OutputFull => {}
                DecoderResult::Malformed(..) => {
                    self.gb_ok = false;
                    return;
                }
            }
        }
    }

    fn quotes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.q_line += 1;
            }
            self.q = match (self.q, b) {
                (Q::Start, b'"') => {
                    self.q_opened = self.q_line;
                    Q::Quoted
                }
                (Q::QuoteInQuoted, b'"') => Q::Quoted,
                (Q::Start | Q::Unquoted | Q::QuoteInQuoted, b',' | b'\r' | b'\n') => Q::Start,
                (Q::Start | Q::Unquoted | Q::QuoteInQuoted, _) => Q::Unquoted,
                (Q::Quoted, b'"') => Q::QuoteInQuoted,
                (Q::Quoted, _) => Q::Quoted,
            };
        }
    }

    /// The whole-file verdict, in `parse_upload`'s order: size, format, encoding, CSV quotes.
    pub fn finish(mut self, limits: &Limits) -> Result<Plan, Error> {
        if self.total > limits.max_bytes as u64 {
            return Err(super::too_large(
                super::FILE_TOO_LARGE,
                format!("文件超过 {} 字节的上限 (file too large); 请分多个文件上传", limits.max_bytes),
            ));
        }
        if !self.started {
            self.start();
        }
        // A sample that `detect` classifies exactly as the whole file.
        let mut sample = self.prefix.clone();
        let skip = if self.bom { UTF8_BOM.len() } else { 0 };
        let body = sample.get(skip..).unwrap_or_default();
        if !body.iter().any(|b| !b.is_ascii_whitespace())
            && let Some(b) = self.first_nonws
        {
            sample.push(b);
        }
        if self.has_nul && !sample.contains(&0) {
            sample.push(0);
        }
        let (format, declared) = detect::sniff(self.content_type.as_deref(), &sample)?;
        if format == Format::Xlsx {
            return Ok(Plan { format, charset: Charset::Utf8, bom_len: 0 });
        }
        if !self.utf8_carry.is_empty() && self.utf8_ok {
            self.utf8_ok = false;
            self.utf8_bad_line = self.newlines + 1;
        }
        self.gb18030(&[], true);
        let utf8_err = |why: &str, line: usize| {
            Error::file(
                FILE_ENCODING,
                format!(
                    "{why}, 但第 {line} 行 (按换行计) 不是有效的 UTF-8 (invalid UTF-8); \
                     如文件为 GB18030 编码, 请去掉 BOM 并声明 charset=gb18030"
                ),
            )
        };
        let charset = if self.bom {
            if !self.utf8_ok {
                return Err(utf8_err("文件以 UTF-8 BOM 开头", self.utf8_bad_line));
            }
            Charset::Utf8
        } else {
            match declared {
                Some(Charset::Utf8) if !self.utf8_ok => {
                    return Err(utf8_err("Content-Type 声明为 UTF-8", self.utf8_bad_line));
                }
                Some(Charset::Utf8) => Charset::Utf8,
                Some(Charset::Gb18030) if self.gb_ok => Charset::Gb18030,
                Some(Charset::Gb18030) => {
                    return Err(Error::file(
                        FILE_ENCODING,
                        "Content-Type 声明为 GB18030, 但文件中有不是 GB18030 编码的字节 (not valid GB18030); \
                         请检查导出时选择的编码",
                    ));
                }
                None if self.utf8_ok => Charset::Utf8,
                None if self.gb_ok => Charset::Gb18030,
                None => {
                    return Err(Error::file(
                        FILE_ENCODING,
                        "文件编码既不是 UTF-8 也不是 GB18030 (encoding neither UTF-8 nor GB18030); \
                         请另存为 UTF-8 编码",
                    ));
                }
            }
        };
        if format == Format::Csv && self.q == Q::Quoted {
            return Err(Error::file(
                FILE_TRUNCATED,
                format!(
                    "CSV 第 {} 行开始的引号没有结束, 文件可能被截断或引号未成对 \
                     (unterminated quote); 字段中的引号须写成两个引号 \"\"",
                    self.q_opened
                ),
            ));
        }
        Ok(Plan { format, charset, bom_len: skip })
    }
}

fn count_nl(b: &[u8]) -> usize {
    b.iter().filter(|c| **c == b'\n').count()
}

/// Why [`parse_stream`] stopped: the file (a whole-file error) or the sink.
#[derive(Debug)]
pub enum StreamError<E> {
    File(Error),
    Sink(E),
}

impl<E> From<Error> for StreamError<E> {
    fn from(e: Error) -> Self {
        StreamError::File(e)
    }
}

/// Collects rows into chunks for the sink, counting against `max_rows`.
pub(crate) struct Chunker<'a, E, F: FnMut(Vec<RawRow>) -> Result<(), E>> {
    limits: &'a Limits,
    chunk_rows: usize,
    buf: Vec<RawRow>,
    count: usize,
    sink: F,
    /// The sink's error, once it failed.
    pub(crate) failed: Option<E>,
}

impl<'a, E, F: FnMut(Vec<RawRow>) -> Result<(), E>> Chunker<'a, E, F> {
    pub(crate) fn new(limits: &'a Limits, chunk_rows: usize, sink: F) -> Self {
        let chunk_rows = chunk_rows.max(1);
        Chunker { limits, chunk_rows, buf: Vec::with_capacity(chunk_rows), count: 0, sink, failed: None }
    }

    /// Adds a finished row (blank rows dropped): a whole-file error past `max_rows`,
    /// `Ok(false)` when the sink failed (stop reading).
    pub(crate) fn push(&mut self, row: Option<RawRow>) -> Result<bool, Error> {
        let Some(row) = row else { return Ok(true) };
        if self.count >= self.limits.max_rows {
            return Err(too_many_rows(self.limits));
        }
        self.count += 1;
        self.buf.push(row);
        if self.buf.len() >= self.chunk_rows {
            return Ok(self.flush());
        }
        Ok(true)
    }

    fn flush(&mut self) -> bool {
        if self.buf.is_empty() || self.failed.is_some() {
            return self.failed.is_none();
        }
        let rows = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk_rows));
        if let Err(e) = (self.sink)(rows) {
            self.failed = Some(e);
            return false;
        }
        true
    }

    /// Hands out the last chunk; returns the number of rows.
    pub(crate) fn finish(mut self) -> Result<usize, StreamError<E>> {
        self.flush();
        match self.failed {
            Some(e) => Err(StreamError::Sink(e)),
            None => Ok(self.count),
        }
    }
}

/// Parses the bytes that [`Scan`] planned (read again from `reader`, from
/// their first byte), handing rows to `sink` in chunks of `chunk_rows`.
/// Returns the number of rows. XLSX is refused (`FILE_FORMAT`): read it with
/// `parse_upload`.
pub fn parse_stream<R: Read, E>(
    ty: RecordType,
    plan: &Plan,
    reader: R,
    limits: &Limits,
    chunk_rows: usize,
    sink: impl FnMut(Vec<RawRow>) -> Result<(), E>,
) -> Result<usize, StreamError<E>> {
    let mut reader = reader;
    let mut bom = [0u8; 3];
    let bom = bom.get_mut(..plan.bom_len.min(3)).unwrap_or_default();
    reader.read_exact(bom).map_err(|e| StreamError::File(Error::Io(e)))?;
    let text: Box<dyn Read + '_> = match plan.charset {
        Charset::Utf8 => Box::new(reader),
        Charset::Gb18030 => Box::new(GbReader::new(reader)),
    };
    let chunker = Chunker::new(limits, chunk_rows, sink);
    match plan.format {
        Format::Csv => csv_stream(ty, text, chunker),
        Format::Json => super::stream_json::parse(ty, text, chunker),
        Format::Xlsx => Err(StreamError::File(Error::file(
            super::FILE_FORMAT,
            "XLSX 不能流式读取 (XLSX cannot be streamed); 请用 parse_upload",
        ))),
    }
}

fn csv_stream<R: Read, E, F: FnMut(Vec<RawRow>) -> Result<(), E>>(
    ty: RecordType,
    text: R,
    mut chunker: Chunker<'_, E, F>,
) -> Result<usize, StreamError<E>> {
    let def = type_def(ty);
    let mut rdr = ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text);
    let mut rec = StringRecord::new();
    if !read(&mut rdr, &mut rec)? {
        return chunker.finish();
    }
    let names: Vec<Option<String>> = rec.iter().map(|s| Some(s.to_owned())).collect();
    let header = Header::map(def, &names)?;
    let mut prev = Span::of(&rec);
    let mut row = 0usize;
    while read(&mut rdr, &mut rec)? {
        let span = Span::of(&rec);
        let blank = span.start.saturating_sub(prev.start).saturating_sub(prev.newlines).saturating_sub(1);
        row = row.saturating_add(1).saturating_add(usize::try_from(blank).unwrap_or(usize::MAX));
        prev = span;
        let mut b = RowBuilder::new(def);
        for (c, field) in rec.iter().enumerate() {
            b.place(&header, c, Cell::Text(field.to_owned()), row)?;
        }
        if !chunker.push(b.finish(row))? {
            break;
        }
    }
    chunker.finish()
}

#[derive(Clone, Copy)]
struct Span {
    start: u64,
    newlines: u64,
}

impl Span {
    fn of(rec: &StringRecord) -> Span {
        let start = rec.position().map_or(0, csv::Position::line);
        let newlines = rec.iter().map(|f| f.bytes().filter(|b| *b == b'\n').count()).sum::<usize>();
        Span { start, newlines: u64::try_from(newlines).unwrap_or(u64::MAX) }
    }
}

fn read<R: Read>(rdr: &mut csv::Reader<R>, rec: &mut StringRecord) -> Result<bool, Error> {
    rdr.read_record(rec).map_err(|e| {
        let line = e.position().map_or(0, csv::Position::line);
        Error::file(FILE_CSV, format!("CSV 第 {line} 行无法解析 (unreadable CSV); 请按 RFC 4180 导出"))
    })
}

/// GB18030 bytes in, UTF-8 out (malformed input is an I/O error: the scan
/// already refused such files).
pub struct GbReader<R: Read> {
    inner: R,
    dec: encoding_rs::Decoder,
    inbuf: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    eof: bool,
    out: Vec<u8>,
    out_pos: usize,
    out_len: usize,
    done: bool,
}

impl<R: Read> GbReader<R> {
    pub fn new(inner: R) -> Self {
        GbReader {
            inner,
            dec: GB18030.new_decoder_without_bom_handling(),
            inbuf: vec![0; 32 * 1024],
            in_pos: 0,
            in_len: 0,
            eof: false,
            out: vec![0; 64 * 1024],
            out_pos: 0,
            out_len: 0,
            done: false,
        }
    }
}

impl<R: Read> Read for GbReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_pos < self.out_len {
                let avail = self.out.get(self.out_pos..self.out_len).unwrap_or_default();
                let n = avail.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), avail.get(..n)) {
                    dst.copy_from_slice(src);
                }
                self.out_pos += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            if self.in_pos >= self.in_len && !self.eof {
                let n = self.inner.read(&mut self.inbuf)?;
                self.in_pos = 0;
                self.in_len = n;
                self.eof = n == 0;
            }
            let input = self.inbuf.get(self.in_pos..self.in_len).unwrap_or_default();
            let (res, read, written) = self.dec.decode_to_utf8_without_replacement(input, &mut self.out, self.eof);
            self.in_pos += read;
            self.out_pos = 0;
            self.out_len = written;
            match res {
                DecoderResult::Malformed(..) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "GB18030 解码失败 (invalid GB18030)"));
                }
                DecoderResult::InputEmpty if self.eof => self.done = true,
                DecoderResult::InputEmpty | DecoderResult::OutputFull => {}
            }
        }
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
