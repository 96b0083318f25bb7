//! The durable history that validation and the extraction rules (INTERFACE
//! §4) need: which cases are in scope, which encounters have a positive
//! result, which JLID holds each one-row-a-day slot. [`ScopeView`] is the
//! shared crate's `CheckState` over sled plus an in-memory overlay of the
//! upload being checked; `commit` writes the overlay after the records.
//!
//! ```text
//!  check_file ─▶ ScopeView ─ reads ─▶ overlay (this upload) ─▶ sled trees
//!                          └ accept() ─▶ overlay ──commit()──▶ scope_case / scope_lab / slots
//!  keys: scope_case  org ␟ case pseudonym        → ["outpatient:<rec key>", …] live case records
//!        scope_lab   org ␟ case pseudonym        → ()  (a positive result was accepted)
//!        slots       org ␟ type ␟ slot           → JLID   and   org ␟ type ␟ ␟ JLID → slot
//! ```
//! JZLSH is never stored: keys use its pseudonym (the desensitiser's case key).
//! A deleted positive result leaves the flag (INTERFACE §4: a case stays in
//! scope when the result that brought it in is deleted). Uploads of one
//! hospital are serialised by the pipeline, so the overlay cannot race.

use std::collections::{BTreeSet, HashMap, HashSet};

use flumon_shared::desens::keys::{PseudonymKey, pseudonym};
use flumon_shared::model::{Record, RecordType};
use flumon_shared::receipt::{Accepted, CheckState, slot_of};
use flumon_shared::scope::ScopeState;

use super::filter::Keys;
use super::{Store, trees};
use crate::error::{Result, codec};

const SEP: u8 = 0x1F;

fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(SEP);
        }
        k.extend_from_slice(p);
    }
    k
}

/// Scope state for one upload: sled below, this upload's changes above.
pub struct ScopeView<'a> {
    /// For its key filter (filter.rs), which spares sled the lookups of keys never written.
    store: &'a Store,
    cases: sled::Tree,
    labs: sled::Tree,
    slots: sled::Tree,
    pseudo: &'a PseudonymKey,
    /// Failures while reading sled (the trait cannot return errors): the upload fails.
    pub read_error: Option<String>,
    case_over: HashMap<Vec<u8>, BTreeSet<String>>,
    lab_over: HashSet<Vec<u8>>,
    slot_over: HashMap<Vec<u8>, Option<String>>,
}

impl<'a> ScopeView<'a> {
    /// A view over `store` for a new upload.
    pub fn new(store: &'a Store, pseudo: &'a PseudonymKey) -> Result<Self> {
        Ok(ScopeView {
            store,
            cases: store.tree(trees::SCOPE_CASE)?,
            labs: store.tree(trees::SCOPE_LAB)?,
            slots: store.tree(trees::SLOTS)?,
            pseudo,
            read_error: None,
            case_over: HashMap::new(),
            lab_over: HashSet::new(),
            slot_over: HashMap::new(),
        })
    }

    fn case_key(&self, org: &str, jzlsh: &str) -> Vec<u8> {
        key(&[org.as_bytes(), pseudonym(self.pseudo, org, "JZLSH", jzlsh).as_bytes()])
    }

    fn rec_tag(&self, org: &str, ty: RecordType, jlid: &str) -> String {
        format!("{}:{}", ty.as_str(), pseudonym(self.pseudo, org, &format!("JLID:{}", ty.as_str()), jlid))
    }

