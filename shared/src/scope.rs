//! The extraction rules of INTERFACE §4: who is an influenza case, and which
//! other records follow a case into scope.
//!
//! ```text
//!  §3.1/§3.2 ─ rule 1 (J09/J10/J11) ┐
//!            ─ rule 2 (name regex) ─┼─▶ Case { basis: 实验室确诊 if rule 3, else 临床诊断 }
//!            ─ rule 3 (positive lab for the JZLSH, from state) ┘
//!  §3.6 positive (JYFF 1–4, DXJG 1|3) ─▶ in scope by itself
//!  §3.5 anti-influenza drug          ─▶ in scope by itself
//!  other §3.3–§3.6                    ─▶ in scope when the JZLSH is an accepted in-scope case
//!  §3.7, §3.8, deletes                ─▶ not judged
//! ```
//! Scope is decided when a row arrives against what has been accepted before
//! ([`ScopeState`]); the DMZ keeps that state durably, the offline checker
//! assumes every link is present.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::model::{Diagnosis, Record};

/// 实验室确诊 or 临床诊断 (INTERFACE §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub enum Basis {
    /// 临床诊断: rule 1 or 2 only.
    Clinical,
    /// 实验室确诊: rule 3 holds.
    Lab,
}

/// Why a §3.1/§3.2 record is a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct CaseScope {
    /// Rule 1: a J09/J10/J11 diagnosis code.
    pub by_code: bool,
    /// Rule 2: a diagnosis name.
    pub by_name: bool,
    /// Rule 3: a positive influenza result for the encounter.
    pub by_lab: bool,
}

impl CaseScope {
    /// 实验室确诊 when rule 3 holds.
    pub fn basis(&self) -> Basis {
        if self.by_lab { Basis::Lab } else { Basis::Clinical }
    }
}

/// The decision for one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A §3.1/§3.2 case.
    Case(CaseScope),
    /// A positive result or an anti-influenza order: in scope by itself.
    ByItself,
    /// Linked to an accepted in-scope case.
    ByLink,
    /// Not judged (stock, visits, deletes).
    NotJudged,
    /// `OUT_OF_SCOPE`.
    Out,
}

/// What the decision needs to know of earlier accepted records of the same hospital.
pub trait ScopeState {
    /// An in-scope §3.1/§3.2 case with this JZLSH was accepted and not deleted.
    fn case_in_scope(&self, org: &str, jzlsh: &str) -> bool;
    /// A positive influenza result (§4 rule 3) for this JZLSH was accepted.
    fn positive_lab(&self, org: &str, jzlsh: &str) -> bool;
}

static FLU_NAME: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)流感|流行性感冒|甲流|乙流|H1N1|H3N2|H5N1|H7N9|禽流感").ok());
static NOT_FLU_NAME: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"副流感|疫苗|接种|排除|待排").ok());

/// Rule 1: the first three characters of the code are J09, J10 or J11.
pub fn is_flu_code(code: &str) -> bool {
    let head: String = code.trim().chars().take(3).flat_map(char::to_uppercase).collect();
    matches!(head.as_str(), "J09" | "J10" | "J11")
}

/// Rule 2: the name matches the influenza pattern and not the exclusions (after NFKC).
pub fn is_flu_name(name: &str) -> bool {
    let n: String = name.nfkc().collect();
    let (Some(yes), Some(no)) = (FLU_NAME.as_ref(), NOT_FLU_NAME.as_ref()) else {
        return false;
    };
    yes.is_match(&n) && !no.is_match(&n)
}

fn diagnoses_scope<'a>(diags: impl Iterator<Item = &'a Diagnosis>) -> (bool, bool) {
    let mut by_code = false;
    let mut by_name = false;
    for d in diags {
        by_code |= is_flu_code(&d.code);
        by_name |= is_flu_name(&d.name);
    }
    (by_code, by_name)
}

/// Decide the scope of `rec` against `state`.
pub fn decide(rec: &Record, state: &impl ScopeState) -> Decision {
    let org = rec.common().zzjgdm.as_str();
    let case = |by_code: bool, by_name: bool, jzlsh: &str| {
        let by_lab = state.positive_lab(org, jzlsh);
        if by_code || by_name || by_lab {
            Decision::Case(CaseScope { by_code, by_name, by_lab })
        } else {
            Decision::Out
        }
    };
    let linked = |jzlsh: &str| if state.case_in_scope(org, jzlsh) { Decision::ByLink } else { Decision::Out };
    match rec {
        Record::Outpatient(r) => {
            let (c, n) = diagnoses_scope(r.diagnoses.iter());
            case(c, n, &r.jzlsh)
        }
        Record::Discharge(r) => {
            let (c, n) = diagnoses_scope(r.mzzd.iter().chain(std::iter::once(&r.zyzd)).chain(r.qtzd.iter()));
            case(c, n, &r.jzlsh)
        }
        Record::Lab(r) if r.is_positive_flu() => Decision::ByItself,
        Record::Lab(r) => linked(&r.jzlsh),
        Record::Medication(r) if crate::model::antiviral_of(&r.ypmc).is_some() => Decision::ByItself,
        Record::Medication(r) => linked(&r.jzlsh),
        Record::Summary(r) => linked(&r.jzlsh),
        Record::Death(r) => linked(&r.jzlsh),
        Record::Stock(_) | Record::Visits(_) | Record::Delete(_) => Decision::NotJudged,
    }
}

/// The offline checker's state: every JZLSH link is taken as present, no
/// positive result is known (INTERFACE: `flumon-agent check`).
pub struct AllLinksPresent;

