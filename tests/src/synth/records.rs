//! From an encounter to rows: which version of each record an upload made at
//! `now` carries (the latest event at or before `now`, sent when its YWRQ is
//! in the window), and the row of that version: CZLX 1 for a creation, 2 with
//! the change applied for a modification, 3 with only the common fields and
//! JZLSH for a delete.

use chrono::{NaiveDate, NaiveDateTime};

use flumon_shared::model::RecordType;
use flumon_shared::scope::{is_flu_code, is_flu_name};

use super::clinical::Dx;
use super::encounter::{Encounter, Ev, Event, Kind, Life, M_CONFIRM, M_COST, M_ESCALATE, M_OUTCOME, M_STOP, M_SUBTYPE};
use super::hospitals::Hospital;
use super::people::Person;
use super::rng::{self, tag};
use super::row::{Row, V};
use super::stay::{M_AMEND, M_DX_ADD, M_GDRQ};

/// What an upload is: whose, when made, which YWRQ it covers.
#[derive(Clone, Copy, Debug)]
pub struct Upload<'a> {
    pub seed: u64,
    pub hospital: &'a Hospital,
    /// The time of the upload (GXSJ never after it).
    pub now: NaiveDateTime,
    /// First and last YWRQ sent.
    pub window: (NaiveDate, NaiveDate),
    /// Fill XM/BAH/SFZH/DH of summary and death rows.
    pub scrub_fields: bool,
}

/// The version an upload at `u.now` carries: its index in `life`.
pub fn select(life: &Life, u: &Upload<'_>) -> Option<usize> {
    let i = life.iter().rposition(|e| e.at <= u.now)?;
    let e = life.get(i)?;
    (e.ywrq >= u.window.0 && e.ywrq <= u.window.1).then_some(i)
}

