//! The desensitised records that cross the gate (INTERFACE §5). These types
//! have no field for a name, ID number, phone, address, record number or birth
//! date, so the compiler keeps identifiers from crossing: the only way from a
//! [`Record`] to an [`OutRecord`] is [`desensitise`].
//!
//! ```text
//!  Accepted { Record (identifiers) } ─▶ desensitise(keys) ─▶ OutRecord (none)
//!    SFZH ─▶ person_key     JZLSH, JLID ─▶ pseudonym     CSRQ, XM, DH, XZZ, MZZYH, BAH ─▶ dropped
//!    free text ─▶ scrub (or dropped by setting)           NL ≥ 90 ─▶ 90
//! ```

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use super::keys::{PersonKey, PseudonymKey, person_key, pseudonym};
use super::scrub::{OwnIds, ScrubOptions, scrub_with};
use crate::model::{Diagnosis, Op, Patient, Record, RecordType, ScrubIds};
use crate::receipt::Accepted;
use crate::scope::CaseScope;

/// The keys and settings of desensitisation. Keys exist only in the DMZ and the vault.
#[derive(Debug)]
pub struct Desensitiser {
    pub person: PersonKey,
    pub pseudonym: PseudonymKey,
    pub scrub: ScrubOptions,
    /// Drop free text altogether instead of scrubbing it (INTERFACE §5 setting).
    pub drop_free_text: bool,
}

/// Common fields as they cross.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutCommon {
    /// ZZJGDM: the hospital's code (not personal).
    pub org: String,
    /// Pseudonym of JLID.
    pub rec_key: String,
    pub op: Op,
    pub gxsj: NaiveDateTime,
    pub ywrq: Option<NaiveDate>,
    /// When the DMZ received the record (China Standard Time).
    pub dmz_time: NaiveDateTime,
    /// The DMZ's sequence number of the record (ARCHITECTURE invariant 7).
    pub dmz_seq: u64,
}

/// The patient block as it crosses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutPatient {
    pub xb: u8,
    /// Completed years; 90 and over become 90.
    pub nl: u16,
    pub bzyzs_nl: Option<u8>,
    pub zjlx: u8,
    /// HMAC-SM3 person key in letters; none for ZJLX = 9.
    pub person_key: Option<String>,
    pub gj: Option<String>,
    pub mz: Option<String>,
    pub zy: Option<String>,
    pub xzz_xzqh: String,
    pub ylfkfs: Option<String>,
}

/// §3.1 as it crosses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutOutpatient {
    pub common: OutCommon,
    pub case_key: String,
    pub scope: CaseScope,
    pub patient: OutPatient,
    pub jzlx: u8,
    pub jzsj: NaiveDateTime,
    pub ksmc: String,
    pub fbrq: Option<NaiveDate>,
    pub zgtw: Option<i32>,
    pub diagnoses: Vec<Diagnosis>,
    pub zdyj: u8,
    pub lcfx: u8,
    pub gwys: Vec<u8>,
    pub ymjz: Option<u8>,
    pub kbd: u8,
    pub kbdsj: Option<NaiveDateTime>,
    pub icu: Option<u8>,
    pub jxtq: Option<u8>,
    pub ecmo: Option<u8>,
    pub zgzt: u8,
    pub zfy: i64,
    pub ypf: Option<i64>,
    pub jyf: Option<i64>,
    pub kbdf: Option<i64>,
}

/// §3.2 as it crosses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutDischarge {
    pub common: OutCommon,
    pub case_key: String,
    pub scope: CaseScope,
    pub patient: OutPatient,
    pub zycs: u16,
    pub rytj: u8,
    pub rysj: NaiveDateTime,
    pub cysj: NaiveDateTime,
    pub fbrq: Option<NaiveDate>,
    pub zdyj: Option<u8>,
    pub sjzyts: u16,
    pub cykb: String,
    pub mzzd: Option<Diagnosis>,
    pub zyzd: Diagnosis,
    pub rybq: u8,
    pub qtzd: Vec<Diagnosis>,
    pub lcfx: u8,
    pub icuts: Option<u16>,
    pub jxtqsj: Option<u32>,
    pub ecmo: Option<u8>,
    pub kbd: u8,
    pub kbdsj: Option<NaiveDateTime>,
    pub lyfs: u8,
    pub zfy: i64,
    pub zfje: i64,
    pub xyf: Option<i64>,
    pub kjywf: Option<i64>,
    pub hlf: Option<i64>,
    pub ylfuf: Option<i64>,
}

