//! Scopes, accounts and the one access check every read passes through.
//!
//! ```text
//!  request ?scope=CODE ─▶ Scope::resolve (000000 · XX0000 · XXXX00 · XXXXXX · USCC → its registered region)
//!           account ────▶ scoped(account, &scope) ─┬─ Ok(Scoped { scope, small cells <5 if below national })
//!                                                  └─ Err(Forbidden)   (other region, or a role without case data)
//!  every query fn takes &Scoped, which only scoped() can make
//! ```

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::db::Db;
use crate::regions;
use crate::{Error, Result};

/// The national scope code.
pub const NATIONAL: &str = "000000";

/// The roles of LEVEL3 in the intranet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// 数据分析员: indicators of its region and below.
    Analyst,
    /// 系统管理员: accounts only.
    Sysadmin,
    /// 安全管理员: transfer and security journals, no case data.
    Secadmin,
    /// 审计管理员: the journal of the other administrators.
    Auditor,
}

impl Role {
    /// Parses `analyst|sysadmin|secadmin|auditor`.
    pub fn parse(s: &str) -> Result<Role> {
        match s {
            "analyst" => Ok(Role::Analyst),
            "sysadmin" => Ok(Role::Sysadmin),
            "secadmin" => Ok(Role::Secadmin),
            "auditor" => Ok(Role::Auditor),
            _ => Err(Error::BadRequest("角色须为 analyst、sysadmin、secadmin 或 auditor (unknown role)".into())),
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Analyst => "analyst",
            Role::Sysadmin => "sysadmin",
            Role::Secadmin => "secadmin",
            Role::Auditor => "auditor",
        }
    }
}

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    pub name: String,
    pub role: Role,
    /// GB/T 2260 code of an analyst's region (`000000`, a province or a city).
    pub scope: Option<String>,
}

impl Account {
    /// The operator at the server's console (`report` CLI): national analyst rights.
    pub fn console() -> Account {
        Account { name: "console".into(), role: Role::Analyst, scope: Some(NATIONAL.into()) }
    }
}

/// A region or a hospital.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "level", rename_all = "lowercase")]
pub enum Scope {
    National,
    Province {
        code: String,
    },
    City {
        code: String,
    },
    County {
        code: String,
    },
    /// A hospital (USCC) and its registered region.
    Hospital {
        code: String,
        region: String,
    },
}

impl Scope {
    /// The code as requested (`000000`, a region code, or the USCC).
    pub fn code(&self) -> &str {
        match self {
            Scope::National => NATIONAL,
            Scope::Province { code } | Scope::City { code } | Scope::County { code } | Scope::Hospital { code, .. } => {
                code
            }
        }
    }

    /// The display name (全国, a region name, or the hospital's code).
    pub fn name(&self) -> String {
        match self {
            Scope::Hospital { code, .. } => code.clone(),
            other => regions::name_of(other.code()).unwrap_or_default(),
        }
    }

    /// The region-code prefix of everything inside (`""` nationally).
    fn prefix(&self) -> &str {
        match self {
            Scope::National => "",
            Scope::Province { code } => code.get(..2).unwrap_or(code),
            Scope::City { code } => code.get(..4).unwrap_or(code),
            Scope::County { code } | Scope::Hospital { region: code, .. } => code,
        }
    }

    /// The key of this scope in `rollup_region` (`None` for a hospital, read from `rollup`).
    pub(crate) fn region_key(&self) -> Option<&str> {
        match self {
            Scope::National => Some(NATIONAL),
            Scope::Province { code } | Scope::City { code } | Scope::County { code } => Some(code),
            Scope::Hospital { .. } => None,
        }
    }

    /// The SQL that restricts `rollup r` to this scope: (JOIN clause, condition with `$N`, its parameter).
    pub(crate) fn sql(&self, n: usize) -> (&'static str, String, Option<String>) {
        match self {
            Scope::National => ("", String::new(), None),
            Scope::Hospital { code, .. } => ("", format!(" AND r.org = ${n}"), Some(code.clone())),
            Scope::County { code } => {
                (" JOIN hospitals h ON h.code = r.org", format!(" AND h.region = ${n}"), Some(code.clone()))
            }
            other => (
                " JOIN hospitals h ON h.code = r.org",
                format!(" AND h.region LIKE ${n}"),
                Some(format!("{}%", other.prefix())),
            ),
        }
    }

    /// The condition on `hospitals h` alone.
    pub(crate) fn hospital_sql(&self, n: usize) -> (String, Option<String>) {
        match self {
            Scope::National => (String::new(), None),
            Scope::Hospital { code, .. } => (format!(" AND h.code = ${n}"), Some(code.clone())),
            Scope::County { code } => (format!(" AND h.region = ${n}"), Some(code.clone())),
            other => (format!(" AND h.region LIKE ${n}"), Some(format!("{}%", other.prefix()))),
        }
    }