impl ScopeState for AllLinksPresent {
    fn case_in_scope(&self, _org: &str, _jzlsh: &str) -> bool {
        true
    }
    fn positive_lab(&self, _org: &str, _jzlsh: &str) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        for c in ["J09", "J10.1", "j11.000", " J10 "] {
            assert!(is_flu_code(c), "{c}");
        }
        for c in ["J12", "J1", "A09", ""] {
            assert!(!is_flu_code(c), "{c}");
        }
    }

    #[test]
    fn names() {
        for n in ["流行性感冒", "甲型流感", "乙流", "h1n1感染", "Ｈ３Ｎ２流感", "人感染H7N9禽流感", "流感样病例"]
        {
            assert!(is_flu_name(n), "{n}");
        }
        for n in ["副流感病毒感染", "流感疫苗接种", "流感待排", "排除流感", "上呼吸道感染", "急性支气管炎"]
        {
            assert!(!is_flu_name(n), "{n}");
        }
    }

    struct State {
        cases: Vec<&'static str>,
        labs: Vec<&'static str>,
    }

    impl ScopeState for State {
        fn case_in_scope(&self, _org: &str, jzlsh: &str) -> bool {
            self.cases.contains(&jzlsh)
        }
        fn positive_lab(&self, _org: &str, jzlsh: &str) -> bool {
            self.labs.contains(&jzlsh)
        }
    }

    fn record(ty: crate::model::RecordType, pairs: &[(&str, &str)]) -> Record {
        use crate::validate::tests::{ctx, row};
        crate::validate::validate_row(ty, &row(ty, pairs), &ctx()).unwrap()
    }

    fn with(
        mut v: Vec<(&'static str, &'static str)>,
        k: &'static str,
        val: &'static str,
    ) -> Vec<(&'static str, &'static str)> {
        v.retain(|(c, _)| *c != k);
        v.push((k, val));
        v
    }

    #[test]
    fn decisions_against_state() {
        use crate::model::RecordType as T;
        use crate::validate::tests::outpatient;
        let empty = State { cases: vec![], labs: vec![] };
        let labbed = State { cases: vec![], labs: vec!["MZ20261119001"] };
        // A flu code and name: a clinical case.
        let r = record(T::Outpatient, &outpatient());
        assert_eq!(decide(&r, &empty), Decision::Case(CaseScope { by_code: true, by_name: true, by_lab: false }));
        // A positive result for the encounter makes it 实验室确诊.
        let Decision::Case(c) = decide(&r, &labbed) else { panic!() };
        assert_eq!(c.basis(), Basis::Lab);
        // Not flu: out of scope, unless a positive result came first (rule 3).
        let cold = with(with(outpatient(), "ZDBM1", "J06.9"), "ZDMC1", "急性上呼吸道感染");
        let r = record(T::Outpatient, &cold);
        assert_eq!(decide(&r, &empty), Decision::Out);
        assert_eq!(decide(&r, &labbed), Decision::Case(CaseScope { by_code: false, by_name: false, by_lab: true }));
        // An excluded name with a flu code is still in scope by rule 1.
        let vac = with(outpatient(), "ZDMC1", "流感疫苗接种反应");
        let r = record(T::Outpatient, &vac);
        assert_eq!(decide(&r, &empty), Decision::Case(CaseScope { by_code: true, by_name: false, by_lab: false }));
    }

    #[test]
    fn linked_records_follow_their_case() {
        use crate::model::RecordType as T;
        let common = [
            ("ZZJGDM", crate::validate::tests::ORG),
            ("JLID", "M1"),
            ("CZLX", "1"),
            ("GXSJ", "2026-11-19 10:00:00"),
            ("YWRQ", "2026-11-19"),
            ("BBH", "1.0"),
        ];
        let mut med: Vec<(&str, &str)> = common.to_vec();
        med.extend([
            ("JZLSH", "C1"),
            ("YZID", "Y1"),
            ("YZLB", "3"),
            ("YPMC", "对乙酰氨基酚片"),
            ("DCJL", "0.5"),
            ("JLDW", "g"),
            ("PC", "tid"),
            ("YYTJ", "口服"),
            ("KSSJ", "2026-11-19 10:00"),
        ]);
        let r = record(T::Medication, &med);
        assert_eq!(decide(&r, &State { cases: vec![], labs: vec![] }), Decision::Out);
        assert_eq!(decide(&r, &State { cases: vec!["C1"], labs: vec![] }), Decision::ByLink);
        let oseltamivir: Vec<(&str, &str)> =
            med.iter().map(|(k, v)| if *k == "YPMC" { (*k, "磷酸奥司他韦颗粒") } else { (*k, *v) }).collect();
        let r = record(T::Medication, &oseltamivir);
        assert_eq!(decide(&r, &State { cases: vec![], labs: vec![] }), Decision::ByItself);
        let mut lab: Vec<(&str, &str)> = common.to_vec();
        lab.extend([
            ("JZLSH", "C2"),
            ("BGDH", "B1"),
            ("BBLB", "1"),
            ("CYSJ", "2026-11-19 09:00"),
            ("BGSJ", "2026-11-19 10:00"),
            ("JYXMMC", "流感抗原"),
            ("JYFF", "1"),
            ("DXJG", "2"),
        ]);
        let r = record(T::Lab, &lab);
        assert_eq!(
            decide(&r, &State { cases: vec![], labs: vec![] }),
            Decision::Out,
            "a negative result alone is not in scope"
        );
        let pos: Vec<(&str, &str)> =
            lab.iter().map(|(k, v)| if *k == "DXJG" { (*k, "3") } else { (*k, *v) }).chain([("BDLX", "9")]).collect();
        assert_eq!(decide(&record(T::Lab, &pos), &State { cases: vec![], labs: vec![] }), Decision::ByItself);
    }
}