/// §3.3 as it crosses: free text scrubbed (or dropped: empty strings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutSummary {
    pub common: OutCommon,
    pub case_key: String,
    pub rysj: NaiveDateTime,
    pub cysj: NaiveDateTime,
    pub ryqk: String,
    pub ryzd: String,
    pub zlgc: String,
    pub cyzd: String,
    pub cyqk: String,
    pub cyyz: String,
}

/// §3.4 as it crosses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutDeath {
    pub common: OutCommon,
    pub case_key: String,
    pub rysj: Option<NaiveDateTime>,
    pub swsj: NaiveDateTime,
    pub ryqk: String,
    pub zlgc: String,
    pub zjsy: String,
    pub zjsy_jbdm: String,
    pub gbsy_jbdm: String,
    pub lgsyxg: u8,
    pub swdd: Option<u8>,
    pub gdrq: Option<NaiveDate>,
}

/// §3.5 as it crosses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutMedication {
    pub common: OutCommon,
    pub case_key: String,
    pub yzid: String,
    pub yzlb: u8,
    pub ypbm: Option<String>,
    pub ypmc: String,
    pub ypgg: Option<String>,
    pub dcjl: i64,
    pub jldw: String,
    pub pc: String,
    pub yytj: String,
    pub kssj: NaiveDateTime,
    pub tzsj: Option<NaiveDateTime>,
    pub je: Option<i64>,
}

/// §3.6 as it crosses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutLab {
    pub common: OutCommon,
    pub case_key: String,
    pub bgdh: String,
    pub bblb: u8,
    pub cysj: NaiveDateTime,
    pub bgsj: NaiveDateTime,
    pub jyxmmc: String,
    pub jyff: u8,
    pub dxjg: u8,
    pub bdlx: Option<u8>,
    pub yx: Option<u8>,
    pub ct: Option<i32>,
}

/// §3.7 as it crosses (nothing personal in it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutStock {
    pub common: OutCommon,
    pub tjrq: NaiveDate,
    pub ypmc: String,
    pub ypgg: String,
    pub kcl: u64,
    pub drxhl: u64,
}

/// §3.8 as it crosses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutVisits {
    pub common: OutCommon,
    pub tjrq: NaiveDate,
    pub mzrc: u32,
    pub jzrc: u32,
    pub zyrs: u32,
}

/// A desensitised record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutRecord {
    Outpatient(Box<OutOutpatient>),
    Discharge(Box<OutDischarge>),
    Summary(Box<OutSummary>),
    Death(Box<OutDeath>),
    Medication(Box<OutMedication>),
    Lab(Box<OutLab>),
    Stock(Box<OutStock>),
    Visits(Box<OutVisits>),
    /// CZLX = 3: the record's type, common fields and case pseudonym.
    Delete {
        ty: RecordType,
        common: OutCommon,
        case_key: Option<String>,
    },
}

impl OutRecord {
    /// The common fields.
    pub fn common(&self) -> &OutCommon {
        match self {
            OutRecord::Outpatient(r) => &r.common,
            OutRecord::Discharge(r) => &r.common,
            OutRecord::Summary(r) => &r.common,
            OutRecord::Death(r) => &r.common,
            OutRecord::Medication(r) => &r.common,
            OutRecord::Lab(r) => &r.common,
            OutRecord::Stock(r) => &r.common,
            OutRecord::Visits(r) => &r.common,
            OutRecord::Delete { common, .. } => common,
        }
    }

    /// Every free-text field, for the receiver's re-scan (ARCHITECTURE invariant 2).
    pub fn free_text(&self) -> Vec<(&'static str, &str)> {
        match self {
            OutRecord::Summary(s) => vec![
                ("RYQK", s.ryqk.as_str()),
                ("RYZD", s.ryzd.as_str()),
                ("ZLGC", s.zlgc.as_str()),
                ("CYZD", s.cyzd.as_str()),
                ("CYQK", s.cyqk.as_str()),
                ("CYYZ", s.cyyz.as_str()),
            ],
            OutRecord::Death(d) => {
                vec![("RYQK", d.ryqk.as_str()), ("ZLGC", d.zlgc.as_str()), ("ZJSY", d.zjsy.as_str())]
            }
            _ => Vec::new(),
        }
    }
}

impl Desensitiser {
    fn case_key(&self, org: &str, jzlsh: &str) -> String {
        pseudonym(&self.pseudonym, org, "JZLSH", jzlsh)
    }

    fn common(&self, ty: RecordType, c: &crate::model::Common, dmz_time: NaiveDateTime, dmz_seq: u64) -> OutCommon {
        OutCommon {
            org: c.zzjgdm.clone(),
            rec_key: pseudonym(&self.pseudonym, &c.zzjgdm, &format!("JLID:{}", ty.as_str()), &c.jlid),
            op: c.czlx,
            gxsj: c.gxsj,
            ywrq: c.ywrq,
            dmz_time,
            dmz_seq,
        }
    }

