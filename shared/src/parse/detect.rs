//! Which format an upload is: the declared `Content-Type` checked against the
//! content's first bytes.
//!
//! ```text
//!  Content-Type ─▶ declared format? (json | csv | xlsx | sniff | refused)
//!  bytes        ─▶ looks like      (zip | ole2 | utf-16 | binary | json text | text)
//!                   └── both agree ─▶ Format, declared charset
//!                       disagree   ─▶ FILE_FORMAT / FILE_BINARY / FILE_ENCODING
//! ```

use super::{Charset, FILE_BINARY, FILE_EMPTY, FILE_ENCODING, FILE_FORMAT, Format, encoding};
use crate::error::Error;

const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const EMPTY_ZIP_MAGIC: &[u8] = b"PK\x05\x06";
const OLE2_MAGIC: &[u8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1";
const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// What the bytes look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Looks {
    Zip,
    Ole2,
    Utf16,
    Binary,
    JsonText,
    Text,
}

/// Detect the format and the character set of an upload (INTERFACE §1).
///
/// For text formats the whole content is decoded once to check the charset
/// (valid UTF-8 → UTF-8, else GB18030 when it decodes without error); XLSX
/// reports [`Charset::Utf8`].
pub fn detect(content_type: Option<&str>, bytes: &[u8]) -> Result<(Format, Charset), Error> {
    let (format, declared) = sniff(content_type, bytes)?;
    match format {
        Format::Xlsx => Ok((format, Charset::Utf8)),
        Format::Json | Format::Csv => {
            let (_, charset) = encoding::decode(bytes, declared)?;
            Ok((format, charset))
        }
    }
}

/// The format, and the charset the `Content-Type` declared (if any).
pub(crate) fn sniff(content_type: Option<&str>, bytes: &[u8]) -> Result<(Format, Option<Charset>), Error> {
    let content = looks(bytes)?;
    let (essence, charset) = parse_content_type(content_type.unwrap_or(""));
    let declared = match essence.as_str() {
        "" | "application/octet-stream" | "text/plain" | "application/vnd.ms-excel" => None,
        "application/json" | "text/json" => Some(Format::Json),
        "text/csv" | "application/csv" | "text/comma-separated-values" => Some(Format::Csv),
        XLSX_TYPE => Some(Format::Xlsx),
        "multipart/form-data" => {
            return Err(Error::file(
                FILE_FORMAT,
                "请求体须为文件本身, 不能是 multipart/form-data 表单 (send the file as the body, not as a form); \
                 Content-Type 用 application/json、text/csv 或 XLSX 的类型",
            ));
        }
        other => {
            return Err(Error::file(
                FILE_FORMAT,
                format!(
                    "不支持的 Content-Type “{}” (unsupported content type); 请用 application/json、text/csv 或 {XLSX_TYPE}",
                    super::excerpt(other)
                ),
            ));
        }
    };
    let format = match (declared, content) {
        (_, Looks::Ole2) => return Err(Error::file(FILE_FORMAT, OLE2_MESSAGE)),
        (Some(Format::Xlsx) | None, Looks::Zip) => Format::Xlsx,
        (Some(Format::Xlsx), _) => return Err(mismatch("XLSX", content)),
        (Some(f), Looks::Zip) => return Err(mismatch(declared_name(f), content)),
        (_, Looks::Utf16) => return Err(Error::file(FILE_ENCODING, encoding::UTF16_MESSAGE)),
        (_, Looks::Binary) => {
            return Err(Error::file(
                FILE_BINARY,
                "文件含二进制内容 (NUL 字节), 不是 CSV 或 JSON 文本 (binary content); 请检查导出的文件",
            ));
        }
        (Some(Format::Json) | None, Looks::JsonText) => Format::Json,
        (Some(Format::Json), Looks::Text) => return Err(mismatch("JSON", content)),
        (Some(Format::Csv), Looks::JsonText) => return Err(mismatch("CSV", content)),
        (Some(Format::Csv) | None, Looks::Text) => Format::Csv,
    };
    // A charset means nothing for XLSX (its XML says its own).
    let charset = match charset {
        Some(c) if format != Format::Xlsx => Some(encoding::charset_from_label(&c)?),
        _ => None,
    };
    Ok((format, charset))
}

const OLE2_MESSAGE: &str = "文件是旧版 Excel 97-2003 (.xls) 或加了密码的 Excel 文件, 不受支持 \
     (legacy .xls or encrypted workbook); 请另存为不加密的 .xlsx, 或导出为 CSV";

fn declared_name(f: Format) -> &'static str {
    match f {
        Format::Json => "JSON",
        Format::Csv => "CSV",
        Format::Xlsx => "XLSX",
    }
}

fn mismatch(declared: &str, content: Looks) -> Error {
    let actual = match content {
        Looks::Zip => "ZIP/XLSX 文件",
        Looks::JsonText => "JSON 文本",
        Looks::Text => "CSV 或其他文本",
        Looks::Ole2 | Looks::Utf16 | Looks::Binary => "二进制内容",
    };
    Error::file(
        FILE_FORMAT,
        format!(
            "Content-Type 声明为 {declared}, 但内容看起来是{actual} (declared {declared}, content differs); \
             请让 Content-Type 与文件一致"
        ),
    )
}

