//! Test fixtures: desensitised records built by hand, sealed batches, and a
//! database per test (SQLite file, or a fresh PostgreSQL schema when
//! FLUMON_TEST_PG_URL is set).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{NaiveDate, NaiveDateTime};
use flumon_intranet::db::Db;
use flumon_intranet::ingest::IngestKeys;
use flumon_shared::batch::{BatchFields, BatchLimits, seal_batch};
use flumon_shared::crypto::{Sm2PrivateKey, SymKey};
use flumon_shared::desens::outbound::*;
use flumon_shared::entries::{Entry, HospitalInfo, ReceiptSummary, count_entries};
use flumon_shared::model::{Diagnosis, Op, RecordType};
use flumon_shared::scope::CaseScope;

pub const ORG_A: &str = "91110000000000001A"; // in 110101 (北京 东城)
pub const ORG_B: &str = "91440000000000002B"; // in 440305 (深圳 南山)

pub struct World {
    pub link: SymKey,
    pub sign: Sm2PrivateKey,
    pub seq: AtomicU64,
    pub dmz_seq: AtomicU64,
}

impl World {
    pub fn new() -> World {
        World {
            link: SymKey::generate().unwrap(),
            sign: Sm2PrivateKey::generate().unwrap(),
            seq: AtomicU64::new(1),
            dmz_seq: AtomicU64::new(1),
        }
    }

    pub fn keys(&self) -> IngestKeys {
        IngestKeys {
            link_key: SymKey::from_slice(self.link.as_bytes()).unwrap(),
            dmz_pubkey: self.sign.public_key().clone(),
            limits: BatchLimits::default(),
        }
    }

    pub fn next_dmz_seq(&self) -> u64 {
        self.dmz_seq.fetch_add(1, Ordering::SeqCst)
    }

    /// Seals `entries` as the next batch of node `dmz1`.
    pub fn seal(&self, entries: &[Entry]) -> Vec<u8> {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        let fields = BatchFields {
            node_id: "dmz1".into(),
            sequence: seq,
            created_ms: 1_700_000_000_000,
            counts: count_entries(entries),
        };
        seal_batch(&fields, entries, &self.link, &self.sign).unwrap()
    }