    fn patient(&self, p: &Patient) -> OutPatient {
        let zjlx = p.zjlx.to_string();
        OutPatient {
            xb: p.xb,
            nl: p.nl.min(90),
            bzyzs_nl: p.bzyzs_nl,
            zjlx: p.zjlx,
            person_key: p.sfzh.as_deref().and_then(|s| person_key(&self.person, &zjlx, s)),
            gj: p.gj.clone(),
            mz: p.mz.clone(),
            zy: p.zy.clone(),
            xzz_xzqh: p.xzz_xzqh.clone(),
            ylfkfs: p.ylfkfs.clone(),
        }
    }

    fn text(&self, s: &str, ids: &ScrubIds) -> String {
        if self.drop_free_text {
            return String::new();
        }
        scrub_with(s, &OwnIds::from_ids(ids), &self.scrub).text
    }

    /// Desensitise an accepted record. `dmz_time` and `dmz_seq` are the DMZ's receipt time and sequence.
    pub fn desensitise(&self, acc: &Accepted, dmz_time: NaiveDateTime, dmz_seq: u64) -> OutRecord {
        let ty = acc.record.ty();
        let common = self.common(ty, acc.record.common(), dmz_time, dmz_seq);
        let org = acc.record.common().zzjgdm.as_str();
        let scope = acc.case.unwrap_or(CaseScope { by_code: false, by_name: false, by_lab: false });
        match &acc.record {
            Record::Outpatient(r) => OutRecord::Outpatient(Box::new(OutOutpatient {
                common,
                case_key: self.case_key(org, &r.jzlsh),
                scope,
                patient: self.patient(&r.patient),
                jzlx: r.jzlx,
                jzsj: r.jzsj,
                ksmc: r.ksmc.clone(),
                fbrq: r.fbrq,
                zgtw: r.zgtw,
                diagnoses: r.diagnoses.clone(),
                zdyj: r.zdyj,
                lcfx: r.lcfx,
                gwys: r.gwys.clone(),
                ymjz: r.ymjz,
                kbd: r.kbd,
                kbdsj: r.kbdsj,
                icu: r.icu,
                jxtq: r.jxtq,
                ecmo: r.ecmo,
                zgzt: r.zgzt,
                zfy: r.zfy,
                ypf: r.ypf,
                jyf: r.jyf,
                kbdf: r.kbdf,
            })),
            Record::Discharge(r) => OutRecord::Discharge(Box::new(OutDischarge {
                common,
                case_key: self.case_key(org, &r.jzlsh),
                scope,
                patient: self.patient(&r.patient),
                zycs: r.zycs,
                rytj: r.rytj,
                rysj: r.rysj,
                cysj: r.cysj,
                fbrq: r.fbrq,
                zdyj: r.zdyj,
                sjzyts: r.sjzyts,
                cykb: r.cykb.clone(),
                mzzd: r.mzzd.clone(),
                zyzd: r.zyzd.clone(),
                rybq: r.rybq,
                qtzd: r.qtzd.clone(),
                lcfx: r.lcfx,
                icuts: r.icuts,
                jxtqsj: r.jxtqsj,
                ecmo: r.ecmo,
                kbd: r.kbd,
                kbdsj: r.kbdsj,
                lyfs: r.lyfs,
                zfy: r.zfy,
                zfje: r.zfje,
                xyf: r.xyf,
                kjywf: r.kjywf,
                hlf: r.hlf,
                ylfuf: r.ylfuf,
            })),
            Record::Summary(r) => OutRecord::Summary(Box::new(OutSummary {
                common,
                case_key: self.case_key(org, &r.jzlsh),
                rysj: r.rysj,
                cysj: r.cysj,
                ryqk: self.text(&r.ryqk, &r.ids),
                ryzd: self.text(&r.ryzd, &r.ids),
                zlgc: self.text(&r.zlgc, &r.ids),
                cyzd: self.text(&r.cyzd, &r.ids),
                cyqk: self.text(&r.cyqk, &r.ids),
                cyyz: self.text(&r.cyyz, &r.ids),
            })),
            Record::Death(r) => OutRecord::Death(Box::new(OutDeath {
                common,
                case_key: self.case_key(org, &r.jzlsh),
                rysj: r.rysj,
                swsj: r.swsj,
                ryqk: self.text(&r.ryqk, &r.ids),
                zlgc: self.text(&r.zlgc, &r.ids),
                zjsy: self.text(&r.zjsy, &r.ids),
                zjsy_jbdm: r.zjsy_jbdm.clone(),
                gbsy_jbdm: r.gbsy_jbdm.clone(),
                lgsyxg: r.lgsyxg,
                swdd: r.swdd,
                gdrq: r.gdrq,
            })),
            Record::Medication(r) => OutRecord::Medication(Box::new(OutMedication {
                common,
                case_key: self.case_key(org, &r.jzlsh),
                yzid: r.yzid.clone(),
                yzlb: r.yzlb,
                ypbm: r.ypbm.clone(),
                ypmc: r.ypmc.clone(),
                ypgg: r.ypgg.clone(),
                dcjl: r.dcjl,
                jldw: r.jldw.clone(),
                pc: r.pc.clone(),
                yytj: r.yytj.clone(),
                kssj: r.kssj,
                tzsj: r.tzsj,
                je: r.je,
            })),
            Record::Lab(r) => OutRecord::Lab(Box::new(OutLab {
                common,
                case_key: self.case_key(org, &r.jzlsh),
                bgdh: r.bgdh.clone(),
                bblb: r.bblb,
                cysj: r.cysj,
                bgsj: r.bgsj,
                jyxmmc: r.jyxmmc.clone(),
                jyff: r.jyff,
                dxjg: r.dxjg,
                bdlx: r.bdlx,
                yx: r.yx,
                ct: r.ct,
            })),
            Record::Stock(r) => OutRecord::Stock(Box::new(OutStock {
                common,
                tjrq: r.tjrq,
                ypmc: r.ypmc.clone(),
                ypgg: r.ypgg.clone(),
                kcl: r.kcl,
                drxhl: r.drxhl,
            })),
            Record::Visits(r) => OutRecord::Visits(Box::new(OutVisits {
                common,
                tjrq: r.tjrq,
                mzrc: r.mzrc,
                jzrc: r.jzrc,
                zyrs: r.zyrs,
            })),
            Record::Delete(d) => {
                OutRecord::Delete { ty: d.ty, common, case_key: d.jzlsh.as_deref().map(|j| self.case_key(org, j)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ParsedFile;
    use crate::receipt::{OfflineState, check_file};
    use crate::validate::tests::{ctx, discharge, outpatient, row};

    fn des() -> Desensitiser {
        Desensitiser {
            person: PersonKey::from_bytes([7; 32]),
            pseudonym: PseudonymKey::from_bytes([9; 32]),
            scrub: ScrubOptions::default(),
            drop_free_text: false,
        }
    }

    fn accept(ty: RecordType, pairs: &[(&str, &str)]) -> Accepted {
        let file = ParsedFile { ty, rows: vec![row(ty, pairs)] };
        let (receipt, mut acc) = check_file(&file, &ctx(), &mut OfflineState::default());
        assert_eq!(receipt.accepted, 1, "{receipt:?}");
        acc.remove(0)
    }

    #[test]
    fn identifiers_do_not_survive() {
        let acc = accept(RecordType::Outpatient, &outpatient());
        let out = des().desensitise(&acc, crate::validate::tests::now(), 1);
        let json = serde_json::to_string(&out).unwrap();
        for planted in [
            "张三",
            "11010519491231002X",
            "13800138000",
            "北京市朝阳区",
            "MZH778899",
            "MZ20261119001",
            "1949-12-31",
            "R1\"",
        ] {
            assert!(!json.contains(planted), "{planted} leaked: {json}");
        }
        let OutRecord::Outpatient(o) = out else { panic!() };
        assert_eq!(o.patient.nl, 76);
        assert!(o.patient.person_key.as_deref().unwrap().bytes().all(|b| (b'a'..=b'p').contains(&b)));
        assert!(o.case_key.bytes().all(|b| (b'a'..=b'p').contains(&b)));
        assert!(o.scope.by_code && o.scope.by_name && !o.scope.by_lab);
    }

    #[test]
    fn links_survive_and_ages_cap() {
        let d = des();
        let a = accept(RecordType::Outpatient, &outpatient());
        let mut pairs = discharge();
        pairs.retain(|(k, _)| *k != "JZLSH");
        pairs.push(("JZLSH", "MZ20261119001"));
        let b = accept(RecordType::Discharge, &pairs);
        let (OutRecord::Outpatient(x), OutRecord::Discharge(y)) =
            (d.desensitise(&a, crate::validate::tests::now(), 1), d.desensitise(&b, crate::validate::tests::now(), 2))
        else {
            panic!()
        };
        assert_eq!(x.case_key, y.case_key);
        assert_ne!(x.common.rec_key, y.common.rec_key, "JLID pseudonyms are per type");
        assert_eq!(y.patient.person_key, None, "ZJLX 9 has no person key");
    }
}