fn looks(bytes: &[u8]) -> Result<Looks, Error> {
    if bytes.starts_with(ZIP_MAGIC) || bytes.starts_with(EMPTY_ZIP_MAGIC) {
        return Ok(Looks::Zip);
    }
    if bytes.starts_with(OLE2_MAGIC) {
        return Ok(Looks::Ole2);
    }
    if bytes.starts_with(b"\xff\xfe") || bytes.starts_with(b"\xfe\xff") {
        return Ok(Looks::Utf16);
    }
    let body = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let Some(first) = first else {
        return Err(Error::file(FILE_EMPTY, "文件为空, 或只有空白 (empty file)"));
    };
    if body.contains(&0) {
        return Ok(Looks::Binary);
    }
    Ok(if matches!(first, b'{' | b'[') { Looks::JsonText } else { Looks::Text })
}

/// `("text/csv", Some("gb18030"))` from `Text/CSV; Charset="GB18030"`.
fn parse_content_type(ct: &str) -> (String, Option<String>) {
    let mut parts = ct.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let charset = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("charset").then(|| v.trim().trim_matches('"').trim().to_ascii_lowercase())
    });
    (essence, charset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<(Format, Charset), Error>) -> &'static str {
        match r {
            Err(Error::File { code, .. }) => code,
            other => panic!("expected a file error, got {other:?}"),
        }
    }

    #[test]
    fn content_type_parsing() {
        assert_eq!(parse_content_type("Text/CSV; Charset=\"GB18030\""), ("text/csv".into(), Some("gb18030".into())));
        assert_eq!(parse_content_type("application/json"), ("application/json".into(), None));
        assert_eq!(parse_content_type(""), (String::new(), None));
    }

    #[test]
    fn sniffing_without_declared_type() {
        assert_eq!(detect(None, b"ZZJGDM,JLID\r\n").unwrap(), (Format::Csv, Charset::Utf8));
        assert_eq!(detect(Some("application/octet-stream"), b"\xef\xbb\xbf {\"records\":[]}").unwrap().0, Format::Json);
        assert_eq!(detect(None, b"PK\x03\x04rest").unwrap(), (Format::Xlsx, Charset::Utf8));
        let gb = encoding_rs::GB18030.encode("组织机构代码,记录唯一标识\n").0;
        assert_eq!(detect(None, &gb).unwrap(), (Format::Csv, Charset::Gb18030));
    }

    #[test]
    fn declared_types() {
        assert_eq!(detect(Some("text/csv; charset=gb18030"), b"XM\n").unwrap(), (Format::Csv, Charset::Gb18030));
        assert_eq!(detect(Some("application/json; charset=utf-8"), b"{}").unwrap().0, Format::Json);
        assert_eq!(detect(Some(XLSX_TYPE), b"PK\x03\x04").unwrap().0, Format::Xlsx);
        assert_eq!(detect(Some(&format!("{XLSX_TYPE}; charset=big5")), b"PK\x03\x04").unwrap().0, Format::Xlsx);
    }

    #[test]
    fn refusals() {
        assert_eq!(code(detect(None, b"")), FILE_EMPTY);
        assert_eq!(code(detect(Some("text/csv"), b" \r\n\t")), FILE_EMPTY);
        assert_eq!(code(detect(Some(XLSX_TYPE), b"")), FILE_EMPTY);
        assert_eq!(code(detect(None, b"\xef\xbb\xbf")), FILE_EMPTY);
        assert_eq!(code(detect(None, b"abc\x00def")), FILE_BINARY);
        assert_eq!(code(detect(Some("application/json"), b"XM,XB\n")), FILE_FORMAT);
        assert_eq!(code(detect(Some("text/csv"), b"{\"records\":[]}")), FILE_FORMAT);
        assert_eq!(code(detect(Some("text/csv"), b"PK\x03\x04....")), FILE_FORMAT);
        assert_eq!(code(detect(Some(XLSX_TYPE), b"XM,XB\n")), FILE_FORMAT);
        assert_eq!(code(detect(Some("application/pdf"), b"%PDF-1.4")), FILE_FORMAT);
        assert_eq!(code(detect(Some("multipart/form-data; boundary=x"), b"--x")), FILE_FORMAT);
        assert_eq!(code(detect(None, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00")), FILE_FORMAT);
        assert_eq!(code(detect(None, b"\xff\xfeX\x00M\x00")), FILE_ENCODING);
        assert_eq!(code(detect(Some("text/csv; charset=big5"), b"XM\n")), FILE_ENCODING);
        assert_eq!(code(detect(Some("text/csv; charset=utf-8"), b"XM\xff\n")), FILE_ENCODING);
        assert_eq!(code(detect(None, b"XM\xff\xff\n")), FILE_ENCODING);
    }

    #[test]
    fn messages_are_bounded() {
        let long = format!("application/{}", "x".repeat(500));
        let Err(Error::File { message, .. }) = detect(Some(&long), b"XM\n") else { panic!() };
        assert!(message.len() < 300, "{message}");
    }
}