    fn note_read<T>(&mut self, r: std::result::Result<T, sled::Error>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.read_error.get_or_insert_with(|| e.to_string());
                None
            }
        }
    }

    /// Whether a positive result is recorded for case key `k` (this upload's or sled's).
    fn lab_known(&self, k: &[u8]) -> std::result::Result<bool, sled::Error> {
        if self.lab_over.contains(k) {
            return Ok(true);
        }
        if self.store.absent(Keys::ScopeLab, k) {
            return Ok(false);
        }
        self.labs.contains_key(k)
    }

    fn live_cases(&self, k: &[u8]) -> std::result::Result<BTreeSet<String>, String> {
        if let Some(s) = self.case_over.get(k) {
            return Ok(s.clone());
        }
        if self.store.absent(Keys::ScopeCase, k) {
            return Ok(BTreeSet::new());
        }
        match self.cases.get(k) {
            Ok(Some(v)) => serde_json::from_slice(&v).map_err(|e| e.to_string()),
            Ok(None) => Ok(BTreeSet::new()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn slot_get(&self, k: &[u8]) -> std::result::Result<Option<String>, String> {
        if let Some(v) = self.slot_over.get(k) {
            return Ok(v.clone());
        }
        match self.slots.get(k) {
            Ok(v) => Ok(v.map(|b| String::from_utf8_lossy(&b).into_owned())),
            Err(e) => Err(e.to_string()),
        }
    }

    fn slot_owner_key(org: &str, ty: RecordType, jlid: &str) -> Vec<u8> {
        key(&[org.as_bytes(), ty.as_str().as_bytes(), b"", jlid.as_bytes()])
    }

    fn set_slot(&mut self, org: &str, ty: RecordType, slot: &str, jlid: &str) {
        let owner_key = Self::slot_owner_key(org, ty, jlid);
        let slot_key = key(&[org.as_bytes(), ty.as_str().as_bytes(), slot.as_bytes()]);
        match self.slot_get(&owner_key) {
            Ok(Some(old)) if old == slot && self.slot_get(&slot_key).ok().flatten().as_deref() == Some(jlid) => {
                return; // a resend: the record holds its slot already
            }
            Ok(Some(old)) if old != slot => {
                // the record moved to another day: free the old slot
                self.slot_over.insert(key(&[org.as_bytes(), ty.as_str().as_bytes(), old.as_bytes()]), None);
            }
            Ok(_) => {}
            Err(e) => {
                self.read_error.get_or_insert(e);
            }
        }
        self.slot_over.insert(slot_key, Some(jlid.to_owned()));
        self.slot_over.insert(owner_key, Some(slot.to_owned()));
    }

    fn free_slot(&mut self, org: &str, ty: RecordType, jlid: &str) {
        let owner_key = Self::slot_owner_key(org, ty, jlid);
        match self.slot_get(&owner_key) {
            Ok(Some(old)) => {
                let slot_key = key(&[org.as_bytes(), ty.as_str().as_bytes(), old.as_bytes()]);
                if self.slot_get(&slot_key).ok().flatten().as_deref() == Some(jlid) {
                    self.slot_over.insert(slot_key, None);
                }
                self.slot_over.insert(owner_key, None);
            }
            Ok(None) => {}
            Err(e) => {
                self.read_error.get_or_insert(e);
            }
        }
    }

    /// Writes this upload's changes to sled (called after its records are queued).
    pub fn commit(mut self) -> Result<()> {
        self.commit_pending()
    }

    /// Writes the changes made so far (after the records that made them were
    /// queued) and empties the overlay: later reads find them in sled. An
    /// upload read in chunks commits after each, so the overlay stays small.
    ///
    /// Cases and positive labs key by key, not as sled batches: a batch (like
    /// a transaction) holds a lock that stops every other sled operation of
    /// the process, and each of these keys stands alone (a case's value is its
    /// whole set). A crash part way leaves some of an unanswered upload's scope
    /// unwritten while its records are queued; the resend the hospital makes
    /// for want of a receipt finds each change missing and makes it again. The
    /// slots stay one batch: a slot and its owner key must agree.
    pub fn commit_pending(&mut self) -> Result<()> {
        for (k, set) in std::mem::take(&mut self.case_over) {
            if set.is_empty() {
                self.cases.remove(k)?;
            } else {
                let v = serde_json::to_vec(&set).map_err(codec)?;
                self.store.note_key(Keys::ScopeCase, &k);
                self.cases.insert(k, v)?;
            }
        }
        for k in std::mem::take(&mut self.lab_over) {
            self.store.note_key(Keys::ScopeLab, &k);
            self.labs.insert(k, &[][..])?;
        }
        // a slot and its owner must change together (a record moved to another day frees the
        // old slot, takes the new one and names it): one batch, and only when there is one
        // (stock and visits rows, one a day)
        if !self.slot_over.is_empty() {
            let mut b = sled::Batch::default();
            for (k, v) in std::mem::take(&mut self.slot_over) {
                match v {
                    Some(v) => b.insert(k, v.as_bytes()),
                    None => b.remove(k),
                }
            }
            self.slots.apply_batch(b)?;
        }
        Ok(())
    }
}

impl ScopeState for ScopeView<'_> {
    fn case_in_scope(&self, org: &str, jzlsh: &str) -> bool {
        match self.live_cases(&self.case_key(org, jzlsh)) {
            Ok(s) => !s.is_empty(),
            Err(_) => false,
        }
    }

    fn positive_lab(&self, org: &str, jzlsh: &str) -> bool {
        matches!(self.lab_known(&self.case_key(org, jzlsh)), Ok(true))
    }
}

impl CheckState for ScopeView<'_> {
    fn slot_owner(&self, org: &str, ty: RecordType, slot: &str) -> Option<String> {
        self.slot_get(&key(&[org.as_bytes(), ty.as_str().as_bytes(), slot.as_bytes()])).ok().flatten()
    }

    fn accept(&mut self, a: &Accepted) {
        let rec = &a.record;
        let org = rec.common().zzjgdm.clone();
        let jlid = rec.common().jlid.clone();
        match rec {
            Record::Outpatient(_) | Record::Discharge(_) => {
                if let (Some(j), Some(_)) = (rec.jzlsh(), a.case) {
                    let k = self.case_key(&org, j);
                    let tag = self.rec_tag(&org, rec.ty(), &jlid);
                    let cur = self.live_cases(&k);
                    // a resend of a record already live writes nothing
                    if let Some(mut set) = self.note_read(cur.map_err(sled_err))
                        && set.insert(tag)
                    {
                        self.case_over.insert(k, set);
                    }
                }
            }
            Record::Lab(l) if l.is_positive_flu() => {
                let k = self.case_key(&org, &l.jzlsh);
                let known = self.lab_known(&k);
                if !matches!(self.note_read(known), Some(true)) {
                    self.lab_over.insert(k);
                }
            }
            Record::Delete(d) => {
                if matches!(d.ty, RecordType::Outpatient | RecordType::Discharge)
                    && let Some(j) = d.jzlsh.as_deref()
                {
                    let k = self.case_key(&org, j);
                    let tag = self.rec_tag(&org, d.ty, &jlid);
                    let cur = self.live_cases(&k);
                    if let Some(mut set) = self.note_read(cur.map_err(sled_err))
                        && set.remove(&tag)
                    {
                        self.case_over.insert(k, set);
                    }
                }
                if matches!(d.ty, RecordType::Stock | RecordType::Visits) {
                    self.free_slot(&org, d.ty, &jlid);
                }
            }
            _ => {}
        }
        if let Some((ty, slot)) = slot_of(rec) {
            self.set_slot(&org, ty, &slot, &jlid);
        }
    }
}

fn sled_err(s: String) -> sled::Error {
    sled::Error::Unsupported(s)
}
