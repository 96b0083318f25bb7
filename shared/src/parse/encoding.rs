//! Text decoding of CSV and JSON uploads: UTF-8 (BOM optional) or GB18030.
//!
//! ```text
//!  UTF-8 BOM? ── yes ─▶ must be valid UTF-8 (BOM wins over a declared charset)
//!     │ no
//!  declared charset ── utf-8   ─▶ must be valid UTF-8
//!     │             └─ gb18030 ─▶ must decode as GB18030 (gbk, gb2312, cp936 alike)
//!     │ none
//!  valid UTF-8 ─▶ UTF-8; else decodes as GB18030 ─▶ GB18030; else FILE_ENCODING
//! ```
//!
//! GB18030 is `encoding_rs`'s (WHATWG), which implements GB18030-2022 since
//! 0.8.35; the only difference from the national standard: byte `0x80` alone
//! decodes to `€` instead of being an error.

use std::borrow::Cow;

use encoding_rs::GB18030;

use super::{Charset, FILE_ENCODING};
use crate::error::Error;

const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

pub(crate) const UTF16_MESSAGE: &str = "文件是 UTF-16 编码 (Excel 的“Unicode 文本”), 不受支持 \
     (UTF-16 not supported); 请另存为 UTF-8 或 GB18030 编码的 CSV";

/// The charset named by a `charset=` parameter.
pub(crate) fn charset_from_label(label: &str) -> Result<Charset, Error> {
    match label {
        "utf-8" | "utf8" => Ok(Charset::Utf8),
        "gb18030" | "gbk" | "gb2312" | "cp936" | "windows-936" | "x-gbk" => Ok(Charset::Gb18030),
        other => Err(Error::file(
            FILE_ENCODING,
            format!("不支持的字符集 “{}” (unsupported charset); 请用 UTF-8 或 GB18030", super::excerpt(other)),
        )),
    }
}

/// Decode `bytes` as the charset declared, or as detected; the BOM is removed.
pub(crate) fn decode(bytes: &[u8], declared: Option<Charset>) -> Result<(Cow<'_, str>, Charset), Error> {
    if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        return utf8(rest, "文件以 UTF-8 BOM 开头").map(|s| (Cow::Borrowed(s), Charset::Utf8));
    }
    match declared {
        Some(Charset::Utf8) => utf8(bytes, "Content-Type 声明为 UTF-8").map(|s| (Cow::Borrowed(s), Charset::Utf8)),
        Some(Charset::Gb18030) => match gb18030(bytes) {
            Some(s) => Ok((s, Charset::Gb18030)),
            None => Err(Error::file(
                FILE_ENCODING,
                "Content-Type 声明为 GB18030, 但文件中有不是 GB18030 编码的字节 (not valid GB18030); \
                 请检查导出时选择的编码",
            )),
        },
        None => {
            if let Ok(s) = std::str::from_utf8(bytes) {
                return Ok((Cow::Borrowed(s), Charset::Utf8));
            }
            match gb18030(bytes) {
                Some(s) => Ok((s, Charset::Gb18030)),
                None => Err(Error::file(
                    FILE_ENCODING,
                    "文件编码既不是 UTF-8 也不是 GB18030 (encoding neither UTF-8 nor GB18030); \
                     请另存为 UTF-8 编码",
                )),
            }
        }
    }
}

fn utf8<'a>(bytes: &'a [u8], why: &str) -> Result<&'a str, Error> {
    std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes.get(..e.valid_up_to()).map_or(0, |ok| ok.iter().filter(|b| **b == b'\n').count()) + 1;
        Error::file(
            FILE_ENCODING,
            format!(
                "{why}, 但第 {line} 行 (按换行计) 不是有效的 UTF-8 (invalid UTF-8); \
                 如文件为 GB18030 编码, 请去掉 BOM 并声明 charset=gb18030"
            ),
        )
    })
}

fn gb18030(bytes: &[u8]) -> Option<Cow<'_, str>> {
    GB18030.decode_without_bom_handling_and_without_replacement(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_with_and_without_bom() {
        assert_eq!(decode("姓名".as_bytes(), None).unwrap(), (Cow::Borrowed("姓名"), Charset::Utf8));
        assert_eq!(decode(b"\xef\xbb\xbfXM", None).unwrap().0, "XM");
        // A BOM decides, whatever was declared.
        assert_eq!(decode("\u{feff}姓名".as_bytes(), Some(Charset::Gb18030)).unwrap().1, Charset::Utf8);
    }

    #[test]
    fn gb18030_declared_and_detected() {
        let (bytes, _, bad) = GB18030.encode("姓名,现住址\n张三,北京市海淀区");
        assert!(!bad);
        let (s, c) = decode(&bytes, None).unwrap();
        assert_eq!((s.as_ref(), c), ("姓名,现住址\n张三,北京市海淀区", Charset::Gb18030));
        assert_eq!(decode(&bytes, Some(Charset::Gb18030)).unwrap().1, Charset::Gb18030);
        assert!(decode(&bytes, Some(Charset::Utf8)).is_err());
        // Four-byte sequences (outside GBK): U+20087 𠂇.
        let (four, _, _) = GB18030.encode("𠂇");
        assert_eq!(four.len(), 4);
        assert_eq!(decode(&four, None).unwrap().0, "𠂇");
    }

    #[test]
    fn gb18030_2022_mapping() {
        // GB18030-2022 maps A6D9 to U+FE10 (the 2005 edition mapped it to the PUA, U+E78D).
        assert_eq!(decode(b"\xa6\xd9", Some(Charset::Gb18030)).unwrap().0, "\u{fe10}");
        // The one WHATWG difference: a lone 0x80 is the euro sign.
        assert_eq!(decode(b"\x80", Some(Charset::Gb18030)).unwrap().0, "€");
    }

    #[test]
    fn undecodable() {
        let e = decode(b"ok\nok\n\xff\xff", None).unwrap_err();
        assert!(matches!(e, Error::File { code: FILE_ENCODING, .. }));
        let e = decode(b"ok\nok\n\xff", Some(Charset::Utf8)).unwrap_err();
        let Error::File { message, .. } = e else { panic!() };
        assert!(message.contains("第 3 行"), "{message}");
        assert!(charset_from_label("latin1").is_err());
        assert_eq!(charset_from_label("gbk").unwrap(), Charset::Gb18030);
    }
}