    /// Writes a batch into the spool as `NNNNNN.fbatch`; returns its path.
    pub fn drop_batch(&self, spool: &Path, entries: &[Entry]) -> std::path::PathBuf {
        let seq = self.seq.load(Ordering::SeqCst);
        let bytes = self.seal(entries);
        let p = spool.join(format!("{seq:08}.fbatch"));
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

static DB_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh database: SQLite in `dir`, or a new PostgreSQL schema.
pub async fn fresh_db(dir: &Path) -> Db {
    if let Ok(url) = std::env::var("FLUMON_TEST_PG_URL") {
        let n = DB_COUNTER.fetch_add(1, Ordering::SeqCst);
        let schema = format!("t{}_{}_{}", std::process::id(), n, rand_suffix());
        let admin = Db::open_raw(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        return Db::open(&format!("{url}{sep}options=-c%20search_path%3D{schema}")).await.unwrap();
    }
    Db::open(&format!("sqlite://{}", dir.join("intranet.db").display())).await.unwrap()
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64
}

pub fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

pub fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

pub fn hospital(code: &str, region: &str) -> Entry {
    Entry::Hospital(HospitalInfo {
        code: code.into(),
        name: format!("医院{}", &code[..4]),
        level: 3,
        region: region.into(),
        approved: d("2024-01-01"),
        active: true,
    })
}

pub fn common(w: &World, org: &str, rec_key: &str, gxsj: &str, dmz_time: &str) -> OutCommon {
    OutCommon {
        org: org.into(),
        rec_key: rec_key.into(),
        op: Op::Insert,
        gxsj: dt(gxsj),
        ywrq: Some(dt(gxsj).date()),
        dmz_time: dt(dmz_time),
        dmz_seq: w.next_dmz_seq(),
    }
}

pub fn patient(xb: u8, nl: u16) -> OutPatient {
    OutPatient {
        xb,
        nl,
        bzyzs_nl: if nl == 0 { Some(3) } else { None },
        zjlx: 1,
        person_key: Some("abcd".into()),
        gj: None,
        mz: Some("01".into()),
        zy: None,
        xzz_xzqh: "110101".into(),
        ylfkfs: None,
    }
}

pub fn scope(lab: bool) -> CaseScope {
    CaseScope { by_code: true, by_name: true, by_lab: lab }
}

/// A §3.1 record; tweak fields with `f`.
pub fn outpatient(c: OutCommon, case_key: &str, jzsj: &str, f: impl FnOnce(&mut OutOutpatient)) -> Entry {
    let mut o = OutOutpatient {
        common: c,
        case_key: case_key.into(),
        scope: scope(false),
        patient: patient(1, 30),
        jzlx: 1,
        jzsj: dt(jzsj),
        ksmc: "发热门诊".into(),
        fbrq: None,
        zgtw: None,
        diagnoses: vec![Diagnosis { code: "J10.1".into(), name: "流行性感冒".into() }],
        zdyj: 1,
        lcfx: 1,
        gwys: vec![],
        ymjz: None,
        kbd: 2,
        kbdsj: None,
        icu: None,
        jxtq: None,
        ecmo: None,
        zgzt: 1,
        zfy: 10_000,
        ypf: None,
        jyf: None,
        kbdf: None,
    };
    f(&mut o);
    Entry::Record(OutRecord::Outpatient(Box::new(o)))
}

/// A §3.2 record; tweak fields with `f`.
pub fn discharge(c: OutCommon, case_key: &str, rysj: &str, cysj: &str, f: impl FnOnce(&mut OutDischarge)) -> Entry {
    let mut x = OutDischarge {
        common: c,
        case_key: case_key.into(),
        scope: scope(false),
        patient: patient(2, 70),
        zycs: 1,
        rytj: 2,
        rysj: dt(rysj),
        cysj: dt(cysj),
        fbrq: None,
        zdyj: Some(1),
        sjzyts: ((dt(cysj).date() - dt(rysj).date()).num_days().max(1)) as u16,
        cykb: "呼吸科".into(),
        mzzd: None,
        zyzd: Diagnosis { code: "J10.0".into(), name: "流感肺炎".into() },
        rybq: 1,
        qtzd: vec![],
        lcfx: 2,
        icuts: None,
        jxtqsj: None,
        ecmo: None,
        kbd: 2,
        kbdsj: None,
        lyfs: 1,
        zfy: 500_000,
        zfje: 100_000,
        xyf: None,
        kjywf: None,
        hlf: None,
        ylfuf: None,
    };
    f(&mut x);
    Entry::Record(OutRecord::Discharge(Box::new(x)))
}

pub fn lab(c: OutCommon, case_key: &str, cysj: &str, jyff: u8, dxjg: u8, bdlx: Option<u8>, yx: Option<u8>) -> Entry {
    Entry::Record(OutRecord::Lab(Box::new(OutLab {
        common: c,
        case_key: case_key.into(),
        bgdh: "R1".into(),
        bblb: 1,
        cysj: dt(cysj),
        bgsj: dt(cysj),
        jyxmmc: "甲乙流抗原".into(),
        jyff,
        dxjg,
        bdlx,
        yx,
        ct: None,
    })))
}

pub fn medication(c: OutCommon, case_key: &str, ypmc: &str, kssj: &str) -> Entry {
    Entry::Record(OutRecord::Medication(Box::new(OutMedication {
        common: c,
        case_key: case_key.into(),
        yzid: "Y1".into(),
        yzlb: 3,
        ypbm: None,
        ypmc: ypmc.into(),
        ypgg: None,
        dcjl: 75_000,
        jldw: "mg".into(),
        pc: "bid".into(),
        yytj: "口服".into(),
        kssj: dt(kssj),
        tzsj: None,
        je: None,
    })))
}

pub fn death(c: OutCommon, case_key: &str, swsj: &str, gdrq: Option<&str>) -> Entry {
    Entry::Record(OutRecord::Death(Box::new(OutDeath {
        common: c,
        case_key: case_key.into(),
        rysj: None,
        swsj: dt(swsj),
        ryqk: String::new(),
        zlgc: String::new(),
        zjsy: "呼吸衰竭".into(),
        zjsy_jbdm: "J96.0".into(),
        gbsy_jbdm: "J10.0".into(),
        lgsyxg: 1,
        swdd: Some(1),
        gdrq: gdrq.map(d),
    })))
}

pub fn visits(c: OutCommon, tjrq: &str, mzrc: u32, jzrc: u32) -> Entry {
    Entry::Record(OutRecord::Visits(Box::new(OutVisits { common: c, tjrq: d(tjrq), mzrc, jzrc, zyrs: 10 })))
}

pub fn stock(c: OutCommon, tjrq: &str, ypmc: &str, ypgg: &str, kcl: u64, drxhl: u64) -> Entry {
    Entry::Record(OutRecord::Stock(Box::new(OutStock {
        common: c,
        tjrq: d(tjrq),
        ypmc: ypmc.into(),
        ypgg: ypgg.into(),
        kcl,
        drxhl,
    })))
}

pub fn delete(c: OutCommon, ty: RecordType, case_key: Option<&str>) -> Entry {
    let mut c = c;
    c.op = Op::Delete;
    Entry::Record(OutRecord::Delete { ty, common: c, case_key: case_key.map(Into::into) })
}

pub fn receipt(id: &str, org: &str, time: &str, received: u64, rejected: u64, code: &str) -> Entry {
    let mut errors = std::collections::BTreeMap::new();
    if rejected > 0 {
        errors.insert(code.to_string(), rejected);
    }
    Entry::Receipt(ReceiptSummary {
        receipt_id: id.into(),
        org: org.into(),
        ty: RecordType::Outpatient,
        time: dt(time),
        received,
        accepted: received - rejected,
        rejected,
        error_counts: errors,
        accepted_by_ywrq: vec![],
    })
}

/// The fixture of INDICATORS' hand computation (week 2025-W02, 01-06 … 01-12).
pub async fn fixture(dir: &std::path::Path) -> Db {
    let db = fresh_db(dir).await;
    fill_fixture(dir, db).await
}

/// The fixture on a SQLite file even when FLUMON_TEST_PG_URL is set.
pub async fn fixture_sqlite(dir: &std::path::Path) -> Db {
    let db = Db::open(&format!("sqlite://{}", dir.join("intranet.db").display())).await.unwrap();
    fill_fixture(dir, db).await
}

async fn fill_fixture(dir: &std::path::Path, db: Db) -> Db {
    let spool = dir.join("inbound");
    std::fs::create_dir_all(&spool).unwrap();
    let w = World::new();
    let c = |org: &str, k: &str, g: &str, t: &str| common(&w, org, k, g, t);
    let e = vec![
        hospital(ORG_A, "110101"),
        hospital(ORG_B, "440305"),
        // c1: 门诊, male 30, FBRQ 01-05, oseltamivir 01-06 12:00 (within 48 h), lab positive A(H1N1)pdm09
        outpatient(c(ORG_A, "o1", "2025-01-06 10:00:00", "2025-01-06 20:00:00"), "c1", "2025-01-06 09:00:00", |o| {
            o.fbrq = Some(d("2025-01-05"));
        }),
        lab(
            c(ORG_A, "l1", "2025-01-06 11:00:00", "2025-01-06 20:00:00"),
            "c1",
            "2025-01-06 10:00:00",
            1,
            1,
            Some(1),
            Some(11),
        ),
        medication(
            c(ORG_A, "m1", "2025-01-06 12:00:00", "2025-01-06 20:00:00"),
            "c1",
            "奥司他韦胶囊",
            "2025-01-06 12:00:00",
        ),
        // c2: 急诊, female 4, KBD = 1 first dose 01-09 10:00 (FBRQ 01-06: not within 48 h), lab negative by method 2
        outpatient(c(ORG_A, "o2", "2025-01-07 11:00:00", "2025-01-07 20:00:00"), "c2", "2025-01-07 10:00:00", |o| {
            o.jzlx = 2;
            o.patient = patient(2, 4);
            o.kbd = 1;
            o.kbdsj = Some(dt("2025-01-09 10:00:00"));
            o.fbrq = Some(d("2025-01-06"));
        }),
        lab(
            c(ORG_A, "l2", "2025-01-07 11:00:00", "2025-01-07 20:00:00"),
            "c2",
            "2025-01-07 10:00:00",
            2,
            2,
            None,
            None,
        ),
        // c3: §3.2 stay 01-07 → 01-10, female 70, 重症, ICU 2 days, died, 5000 元, 500 元 antibiotics
        discharge(
            c(ORG_A, "d3", "2025-01-10 10:00:00", "2025-01-10 20:00:00"),
            "c3",
            "2025-01-07 08:00:00",
            "2025-01-10 09:00:00",
            |x| {
                x.lcfx = 3;
                x.icuts = Some(2);
                x.lyfs = 5;
                x.kjywf = Some(50_000);
            },
        ),
        // c4: 在院 (JZLX 3), male 65, 危重症, ICU and ventilation, 200 元
        outpatient(c(ORG_A, "o4", "2025-01-08 12:00:00", "2025-01-08 20:00:00"), "c4", "2025-01-08 11:00:00", |o| {
            o.jzlx = 3;
            o.patient = patient(1, 65);
            o.lcfx = 4;
            o.icu = Some(1);
            o.jxtq = Some(1);
            o.zfy = 20_000;
        }),
        // c5: an order without a case: 经验性用药
        medication(
            c(ORG_A, "m5", "2025-01-08 12:00:00", "2025-01-08 20:00:00"),
            "c5",
            "玛巴洛沙韦片",
            "2025-01-08 12:00:00",
        ),
        // c6 at B: 门诊, male 10, first received 12 days after YWRQ (迟报)
        outpatient(c(ORG_B, "o6", "2025-01-08 10:00:00", "2025-01-20 20:00:00"), "c6", "2025-01-08 09:00:00", |o| {
            o.patient = patient(1, 10);
        }),
        // visits at A on 01-06 and 01-07 only
        visits(c(ORG_A, "v1", "2025-01-06 23:00:00", "2025-01-07 01:00:00"), "2025-01-06", 100, 0),
        visits(c(ORG_A, "v2", "2025-01-07 23:00:00", "2025-01-08 01:00:00"), "2025-01-07", 50, 50),
        // stock
        stock(
            c(ORG_A, "s1", "2025-01-06 23:00:00", "2025-01-07 01:00:00"),
            "2025-01-06",
            "奥司他韦胶囊",
            "75mg",
            100,
            10,
        ),
        stock(
            c(ORG_A, "s2", "2025-01-08 23:00:00", "2025-01-09 01:00:00"),
            "2025-01-08",
            "奥司他韦胶囊",
            "75mg",
            30,
            20,
        ),
        stock(
            c(ORG_A, "s3", "2025-01-08 23:00:00", "2025-01-09 01:00:00"),
            "2025-01-08",
            "奥司他韦颗粒",
            "15mg",
            20,
            5,
        ),
        stock(c(ORG_B, "s4", "2025-01-08 23:00:00", "2025-01-09 01:00:00"), "2025-01-08", "玛巴洛沙韦片", "20mg", 6, 7),
        // one upload at A at 07:00 on 01-07: timely for 01-06 and 01-07; 10 rows, 2 rejected by E101
        receipt("rc1", ORG_A, "2025-01-07 07:00:00", 10, 2, "E101"),
    ];
    w.drop_batch(&spool, &e);
    flumon_intranet::ingest::ingest_spool(&db, &w.keys(), &spool).await.unwrap();
    db
}