    /// Parses a region code (without a database: hospitals need [`Scope::resolve`]).
    pub fn region(code: &str) -> Result<Scope> {
        if code == NATIONAL {
            return Ok(Scope::National);
        }
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) || regions::name_of(code).is_none() {
            return Err(Error::BadRequest(
                "范围代码无效，须为 GB/T 2260 行政区划代码或机构代码 (unknown scope code)".into(),
            ));
        }
        let code = code.to_string();
        Ok(if code.ends_with("0000") {
            Scope::Province { code }
        } else if code.ends_with("00") {
            Scope::City { code }
        } else {
            Scope::County { code }
        })
    }

    /// A region code, or a hospital's USCC looked up in the registry.
    pub async fn resolve(db: &Db, code: &str) -> Result<Scope> {
        if code.len() == 18 {
            let row = sqlx::query("SELECT region FROM hospitals WHERE code = $1")
                .bind(code)
                .fetch_optional(&db.pool)
                .await?
                .ok_or(Error::NotFound)?;
            return Ok(Scope::Hospital { code: code.into(), region: row.try_get(0)? });
        }
        Scope::region(code)
    }
}

/// Refused: the account may not read that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forbidden(pub &'static str);

impl From<Forbidden> for Error {
    fn from(f: Forbidden) -> Error {
        Error::Forbidden(f.0)
    }
}

/// A scope an account was allowed to read, with the small-cell rule that applies.
/// Only [`scoped`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scoped {
    scope: Scope,
    small_cells: bool,
}

impl Scoped {
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Whether counts of 1–4 are shown as `<5` (accounts below national scope).
    pub fn small_cells(&self) -> bool {
        self.small_cells
    }

    /// A child of this scope, read under the same account (the region tree).
    pub fn narrow(&self, child: Scope) -> Result<Scoped, Forbidden> {
        if contains(self.scope.code(), &child) {
            Ok(Scoped { scope: child, small_cells: self.small_cells })
        } else {
            Err(Forbidden("超出本账户的地区范围 (outside the account's region)"))
        }
    }
}

/// Whether the region `outer` (a region code) contains `inner`.
fn contains(outer: &str, inner: &Scope) -> bool {
    let Ok(o) = Scope::region(outer) else { return false };
    let inner_region = match inner {
        Scope::National => return matches!(o, Scope::National),
        Scope::Hospital { region, .. } => region.as_str(),
        other => other.code(),
    };
    match &o {
        Scope::National => true,
        Scope::Hospital { .. } => false,
        Scope::County { code } => inner_region == code,
        Scope::Province { .. } | Scope::City { .. } => inner_region.starts_with(o.prefix()),
    }
}

/// THE access check: every read of case-derived data passes here.
/// Analysts read their region and below; every other role reads no case data.
pub fn scoped(account: &Account, requested: &Scope) -> Result<Scoped, Forbidden> {
    if account.role != Role::Analyst {
        return Err(Forbidden("该角色无权查看病例数据 (this role sees no case data)"));
    }
    let Some(own) = account.scope.as_deref() else {
        return Err(Forbidden("账户未设置地区范围 (account without a region)"));
    };
    if !contains(own, requested) {
        return Err(Forbidden("超出本账户的地区范围 (outside the account's region)"));
    }
    Ok(Scoped { scope: requested.clone(), small_cells: own != NATIONAL })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyst(scope: &str) -> Account {
        Account { name: "a".into(), role: Role::Analyst, scope: Some(scope.into()) }
    }

    #[test]
    fn containment() {
        let h = Scope::Hospital { code: "X".repeat(18), region: "110101".into() };
        let bj = Scope::region("110000").unwrap();
        let sz = Scope::region("440300").unwrap();
        assert!(scoped(&analyst("000000"), &h).is_ok());
        assert!(!scoped(&analyst("000000"), &h).unwrap().small_cells());
        assert!(scoped(&analyst("110000"), &h).unwrap().small_cells());
        assert!(scoped(&analyst("110100"), &h).is_ok());
        assert!(scoped(&analyst("440300"), &h).is_err());
        assert!(scoped(&analyst("110000"), &Scope::National).is_err());
        assert!(scoped(&analyst("110000"), &sz).is_err());
        assert!(scoped(&analyst("440000"), &sz).is_ok());
        assert!(scoped(&analyst("440300"), &bj).is_err());
        let sec = Account { name: "s".into(), role: Role::Secadmin, scope: Some("000000".into()) };
        assert!(scoped(&sec, &Scope::National).is_err());
        let s = scoped(&analyst("440000"), &Scope::region("440000").unwrap()).unwrap();
        assert!(s.narrow(sz.clone()).is_ok());
        assert!(s.narrow(bj).is_err());
        assert!(matches!(Scope::region("440305").unwrap(), Scope::County { .. }));
        assert!(Scope::region("999999").is_err());
        assert!(Scope::region("44030").is_err());
    }
}
