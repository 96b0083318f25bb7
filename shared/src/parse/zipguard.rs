//! The zip-bomb guard run on an XLSX upload before calamine sees it: every
//! entry is inflated once through a bounded reader and its real size counted
//! (declared sizes are never trusted).
//!
//! ```text
//!  bytes ─▶ end-of-central-directory record: entry count ≤ MAX_ENTRIES
//!        ─▶ ZipArchive::new (the zip crate calamine itself uses: no
//!           parser differential between what we checked and what it reads)
//!        ─▶ for each entry: inflate through take(cap + 1) into a sink
//!             cap = min(what is left of max_xlsx_inflated,
//!                       max(RATIO_FLOOR, max_xlsx_ratio × compressed size))
//!           ─▶ over cap: FILE_XLSX_BOMB, at once (memory stays at one 8 KiB buffer)
//! ```

use std::io::{self, Cursor, Read, Seek, SeekFrom};

use zip9::ZipArchive;
use zip9::result::ZipError;

use super::{FILE_TRUNCATED, FILE_XLSX_BOMB, FILE_XLSX_CORRUPT, Limits};
use crate::error::Error;

/// Most entries an XLSX file may have (a workbook has a few dozen).
pub const MAX_ENTRIES: u64 = 10_000;

/// Entries smaller than this when inflated are not held to the ratio limit
/// (tiny XML parts compress very well).
pub const RATIO_FLOOR: u64 = 1 << 20;

const EOCD_SIG: &[u8] = b"PK\x05\x06";
const EOCD64_LOCATOR_SIG: &[u8] = b"PK\x06\x07";
const EOCD64_SIG: &[u8] = b"PK\x06\x06";

/// Check that `bytes` is a zip whose entries all inflate within `limits`.
pub fn check(bytes: &[u8], limits: &Limits) -> Result<(), Error> {
    check_reader(&mut Cursor::new(bytes), limits)
}

/// [`check`] for a zip read through `r` (from its end first, then entry by entry).
pub fn check_reader<R: Read + Seek>(r: &mut R, limits: &Limits) -> Result<(), Error> {
    let Some(declared) = eocd_entries(r) else {
        return Err(Error::file(
            FILE_TRUNCATED,
            "XLSX 文件不完整: 找不到 zip 的目录结尾, 文件可能被截断 (truncated XLSX); 请重新上传完整文件",
        ));
    };
    if declared > MAX_ENTRIES {
        return Err(too_many_entries());
    }
    let mut archive = ZipArchive::new(r).map_err(zip_error)?;
    if u64::try_from(archive.len()).unwrap_or(u64::MAX) > MAX_ENTRIES {
        return Err(too_many_entries());
    }
    let mut total: u64 = 0;
    let mut shared_strings = Vec::new();
    for i in 0..archive.len() {
        let entry = archive.by_index(i).map_err(zip_error)?;
        let is_sst = entry.name().is_ok_and(|n| n.to_ascii_lowercase().ends_with("sharedstrings.xml"));
        if entry.encrypted() {
            return Err(Error::file(FILE_XLSX_CORRUPT, "XLSX 文件内容加了密 (encrypted XLSX); 请上传不加密的文件"));
        }
        let compressed = entry.compressed_size().max(1);
        let left = limits.max_xlsx_inflated.saturating_sub(total);
        let by_ratio = limits.max_xlsx_ratio.saturating_mul(compressed).max(RATIO_FLOOR);
        let cap = left.min(by_ratio);
        let inflated = io::copy(&mut entry.take(cap.saturating_add(1)), &mut io::sink()).map_err(io_error)?;
        if inflated > cap {
            let why = if inflated > left {
                format!("解压后总大小超过 {} 字节 (inflates past the total limit)", limits.max_xlsx_inflated)
            } else {
                format!("第 {} 个压缩项的压缩比超过 {} 倍 (compression ratio too high)", i + 1, limits.max_xlsx_ratio)
            };
            return Err(Error::file(
                FILE_XLSX_BOMB,
                format!("XLSX 文件{why}, 疑似压缩炸弹, 拒收 (zip bomb); 请用 Excel 正常保存后重新上传"),
            ));
        }
        total = total.saturating_add(inflated);
        if is_sst {
            shared_strings.push((i, inflated));
        }
    }
    for (i, inflated) in shared_strings {
        check_shared_strings(&mut archive, i, inflated)?;
    }
    Ok(())
}

