//! A type's rows of one upload: written to `<type>.<ext>` (further parts
//! `<type>_2.<ext>` … past `--records-per-file` rows or the byte limit), with
//! planted invalid copies after some valid rows, and the manifest entry of
//! every part.

use std::path::PathBuf;

use anyhow::Context;
use chrono::NaiveDate;

use flumon_shared::model::RecordType;

use super::FileFormat;
use super::files::{FileWriter, Layout};
use crate::synth::manifest::{ExpectedError, FileEntry, PlantedIdAt};
use crate::synth::plant;
use crate::synth::rng::{R, chance};
use crate::synth::row::Row;

/// Everything a sink needs to know.
pub struct SinkSpec {
    /// The output directory.
    pub root: PathBuf,
    /// `<ZZJGDM>/<date>` under it.
    pub dir: String,
    pub ty: RecordType,
    pub format: FileFormat,
    pub headers: Vec<String>,
    pub header_mode: &'static str,
    pub content_type: Option<String>,
    pub layout: Layout,
    pub hospital: String,
    pub date: NaiveDate,
    pub upload_time: String,
    pub max_rows: usize,
    pub max_bytes: u64,
    pub invalid_rate: f64,
    /// Draws planted errors.
    pub rng: R,
}

struct Part {
    path: String,
    writer: FileWriter,
    rows: usize,
    deletes: usize,
    bytes: u64,
    errors: Vec<ExpectedError>,
    lab_scope: Vec<usize>,
    plants: Vec<PlantedIdAt>,
}

/// The rows of one type of one upload.
pub struct TypeSink {
    spec: SinkSpec,
    cur: Option<Part>,
    done: Vec<FileEntry>,
    parts: usize,
    planted: usize,
}

impl TypeSink {
    /// A sink; no file is created before the first row (or `finish`).
    pub fn new(spec: SinkSpec) -> TypeSink {
        TypeSink { spec, cur: None, done: Vec::new(), parts: 0, planted: 0 }
    }

    fn open(&mut self) -> anyhow::Result<()> {
        self.parts += 1;
        let s = &self.spec;
        let name = if self.parts == 1 {
            format!("{}.{}", s.ty.as_str(), s.format.ext())
        } else {
            format!("{}_{}.{}", s.ty.as_str(), self.parts, s.format.ext())
        };
        let rel = format!("{}/{}", s.dir, name);
        let dir = s.root.join(&s.dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let writer = FileWriter::create(&s.root.join(&rel), s.format, s.ty, &s.headers, &s.layout)?;
        self.cur = Some(Part {
            path: rel,
            writer,
            rows: 0,
            deletes: 0,
            bytes: 0,
            errors: Vec::new(),
            lab_scope: Vec::new(),
            plants: Vec::new(),
        });
        Ok(())
    }

    fn close(&mut self) -> anyhow::Result<()> {
        let Some(p) = self.cur.take() else { return Ok(()) };
        p.writer.finish()?;
        let s = &self.spec;
        let bytes = std::fs::metadata(s.root.join(&p.path)).map(|m| m.len()).unwrap_or(p.bytes);
        let rejected = p.errors.len() + p.lab_scope.len();
        self.done.push(FileEntry {
            path: p.path,
            hospital: s.hospital.clone(),
            date: s.date.format("%Y-%m-%d").to_string(),
            upload_time: s.upload_time.clone(),
            ty: s.ty.as_str().to_owned(),
            part: self.parts,
            format: s.format.name().to_owned(),
            encoding: s.format.encoding().map(str::to_owned),
            header: s.header_mode.to_owned(),
            content_type: s.content_type.clone(),
            rows: p.rows,
            deletes: p.deletes,
            expected_accepted: p.rows.saturating_sub(rejected),
            expected_rejected: rejected,
            errors: p.errors,
            lab_scope_rows: p.lab_scope,
            planted_ids: p.plants,
            bytes,
        });
        Ok(())
    }

    fn part(&mut self) -> anyhow::Result<&mut Part> {
        let full = self.cur.as_ref().is_some_and(|p| p.rows >= self.spec.max_rows || p.bytes >= self.spec.max_bytes);
        if full {
            self.close()?;
        }
        if self.cur.is_none() {
            self.open()?;
        }
        self.cur.as_mut().context("no open part")
    }

    fn write(&mut self, row: &Row) -> anyhow::Result<usize> {
        let style = self.spec.layout.style;
        let p = self.part()?;
        p.bytes += p.writer.row(row, &style)?;
        p.rows += 1;
        let n = p.rows;
        if row.delete {
            p.deletes += 1;
        }
        if row.lab_scope && !row.delete {
            p.lab_scope.push(n);
        }
        for id in &row.plants {
            p.plants.push(PlantedIdAt {
                row: n,
                field: id.field.to_owned(),
                kind: id.kind.to_owned(),
                value: id.value.clone(),
                rule: id.rule.to_owned(),
            });
        }
        Ok(n)
    }

    /// Write a valid row, and maybe a planted invalid copy after it. Returns rows written.
    pub fn push(&mut self, row: Row) -> anyhow::Result<usize> {
        self.write(&row)?;
        if row.delete || self.spec.invalid_rate <= 0.0 || !chance(&mut self.spec.rng, self.spec.invalid_rate) {
            return Ok(1);
        }
        self.planted += 1;
        let Some((bad, what)) = plant::plant_any(&mut self.spec.rng, &row, self.spec.date, self.planted) else {
            return Ok(1);
        };
        let n = self.write(&bad)?;
        if let Some(p) = self.cur.as_mut() {
            p.errors.push(ExpectedError { row: n, field: what.field, code: what.code.to_owned() });
        }
        Ok(2)
    }

    /// Close the last part (an empty upload is a header-only file) and return the entries.
    pub fn finish(mut self) -> anyhow::Result<Vec<FileEntry>> {
        if self.parts == 0 {
            self.open()?;
        }
        self.close()?;
        Ok(self.done)
    }
}
