//! Death full-record scans (INTERFACE §3.9): a watched folder; each file is
//! uploaded with its linking fields to POST /api/v1/scans, then moved away.
//!
//! ```text
//!  scans/<JZLSH>_<WJXH>-<WJZS>_<NRLB>.pdf|tif|tiff|jpg|jpeg|png      e.g. ZY2025000123_1-3_1.pdf
//!  scans/<any name>.pdf + <any name>.pdf.json {"JZLSH":…, "WJXH":1, "WJZS":3, "NRLB":1}   (sidecar wins)
//!    ─▶ multipart {ZZJGDM, JZLSH, WJXH, WJZS, NRLB, file} ─▶ receipt
//!    200 ─▶ scans/sent/<file> + <file>.receipt.json      422 / 413 ─▶ scans/rejected/<file> + receipt
//!    network / 5xx ─▶ left in place, tried again on the next pass
//! ```
//! Files whose name starts with `.` are skipped: write a scan under a hidden
//! name and rename it when complete.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::Error;
use crate::https::{Client, multipart};

/// The linking fields of a scan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    #[serde(rename = "JZLSH")]
    pub jzlsh: String,
    #[serde(rename = "WJXH")]
    pub wjxh: u16,
    #[serde(rename = "WJZS")]
    pub wjzs: u16,
    #[serde(rename = "NRLB")]
    pub nrlb: u8,
}

/// What happened to one scan.
#[derive(Debug, Serialize)]
pub struct ScanOutcome {
    pub file: String,
    pub status: Option<u16>,
    pub accepted: bool,
    pub message: String,
}

const EXTS: [&str; 6] = ["pdf", "tif", "tiff", "jpg", "jpeg", "png"];

/// Parses `<JZLSH>_<WJXH>-<WJZS>_<NRLB>.<ext>`.
pub fn parse_name(name: &str) -> Option<Link> {
    let stem = Path::new(name).file_stem()?.to_str()?;
    let mut it = stem.rsplitn(3, '_');
    let nrlb = it.next()?.parse().ok()?;
    let (x, z) = it.next()?.split_once('-')?;
    let jzlsh = it.next()?.to_owned();
    if jzlsh.is_empty() {
        return None;
    }
    Some(Link { jzlsh, wjxh: x.parse().ok()?, wjzs: z.parse().ok()?, nrlb })
}

fn link_of(path: &Path, name: &str) -> Result<Option<Link>, Error> {
    let side = PathBuf::from(format!("{}.json", path.display()));
    if side.is_file() {
        let t = std::fs::read(&side)?;
        let l: Link = serde_json::from_slice(&t)
            .map_err(|e| Error::Source(format!("{}: 附属文件格式错误 (sidecar): {e}", side.display())))?;
        return Ok(Some(l));
    }
    Ok(parse_name(name))
}

fn move_to(path: &Path, sub: &str, receipt: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new(".")).join(sub);
    std::fs::create_dir_all(&dir)?;
    let name = path.file_name().unwrap_or_default();
    let target = dir.join(name);
    std::fs::write(dir.join(format!("{}.receipt.json", name.to_string_lossy())), receipt)?;
    std::fs::rename(path, &target)?;
    let side = PathBuf::from(format!("{}.json", path.display()));
    if side.is_file() {
        std::fs::rename(&side, dir.join(format!("{}.json", name.to_string_lossy())))?;
    }
    Ok(())
}

/// One pass over the scans folder.
pub async fn process(folder: &Path, client: &Client, token: &str, uscc: &str) -> Result<Vec<ScanOutcome>, Error> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(folder) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect(),
        Err(e) => return Err(Error::Source(format!("扫描件目录 {}: {e}", folder.display()))),
    };
    files.sort();
    let auth = format!("Bearer {token}");
    for path in files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        if name.starts_with('.') || !EXTS.contains(&ext.as_str()) {
            continue;
        }
        let Some(link) = link_of(&path, &name)? else {
            out.push(ScanOutcome {
                file: name,
                status: None,
                accepted: false,
                message: "文件名不符合 <JZLSH>_<WJXH>-<WJZS>_<NRLB>.<扩展名>, 也没有 .json 附属文件; 未上传 (name convention)".into(),
            });
            continue;
        };
        let bytes = std::fs::read(&path)?;
        let (x, z, n) = (link.wjxh.to_string(), link.wjzs.to_string(), link.nrlb.to_string());
        let fields = [("ZZJGDM", uscc), ("JZLSH", link.jzlsh.as_str()), ("WJXH", &x), ("WJZS", &z), ("NRLB", &n)];
        let (ct, body) = multipart(&fields, &name, &bytes)?;
        let a = match client
            .send("POST", "/api/v1/scans", &[("authorization", &auth), ("content-type", &ct)], body)
            .await
        {
            Ok(a) => a,
            Err(Error::Network(m)) => {
                out.push(ScanOutcome {
                    file: name,
                    status: None,
                    accepted: false,
                    message: format!("稍后重试 (will retry): {m}"),
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        let text = String::from_utf8_lossy(&a.body).into_owned();
        match a.status {
            200 => {
                move_to(&path, "sent", &a.body)?;
                out.push(ScanOutcome {
                    file: name,
                    status: Some(200),
                    accepted: true,
                    message: "已接收 (accepted)".into(),
                });
            }
            401 | 403 => return Err(Error::Auth { status: a.status, message: text }),
            413 | 422 => {
                move_to(&path, "rejected", &a.body)?;
                out.push(ScanOutcome { file: name, status: Some(a.status), accepted: false, message: text });
            }
            s => out.push(ScanOutcome {
                file: name,
                status: Some(s),
                accepted: false,
                message: format!("稍后重试 (will retry): {text}"),
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            parse_name("ZY_2025_01_2-3_6.pdf"),
            Some(Link { jzlsh: "ZY_2025_01".into(), wjxh: 2, wjzs: 3, nrlb: 6 })
        );
        assert_eq!(parse_name("a.pdf"), None);
        assert_eq!(parse_name("_1-1_1.pdf"), None);
    }
}