/// Calamine 0.38 reserves room for the `uniqueCount` that a shared-strings
/// part declares, before reading any string: a forged count would abort the
/// process on allocation failure. Its first `sst` start tag is found the way
/// calamine finds it (quick-xml, same version and settings), and every
/// `uniqueCount` in it must be possible for the part's real size (a string
/// takes at least `<si></si>`, 9 bytes).
fn check_shared_strings<R: Read + Seek>(archive: &mut ZipArchive<R>, i: usize, inflated: u64) -> Result<(), Error> {
    use quick_xml::events::Event;
    let entry = archive.by_index(i).map_err(zip_error)?;
    let mut xml = quick_xml::Reader::from_reader(io::BufReader::new(entry));
    let config = xml.config_mut();
    config.check_end_names = false;
    config.trim_text(false);
    config.check_comments = false;
    config.expand_empty_elements = true;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf) {
            Ok(Event::Start(e)) if e.local_name().as_ref() == "sst" => {
                let most = (inflated / 8).max(4096);
                if declared_counts(e.attributes_raw().as_bytes()).any(|n| n > most) {
                    return Err(Error::file(
                        FILE_XLSX_CORRUPT,
                        "XLSX 文件的共享字符串表声明的数量与其大小不符 (forged sharedStrings count); \
                         请用 Excel 重新保存为 .xlsx 后上传",
                    ));
                }
                return Ok(());
            }
            // Calamine stops at the same places without reserving anything.
            Ok(Event::Eof) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
}

/// Every number written as `uniqueCount = "…"` in the raw attributes (a
/// superset of what calamine's own attribute reader can find); a count too
/// long for `u64` is `u64::MAX`.
fn declared_counts(raw: &[u8]) -> impl Iterator<Item = u64> + '_ {
    const KEY: &[u8] = b"uniqueCount";
    (0..raw.len()).filter_map(move |at| {
        let rest = raw.get(at..)?.strip_prefix(KEY)?;
        let rest = rest.trim_ascii_start().strip_prefix(b"=")?.trim_ascii_start();
        let (&quote, rest) = rest.split_first()?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        let value = rest.get(..rest.iter().position(|b| *b == quote).unwrap_or(rest.len()))?;
        let digits = value.trim_ascii().strip_prefix(b"+").unwrap_or(value.trim_ascii());
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(digits.iter().fold(0u64, |n, d| n.saturating_mul(10).saturating_add(u64::from(d - b'0'))))
    })
}

fn too_many_entries() -> Error {
    Error::file(
        FILE_XLSX_BOMB,
        format!("XLSX 文件包含超过 {MAX_ENTRIES} 个压缩项, 不是正常的工作簿 (too many zip entries)"),
    )
}

fn corrupt() -> Error {
    Error::file(FILE_XLSX_CORRUPT, "XLSX 文件已损坏, 无法解压 (corrupt XLSX); 请用 Excel 打开并重新保存为 .xlsx 后上传")
}

fn io_error(e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        Error::file(FILE_TRUNCATED, "XLSX 文件不完整, 解压时数据提前结束 (truncated XLSX); 请重新上传完整文件")
    } else {
        corrupt()
    }
}

fn zip_error(e: ZipError) -> Error {
    match e {
        ZipError::Io(e) => io_error(e),
        ZipError::UnsupportedArchive(_) | ZipError::CompressionMethodNotSupported(_) => Error::file(
            FILE_XLSX_CORRUPT,
            "XLSX 文件使用了不支持的压缩方式或加密 (unsupported zip feature); 请用 Excel 重新保存为 .xlsx",
        ),
        _ => corrupt(),
    }
}