fn mods(life: &Life, i: usize) -> Vec<u8> {
    life.iter()
        .take(i + 1)
        .filter_map(|e| match e.ev {
            Ev::Modify(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// The JLID of a record: the natural one, or 32 hex digits for hospitals that hash.
pub fn jlid(u: &Upload<'_>, ty: RecordType, natural: &str) -> String {
    if !u.hospital.style.hashed_jlid {
        return natural.to_owned();
    }
    let mut key = 0xcbf2_9ce4_8422_2325u64;
    for b in natural.bytes() {
        key = (key ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let ty_key = RecordType::ALL.iter().position(|t| *t == ty).unwrap_or(0) as u64;
    let a = rng::hash(u.seed, &[tag::JLID, u.hospital.index as u64, ty_key, key]);
    let b = rng::hash(u.seed, &[tag::JLID, a, key]);
    format!("{a:016x}{b:016x}")
}

/// Common fields (§2).
pub fn common(row: &mut Row, u: &Upload<'_>, jlid: String, e: &Event) {
    row.set("ZZJGDM", V::s(&u.hospital.code));
    row.set("JLID", V::S(jlid));
    let czlx = match e.ev {
        Ev::Create => 1,
        Ev::Modify(_) => 2,
        Ev::Delete => 3,
    };
    row.set("CZLX", V::code(czlx));
    row.set("GXSJ", V::Dt(e.at));
    row.set("YWRQ", V::Date(e.ywrq));
    row.set("BBH", V::St("1.0"));
}

/// A delete row: the common fields and JZLSH only.
pub fn delete_row(ty: RecordType, u: &Upload<'_>, jlid: String, e: &Event, jzlsh: Option<&str>) -> Row {
    let mut row = Row::new(ty);
    // YWRQ is not checked on deletes; some hospitals leave it out.
    let drop_ywrq =
        rng::hash(u.seed, &[tag::JLID, jlid.len() as u64, e.at.and_utc().timestamp().unsigned_abs()]).is_multiple_of(3);
    common(&mut row, u, jlid, e);
    if drop_ywrq {
        row.set("YWRQ", V::E);
    }
    if let Some(j) = jzlsh {
        row.set("JZLSH", V::s(j));
    }
    row.delete = true;
    row
}

fn patient(row: &mut Row, p: &Person, nl: i64, months: Option<i64>) {
    row.set("XM", V::s(&p.xm));
    row.set("XB", V::code(p.xb));
    row.set("CSRQ", V::Date(p.csrq));
    row.set("NL", V::I(nl));
    row.set("BZYZS_NL", months.map_or(V::E, V::I));
    row.set("ZJLX", V::code(p.zjlx));
    row.set("SFZH", V::opt_s(p.sfzh.as_deref()));
    row.set("GJ", V::St(p.gj));
    row.set("MZ", V::St(p.mz));
    row.set("ZY", V::opt_st(p.zy));
    row.set("XZZ", V::s(&p.xzz));
    row.set("XZZ_XZQH", V::St(p.xzz_xzqh));
    row.set("DH", V::opt_s(p.dh.as_deref()));
    row.set("YLFKFS", V::opt_st(p.ylfkfs));
}

fn out_of_scope_by_dx(dx: &[Dx]) -> bool {
    !dx.iter().any(|(c, n)| is_flu_code(c) || is_flu_name(n))
}

fn outpatient(u: &Upload<'_>, enc: &Encounter, i: usize) -> Option<Row> {
    let e = enc.op_life.get(i)?;
    let id = jlid(u, RecordType::Outpatient, &enc.jzlsh);
    if e.ev == Ev::Delete {
        return Some(delete_row(RecordType::Outpatient, u, id, e, Some(&enc.jzlsh)));
    }
    let m = mods(&enc.op_life, i);
    let mut row = Row::new(RecordType::Outpatient);
    common(&mut row, u, id, e);
    row.set("JZLSH", V::s(&enc.jzlsh));
    patient(&mut row, &enc.person, enc.nl, enc.months);
    let jzlx = match enc.kind {
        Kind::Outpatient => 1,
        Kind::Emergency => 2,
        Kind::Inpatient => 3,
    };
    row.set("JZLX", V::code(jzlx));
    row.set("MZZYH", V::s(&enc.mzzyh));
    row.set("JZSJ", V::Dt(enc.jzsj));
    row.set("KSMC", V::St(enc.ksmc));
    row.set("FBRQ", enc.fbrq.map_or(V::E, V::Date));
    row.set("ZGTW", enc.zgtw.map_or(V::E, |t| V::D1(i64::from(t))));
    let confirmed = m.contains(&M_CONFIRM);
    let dx = if confirmed { &enc.dx_confirmed } else { &enc.dx };
    for (n, (code, name)) in dx.iter().take(10).enumerate() {
        row.set(ZDBM.get(n).copied().unwrap_or_default(), V::St(code));
        row.set(ZDMC.get(n).copied().unwrap_or_default(), V::St(name));
    }
    row.lab_scope = out_of_scope_by_dx(dx);
    row.set("ZDYJ", V::code(if confirmed { 2 } else { enc.zdyj }));
    let escalated = m.contains(&M_ESCALATE) || m.contains(&M_OUTCOME);
    row.set("LCFX", V::code(if escalated { enc.lcfx_final } else { enc.lcfx }));
    if !enc.gwys.is_empty() {
        let v: Vec<String> = enc.gwys.iter().map(u8::to_string).collect();
        row.set("GWYS", V::S(v.join(";")));
    }
    row.set("YMJZ", V::opt_code(enc.ymjz));
    row.set("KBD", V::code(if enc.kbdsj.is_some() { 1 } else { 2 }));
    row.set("KBDSJ", enc.kbdsj.map_or(V::E, V::Dt));
    if enc.kind == Kind::Inpatient {
        let (icu, jxtq, ecmo) = if escalated { enc.flags } else { (2, 2, 2) };
        row.set("ICU", V::code(icu));
        row.set("JXTQ", V::code(jxtq));
        row.set("ECMO", V::code(ecmo));
    }
    row.set("ZGZT", V::code(if m.contains(&M_OUTCOME) { enc.zgzt_final } else { enc.zgzt }));
    let zfy = match (enc.kind, enc.stay.as_ref()) {
        (Kind::Inpatient, Some(_)) if m.contains(&M_OUTCOME) => enc.zfy_final,
        (Kind::Inpatient, Some(s)) if m.contains(&M_ESCALATE) => s.zfy_mid,
        (Kind::Inpatient, _) => enc.cost.0,
        _ if m.contains(&M_COST) => enc.zfy_final,
        _ => enc.cost.0,
    };
    row.set("ZFY", V::D2(zfy));
    row.set("YPF", enc.cost.1.map_or(V::E, V::D2));
    row.set("JYF", enc.cost.2.map_or(V::E, V::D2));
    row.set("KBDF", enc.cost.3.map_or(V::E, V::D2));
    Some(row)
}

const ZDBM: [&str; 10] = ["ZDBM1", "ZDBM2", "ZDBM3", "ZDBM4", "ZDBM5", "ZDBM6", "ZDBM7", "ZDBM8", "ZDBM9", "ZDBM10"];
const ZDMC: [&str; 10] = ["ZDMC1", "ZDMC2", "ZDMC3", "ZDMC4", "ZDMC5", "ZDMC6", "ZDMC7", "ZDMC8", "ZDMC9", "ZDMC10"];
const QTZD_JBDM: [&str; 15] = [
    "QTZD_JBDM1",
    "QTZD_JBDM2",
    "QTZD_JBDM3",
    "QTZD_JBDM4",
    "QTZD_JBDM5",
    "QTZD_JBDM6",
    "QTZD_JBDM7",
    "QTZD_JBDM8",
    "QTZD_JBDM9",
    "QTZD_JBDM10",
    "QTZD_JBDM11",
    "QTZD_JBDM12",
    "QTZD_JBDM13",
    "QTZD_JBDM14",
    "QTZD_JBDM15",
];
const QTZD: [&str; 15] = [
    "QTZD1", "QTZD2", "QTZD3", "QTZD4", "QTZD5", "QTZD6", "QTZD7", "QTZD8", "QTZD9", "QTZD10", "QTZD11", "QTZD12",
    "QTZD13", "QTZD14", "QTZD15",
];

/// The doctors' names in the extra HQMS columns.
const DOCTORS: &[&str] = &["李建国", "王晓燕", "张明", "陈立新", "刘芳", "赵志刚"];

fn discharge(u: &Upload<'_>, enc: &Encounter, i: usize) -> Option<Row> {
    let s = enc.stay.as_ref()?;
    let e = s.life.get(i)?;
    let id = jlid(u, RecordType::Discharge, &format!("BA{}-{}", s.bah, s.zycs));
    if e.ev == Ev::Delete {
        return Some(delete_row(RecordType::Discharge, u, id, e, Some(&enc.jzlsh)));
    }
    let m = mods(&s.life, i);
    let mut row = Row::new(RecordType::Discharge);
    common(&mut row, u, id, e);
    row.set("JZLSH", V::s(&enc.jzlsh));
    patient(&mut row, &enc.person, enc.nl, enc.months);
    row.set("BAH", V::s(&s.bah));
    row.set("ZYCS", V::I(s.zycs));
    row.set("RYTJ", V::code(s.rytj));
    row.set("RYSJ", V::Dt(s.rysj));
    row.set("CYSJ", V::Dt(s.cysj));
    row.set("FBRQ", enc.fbrq.map_or(V::E, V::Date));
    row.set("ZDYJ", V::opt_code(s.zdyj));
    row.set("SJZYTS", V::I(s.sjzyts));
    row.set("CYKB", V::St(s.cykb));
    if let Some((c, n)) = s.mzzd {
        row.set("MZZD_JBBM", V::St(c));
        row.set("MZZD", V::St(n));
    }
    row.set("ZYZD_JBDM", V::St(s.zyzd.0));
    row.set("ZYZD", V::St(s.zyzd.1));
    row.set("RYBQ", V::code(s.rybq));
    let mut qt = s.qtzd.clone();
    if m.contains(&M_DX_ADD) {
        qt.push(s.qtzd_late);
    }
    for (n, (c, name)) in qt.iter().take(15).enumerate() {
        row.set(QTZD_JBDM.get(n).copied().unwrap_or_default(), V::St(c));
        row.set(QTZD.get(n).copied().unwrap_or_default(), V::St(name));
    }
    let mut all = vec![s.zyzd];
    all.extend(s.mzzd);
    all.extend(qt.iter().copied());
    row.lab_scope = out_of_scope_by_dx(&all);
    row.set("LCFX", V::code(enc.lcfx_final));
    row.set("ICUTS", s.icuts.map_or(V::E, V::I));
    row.set("JXTQSJ", s.jxtqsj.map_or(V::E, V::I));
    row.set("ECMO", V::opt_code(s.ecmo));
    row.set("KBD", V::code(if enc.kbdsj.is_some() { 1 } else { 2 }));
    row.set("KBDSJ", enc.kbdsj.map_or(V::E, V::Dt));
    row.set("LYFS", V::code(s.lyfs));
    row.set("ZFY", V::D2(s.zfy));
    row.set("ZFJE", V::D2(s.zfje));
    row.set("XYF", s.xyf.map_or(V::E, V::D2));
    row.set("KJYWF", s.kjywf.map_or(V::E, V::D2));
    row.set("HLF", s.hlf.map_or(V::E, V::D2));
    row.set("YLFUF", s.ylfuf.map_or(V::E, V::D2));
    if u.hospital.style.hqms_extra {
        let doctor = DOCTORS.get(usize::try_from(enc.k % DOCTORS.len() as u64).unwrap_or(0)).copied().unwrap_or("");
        row.extra = vec![
            enc.ksmc.to_owned(),
            doctor.to_owned(),
            (s.cysj.date() + chrono::Duration::days(3)).format("%Y-%m-%d").to_string(),
        ];
    }
    Some(row)
}

fn scrub_ids(row: &mut Row, u: &Upload<'_>, enc: &Encounter, always: bool) {
    if !(u.scrub_fields || always) {
        return;
    }
    row.set("XM", V::s(&enc.person.xm));
    row.set("BAH", enc.stay.as_ref().map_or(V::E, |s| V::s(&s.bah)));
    row.set("SFZH", V::opt_s(enc.person.sfzh.as_deref()));
    row.set("DH", V::opt_s(enc.person.dh.as_deref()));
}

fn summary(u: &Upload<'_>, enc: &Encounter, i: usize) -> Option<Row> {
    let s = enc.stay.as_ref()?;
    let e = s.summary_life.get(i)?;
    let id = jlid(u, RecordType::Summary, &format!("XJ{}", enc.jzlsh));
    if e.ev == Ev::Delete {
        return Some(delete_row(RecordType::Summary, u, id, e, Some(&enc.jzlsh)));
    }
    let m = mods(&s.summary_life, i);
    let mut row = Row::new(RecordType::Summary);
    common(&mut row, u, id, e);
    row.set("JZLSH", V::s(&enc.jzlsh));
    scrub_ids(&mut row, u, enc, !s.plants.is_empty());
    row.set("RYSJ", V::Dt(s.rysj));
    row.set("CYSJ", V::Dt(s.cysj));
    let t = &s.summary;
    row.set("RYQK", V::s(&t.ryqk));
    row.set("RYZD", V::s(&t.ryzd));
    row.set("ZLGC", V::s(&t.zlgc));
    row.set("CYZD", V::s(&t.cyzd));
    row.set("CYQK", V::s(&t.cyqk));
    row.set("CYYZ", V::s(if m.contains(&M_AMEND) { &t.cyyz_amended } else { &t.cyyz }));
    row.plants = s.plants.clone();
    Some(row)
}

fn death(u: &Upload<'_>, enc: &Encounter, i: usize) -> Option<Row> {
    let d = enc.death.as_ref()?;
    let e = d.life.get(i)?;
    let id = jlid(u, RecordType::Death, &format!("SW{}", enc.jzlsh));
    if e.ev == Ev::Delete {
        return Some(delete_row(RecordType::Death, u, id, e, Some(&enc.jzlsh)));
    }
    let m = mods(&d.life, i);
    let mut row = Row::new(RecordType::Death);
    common(&mut row, u, id, e);
    row.set("JZLSH", V::s(&enc.jzlsh));
    scrub_ids(&mut row, u, enc, !d.plants.is_empty());
    row.set("RYSJ", d.rysj.map_or(V::E, V::Dt));
    row.set("SWSJ", V::Dt(d.swsj));
    row.set("RYQK", V::s(&d.ryqk));
    row.set("ZLGC", V::s(&d.zlgc));
    row.set("ZJSY", V::St(d.zjsy.1));
    row.set("ZJSY_JBDM", V::St(d.zjsy.0));
    row.set("GBSY_JBDM", V::St(d.gbsy));
    row.set("LGSYXG", V::code(d.lgsyxg));
    row.set("SWDD", V::opt_code(d.swdd));
    if m.contains(&M_GDRQ) {
        row.set("GDRQ", V::Date(d.gdrq));
    }
    row.plants = d.plants.clone();
    Some(row)
}

fn lab(u: &Upload<'_>, enc: &Encounter, l: &super::encounter::LabTest, i: usize) -> Option<Row> {
    let e = l.life.get(i)?;
    let id = jlid(u, RecordType::Lab, &l.bgdh);
    if e.ev == Ev::Delete {
        return Some(delete_row(RecordType::Lab, u, id, e, Some(&enc.jzlsh)));
    }
    let m = mods(&l.life, i);
    let mut row = Row::new(RecordType::Lab);
    common(&mut row, u, id, e);
    row.set("JZLSH", V::s(&enc.jzlsh));
    row.set("BGDH", V::s(&l.bgdh));
    row.set("BBLB", V::code(l.bblb));
    row.set("CYSJ", V::Dt(l.cysj));
    row.set("BGSJ", V::Dt(l.bgsj));
    row.set("JYXMMC", V::St(l.jyxmmc));
    row.set("JYFF", V::code(l.jyff));
    row.set("DXJG", V::code(l.dxjg));
    row.set("BDLX", V::opt_code(l.bdlx));
    row.set("YX", V::opt_code(if m.contains(&M_SUBTYPE) { l.yx_final } else { l.yx }));
    row.set("CT", l.ct.map_or(V::E, |c| V::D1(i64::from(c))));
    Some(row)
}

fn medication(u: &Upload<'_>, enc: &Encounter, o: &super::encounter::MedOrder, i: usize) -> Option<Row> {
    let e = o.life.get(i)?;
    let id = jlid(u, RecordType::Medication, &format!("{}-{}", o.yzid, o.line));
    if e.ev == Ev::Delete {
        return Some(delete_row(RecordType::Medication, u, id, e, Some(&enc.jzlsh)));
    }
    let stopped = mods(&o.life, i).contains(&M_STOP);
    let mut row = Row::new(RecordType::Medication);
    common(&mut row, u, id, e);
    row.set("JZLSH", V::s(&enc.jzlsh));
    row.set("YZID", V::s(&o.yzid));
    row.set("YZLB", V::code(o.yzlb));
    if !(enc.k + u64::from(o.line)).is_multiple_of(10) {
        row.set("YPBM", V::St(o.drug.ypbm));
    }
    row.set("YPMC", V::St(o.drug.ypmc));
    row.set("YPGG", V::St(o.drug.ypgg));
    row.set("DCJL", V::D3(o.dcjl));
    row.set("JLDW", V::St(o.drug.jldw));
    row.set("PC", V::St(o.drug.pc));
    row.set("YYTJ", V::St(o.drug.yytj));
    row.set("KSSJ", V::Dt(o.kssj));
    row.set("TZSJ", if stopped { o.stop.map_or(V::E, V::Dt) } else { o.tzsj.map_or(V::E, V::Dt) });
    row.set("JE", if stopped { V::D2(o.je_final) } else { o.je.map_or(V::E, V::D2) });
    Some(row)
}

/// Every row of `enc` that the upload `u` carries, in upload type order.
pub fn emit(u: &Upload<'_>, enc: &Encounter, out: &mut dyn FnMut(Row) -> anyhow::Result<()>) -> anyhow::Result<()> {
    if let Some(row) = select(&enc.op_life, u).and_then(|i| outpatient(u, enc, i)) {
        out(row)?;
    }
    if let Some(row) = enc.stay.as_ref().and_then(|s| select(&s.life, u)).and_then(|i| discharge(u, enc, i)) {
        out(row)?;
    }
    for l in &enc.labs {
        if let Some(row) = select(&l.life, u).and_then(|i| lab(u, enc, l, i)) {
            out(row)?;
        }
    }
    for o in &enc.meds {
        if let Some(row) = select(&o.life, u).and_then(|i| medication(u, enc, o, i)) {
            out(row)?;
        }
    }
    if let Some(row) = enc.stay.as_ref().and_then(|s| select(&s.summary_life, u)).and_then(|i| summary(u, enc, i)) {
        out(row)?;
    }
    if let Some(row) = enc.death.as_ref().and_then(|d| select(&d.life, u)).and_then(|i| death(u, enc, i)) {
        out(row)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::encounter::at;

    #[test]
    fn the_latest_version_before_the_upload_is_sent_when_in_the_window() {
        let h = Hospital::generate(1, 0);
        let d = |n: u32| NaiveDate::from_ymd_opt(2026, 11, n).unwrap();
        let u = Upload { seed: 1, hospital: &h, now: at(d(20), 120), window: (d(13), d(19)), scrub_fields: false };
        let ev = |day: u32, minute: i64, ywrq: u32, ev: Ev| Event { at: at(d(day), minute), ywrq: d(ywrq), ev };
        let life = vec![ev(12, 600, 12, Ev::Create), ev(14, 600, 14, Ev::Modify(3)), ev(19, 600, 19, Ev::Delete)];
        assert_eq!(select(&life, &u), Some(2));
        let life = vec![ev(12, 600, 12, Ev::Create), ev(20, 130, 20, Ev::Modify(3))];
        assert_eq!(select(&life, &u), None, "the version before the upload has YWRQ outside the window");
        let life = vec![ev(19, 1400, 19, Ev::Create), ev(20, 60, 19, Ev::Modify(1)), ev(20, 180, 19, Ev::Modify(2))];
        assert_eq!(select(&life, &u), Some(1), "a change after the upload is not sent yet");
        let life = vec![ev(20, 121, 19, Ev::Create)];
        assert_eq!(select(&life, &u), None, "created after the upload");
        assert_eq!(
            mods(&[ev(12, 1, 12, Ev::Create), ev(13, 1, 12, Ev::Modify(4)), ev(14, 1, 12, Ev::Modify(2))].to_vec(), 1),
            vec![4]
        );
    }
}