/// The entry count that the end-of-central-directory record declares (the
/// ZIP64 one when the classic field is saturated); `None` when there is no
/// such record (a cut file). Of several candidates the one whose comment
/// reaches the end of the file is taken, else the last one. Reads the file's
/// last 64 KiB and, for ZIP64, the record the locator points at.
fn eocd_entries<R: Read + Seek>(r: &mut R) -> Option<u64> {
    const EOCD_LEN: usize = 22;
    let len = r.seek(SeekFrom::End(0)).ok()?;
    let from = len.saturating_sub((EOCD_LEN + usize::from(u16::MAX)) as u64);
    let tail = read_at(r, from, usize::try_from(len - from).ok()?)?;
    let mut chosen: Option<usize> = None;
    let mut pos = tail.len().checked_sub(EOCD_LEN)?;
    loop {
        if tail.get(pos..pos + 4) == Some(EOCD_SIG) {
            let comment = u64::from(le16(&tail, pos + 20)?);
            let exact = from + (pos + EOCD_LEN) as u64 + comment == len;
            if exact {
                chosen = Some(pos);
                break;
            }
            chosen.get_or_insert(pos);
        }
        if pos == 0 {
            break;
        }
        pos -= 1;
    }
    let pos = chosen?;
    let entries = le16(&tail, pos + 10)?;
    if entries != u16::MAX {
        return Some(u64::from(entries));
    }
    // ZIP64: locator 20 bytes before the EOCD, pointing at the ZIP64 record.
    let loc = (from + pos as u64).checked_sub(20)?;
    let locator = read_at(r, loc, 20)?;
    if locator.get(..4) != Some(EOCD64_LOCATOR_SIG) {
        return Some(u64::from(entries));
    }
    let rec = le64(&locator, 8)?;
    let Some(record) = read_at(r, rec, 40) else { return Some(u64::from(entries)) };
    if record.get(..4) != Some(EOCD64_SIG) {
        return Some(u64::from(entries));
    }
    le64(&record, 32)
}

/// `n` bytes at `at`; `None` when the file is shorter.
fn read_at<R: Read + Seek>(r: &mut R, at: u64, n: usize) -> Option<Vec<u8>> {
    r.seek(SeekFrom::Start(at)).ok()?;
    let mut v = vec![0u8; n];
    r.read_exact(&mut v).ok()?;
    Some(v)
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes(s.try_into().ok()?))
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::testutil::{Entry, X, code, deflated_zeros, raw_zip, rezip, xlsx};
    use super::*;

    fn crc(data: &[u8]) -> u32 {
        let mut c = flate2::Crc::new();
        c.update(data);
        c.sum()
    }

    fn zeros_crc(mib: usize) -> u32 {
        let mut c = flate2::Crc::new();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..mib {
            c.update(&chunk);
        }
        c.sum()
    }

    #[test]
    fn a_normal_workbook_passes() {
        let bytes = xlsx(&[vec![X::S("XM")], vec![X::S("张三")]]);
        check(&bytes, &Limits::default()).unwrap();
    }

    #[test]
    fn gigabyte_of_zeros_refused_quickly() {
        let data = deflated_zeros(1024);
        assert!(data.len() < 2 << 20, "{}", data.len());
        let t = Instant::now();
        for size in [1u32 << 30, 100] {
            let z = raw_zip(&[Entry { name: "xl/worksheets/sheet1.xml", method: 8, data: &data, crc: 0, size }]);
            let c = code(check(&z, &Limits::default()));
            assert!([FILE_XLSX_BOMB, FILE_XLSX_CORRUPT].contains(&c), "{c}");
            if size == 1 << 30 {
                assert_eq!(c, FILE_XLSX_BOMB);
            }
            // The same through parse_upload.
            let c = code(super::super::parse_upload(crate::model::RecordType::Lab, &z, None, &Limits::default()));
            assert!([FILE_XLSX_BOMB, FILE_XLSX_CORRUPT].contains(&c), "{c}");
        }
        // Inflating stops at 200 × the compressed size, so this stays well
        // 40 ms in release builds (about a second in debug ones).
        assert!(t.elapsed().as_secs() < 20, "{:?}", t.elapsed());
    }

    #[test]
    fn small_entries_below_the_ratio_floor_pass() {
        let data = deflated_zeros(1);
        let z = raw_zip(&[Entry { name: "a.xml", method: 8, data: &data, crc: zeros_crc(1), size: 1 << 20 }]);
        check(&z, &Limits::default()).unwrap();
        // Over the floor, the ratio counts.
        let data = deflated_zeros(2);
        let z = raw_zip(&[Entry { name: "a.xml", method: 8, data: &data, crc: zeros_crc(2), size: 2 << 20 }]);
        assert_eq!(code(check(&z, &Limits::default())), FILE_XLSX_BOMB);
        let lenient = Limits { max_xlsx_ratio: 10_000, ..Limits::default() };
        check(&z, &lenient).unwrap();
    }

    #[test]
    fn total_inflated_limit() {
        let part: Vec<u8> = (0..(512u32 << 10)).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let e = |name| Entry { name, method: 0, data: &part, crc: crc(&part), size: 512 << 10 };
        let l = Limits { max_xlsx_inflated: 1 << 20, ..Limits::default() };
        check(&raw_zip(&[e("a"), e("b")]), &l).unwrap();
        assert_eq!(code(check(&raw_zip(&[e("a"), e("b"), e("c")]), &l)), FILE_XLSX_BOMB);
    }

    #[test]
    fn too_many_entries() {
        let names: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("{i}")).collect();
        let entries: Vec<Entry<'_>> =
            names.iter().map(|n| Entry { name: n, method: 0, data: b"", crc: 0, size: 0 }).collect();
        assert_eq!(code(check(&raw_zip(&entries), &Limits::default())), FILE_XLSX_BOMB);
    }

    #[test]
    fn unsupported_method_and_bad_crc() {
        let z = raw_zip(&[Entry { name: "a", method: 12, data: b"BZh9", crc: 0, size: 4 }]);
        assert_eq!(code(check(&z, &Limits::default())), FILE_XLSX_CORRUPT);
        let z = raw_zip(&[Entry { name: "a", method: 0, data: b"abc", crc: 1, size: 3 }]);
        assert_eq!(code(check(&z, &Limits::default())), FILE_XLSX_CORRUPT);
    }

    #[test]
    fn forged_shared_strings_count() {
        let bytes = xlsx(&[vec![X::S("XM")], vec![X::S("张三")]]);
        for (count, refused) in [("2", false), ("99999999999999", true), ("184467440737095516150", true)] {
            let forged = rezip(&bytes, |name, data| {
                if name != "xl/sharedStrings.xml" {
                    return data.to_vec();
                }
                let s = String::from_utf8(data.to_vec()).unwrap();
                let at = s.find("uniqueCount=\"").unwrap() + "uniqueCount=\"".len();
                let end = at + s[at..].find('"').unwrap();
                format!("{}{count}{}", &s[..at], &s[end..]).into_bytes()
            });
            let r = check(&forged, &Limits::default());
            if refused {
                assert_eq!(code(r), FILE_XLSX_CORRUPT);
                let ty = crate::model::RecordType::Outpatient;
                assert_eq!(code(super::super::parse_upload(ty, &forged, None, &Limits::default())), FILE_XLSX_CORRUPT);
            } else {
                r.unwrap();
                let ty = crate::model::RecordType::Outpatient;
                assert_eq!(super::super::parse_upload(ty, &forged, None, &Limits::default()).unwrap().rows.len(), 1);
            }
        }
    }

    #[test]
    fn counts_in_raw_attributes() {
        let all = |raw: &[u8]| declared_counts(raw).collect::<Vec<_>>();
        assert_eq!(all(br#" xmlns="x" count="3" uniqueCount="2""#), vec![2]);
        assert_eq!(all(b" uniqueCount = '7' uniqueCount=\"+9\""), vec![7, 9]);
        assert_eq!(all(br#" uniqueCount="x1" uniqueCount="""#), Vec::<u64>::new());
        assert_eq!(all(br#" uniqueCount="99999999999999999999999""#), vec![u64::MAX]);
    }

    #[test]
    fn eocd() {
        let z = raw_zip(&[Entry { name: "a", method: 0, data: b"abc", crc: 0, size: 3 }]);
        let e = |b: &[u8]| eocd_entries(&mut Cursor::new(b));
        assert_eq!(e(&z), Some(1));
        assert_eq!(e(&z[..z.len() - 1]), None);
        assert_eq!(e(b""), None);
        assert_eq!(e(b"PK\x05\x06"), None);
        assert_eq!(code(check(&z[..z.len() - 1], &Limits::default())), FILE_TRUNCATED);
    }
}
