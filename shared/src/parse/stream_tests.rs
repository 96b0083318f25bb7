//! `parse_stream` ≡ `parse_upload`: every answer (rows, or error code and
//! message) compared over many inputs and many ways of cutting them into chunks.

use super::super::testutil::visits_csv;
use super::super::*;
use super::*;
use crate::model::ParsedFile;

const OP: RecordType = RecordType::Outpatient;
const V: RecordType = RecordType::Visits;

fn streamed(
    ty: RecordType,
    bytes: &[u8],
    ct: Option<&str>,
    limits: &Limits,
    split: usize,
) -> Result<ParsedFile, Error> {
    let mut scan = Scan::new(ct);
    for piece in bytes.chunks(split.max(1)) {
        scan.update(piece);
    }
    let plan = scan.finish(limits)?;
    if plan.format == Format::Xlsx {
        return parse_upload(ty, bytes, ct, limits);
    }
    let mut rows = Vec::new();
    let n = parse_stream(ty, &plan, bytes, limits, 7, |chunk: Vec<RawRow>| {
        assert!(chunk.len() <= 7);
        rows.extend(chunk);
        Ok::<(), ()>(())
    });
    match n {
        Ok(n) => {
            assert_eq!(n, rows.len());
            Ok(ParsedFile { ty, rows })
        }
        Err(StreamError::File(e)) => Err(e),
        Err(StreamError::Sink(())) => panic!("sink failed"),
    }
}

/// serde_json's reader counts the byte it peeked: a JSON *structure* error
/// (type mismatch) may name the next column. Only that column is masked.
fn norm(r: Result<ParsedFile, Error>) -> String {
    let s = format!("{r:?}");
    match s.find("JSON 结构不符合接口标准") {
        Some(at) => {
            let (head, tail) = s.split_at(at);
            let tail: String = match tail.find("列 (bad JSON") {
                Some(end) => {
                    let start = tail[..end].rfind('第').unwrap_or(end);
                    format!("{}第 ? {}", &tail[..start], &tail[end..])
                }
                None => tail.to_owned(),
            };
            format!("{head}{tail}")
        }
        None => s,
    }
}

fn same(ty: RecordType, bytes: &[u8], ct: Option<&str>, limits: &Limits) {
    let want = norm(parse_upload(ty, bytes, ct, limits));
    for split in [1, 2, 3, 5, 64, 4095, 4096, 4097, 1 << 20] {
        let got = norm(streamed(ty, bytes, ct, limits, split));
        assert_eq!(
            got,
            want,
            "split {split}, ct {ct:?}, input {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(80)])
        );
    }
}

fn cases() -> Vec<(RecordType, Vec<u8>, Option<&'static str>)> {
    let big = visits_csv(400);
    let mut v: Vec<(RecordType, Vec<u8>, Option<&'static str>)> = vec![
        (V, visits_csv(3).into_bytes(), Some("text/csv")),
        (V, big.clone().into_bytes(), None),
        (V, format!("\u{feff}{}", visits_csv(2).replace('\n', "\r\n")).into_bytes(), None),
        (
            OP,
            "XM,KSMC,ZDMC1,ZGTW\n\"张\"\"三\",\"呼吸\r\n内科\",\"流行性感冒, 伴肺炎\",38.5\n李四,儿科,\"\",\n".into(),
            None,
        ),
        (OP, "XM,KSMC\nA,x\n\n,,\n\" \", \nB,\"y\nz\"\nC,w\n\n\n".into(), None),
        (OP, b"XM,KSMC\nA,x\nB,y,secret\n".to_vec(), None),
        (OP, "XM,备注,KSMC\nA,b,c\n".into(), None),
        (RecordType::Discharge, "XM,籍贯, 血型 \nA,北京,\nB,,O\n".into(), None),
        (OP, "张三,1,北京\n李四,2,上海\n".into(), None),
        (OP, b"XM,KSMC\nA,\"x\nB,y\n".to_vec(), None),
        (OP, b"XM,KSMC\n\"a\"\"\",b\"c\n".to_vec(), None),
        (OP, b"".to_vec(), Some("text/csv")),
        (OP, b"\xef\xbb\xbf\r\n".to_vec(), None),
        (OP, b"XM\n\x00\x01\x02".to_vec(), Some("text/csv")),
        (OP, b"XM\nA\n".to_vec(), Some("application/json")),
        (OP, b"\xef\xbb\xbf\"XM\",KSMC\n\"a\",b\n".to_vec(), None),
        (OP, b"ok\nok\n\xff\xff".to_vec(), None),
        (OP, b"XM\nok\n\xe5\xbc".to_vec(), Some("text/csv; charset=utf-8")),
        (OP, b"XM\nA\xff\n".to_vec(), Some("text/csv; charset=utf-8")),
        (OP, b"\xef\xbb\xbfXM\nA\xff\n".to_vec(), None),
        (OP, b"XM\nA\x80\n".to_vec(), Some("text/csv; charset=gbk")),
        (OP, b"XM\nA\xff\xff\n".to_vec(), Some("text/csv; charset=gb18030")),
        (OP, b"\xff\xfeX\x00M\x00".to_vec(), None),
        (OP, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00".to_vec(), None),
        (OP, b"XM\nA\n".to_vec(), Some("text/csv; charset=big5")),
        (OP, b"XM\nA\n".to_vec(), Some("application/pdf")),
        (V, br#"{"records":[{"ZZJGDM":"X","TJRQ":"2024-01-02","MZRC":12},{},{"JLID":null}]}"#.to_vec(), None),
        (V, br#"{"records":[{"ZZJGDM":"X","MZRC":true}]}"#.to_vec(), Some("application/json")),
        (V, br#"{"records":[{"ZZJGDM":"X","zzjgdm":"Y"}]}"#.to_vec(), None),
        (V, br#"{"records":[{"ZZJGDM":"X"}], "more": 1}"#.to_vec(), None),
        (V, br#"{"records":[{"ZZJGDM":"X"}"#.to_vec(), None),
        (V, br#"{"records":[{"ZZJGDM":"X"}]} x"#.to_vec(), None),
        (V, br#"{"records":[1]}"#.to_vec(), None),
        (V, r#"{"records":[{"备注":"X"}]}"#.into(), None),
        (V, br#"[1,2]"#.to_vec(), None),
        (V, br#"{}"#.to_vec(), None),
        (V, "{\"records\":[{\"ZZJGDM\":\"X\",\"MZRC\":\"十二\"}]}".into(), None),
    ];
    // GB18030, with Chinese headers, large enough to cross the sample.
    let mut gb = String::from("组织机构代码,统计日期,门诊总诊疗人次\n");
    for i in 0..300 {
        gb.push_str(&format!("91110000000000000X,2024-01-{:02},十二{i}\n", i % 28 + 1));
    }
    let (bytes, _, bad) = encoding_rs::GB18030.encode(&gb);
    assert!(!bad);
    v.push((V, bytes.to_vec(), None));
    v.push((V, bytes.to_vec(), Some("text/csv; charset=GB18030")));
    v.push((V, bytes.to_vec(), Some("text/csv; charset=utf-8")));
    // UTF-8 Chinese crossing every chunk boundary, then a bad byte late.
    let mut late = gb.clone().into_bytes();
    v.push((V, late.clone(), None));
    late.extend_from_slice(b"X,\xff\n");
    v.push((V, late.clone(), None));
    // NUL and problems past the first 4 KiB.
    let mut nul = big.clone().into_bytes();
    nul.extend_from_slice(b"\x00\n");
    v.push((V, nul, None));
    v.push((V, format!("{big}91110000000000000X,2024-02-01,1,2,3,4,5,6,7,8,9\n").into_bytes(), None));
    v.push((V, format!("{big}\"91110000000000000X,2024-02-01\n").into_bytes(), None));
    v.push((V, format!("{}{}", " \n".repeat(5000), visits_csv(2)).into_bytes(), None));
    v.push((V, format!("{}{{\"records\":[]}}", " \n".repeat(5000)).into_bytes(), None));
    v.push((V, " \r\n".repeat(3000).into_bytes(), None));
    v.push((V, format!("\u{feff}{}", " ".repeat(5000)).into_bytes(), None));
    let mut json = String::from("{\"records\":[");
    for i in 0..500 {
        json.push_str(&format!(
            "{}{{\"ZZJGDM\":\"X\",\"JLID\":\"{i}\",\"MZRC\":{i},\"TJRQ\":\"2024-01-01\"}}",
            if i > 0 { "," } else { "" }
        ));
    }
    json.push_str("]}");
    v.push((V, json.clone().into_bytes(), Some("application/json")));
    let gbtext = json.replace("\"X\"", "\"十二\"");
    let (gbj, _, _) = encoding_rs::GB18030.encode(&gbtext);
    v.push((V, gbj.to_vec(), Some("application/json; charset=gbk")));
    v
}

#[test]
fn stream_equals_whole_parse() {
    for (ty, bytes, ct) in cases() {
        same(ty, &bytes, ct, &Limits::default());
    }
}

#[test]
fn limits_the_same() {
    let rows = Limits { max_rows: 3, ..Limits::default() };
    let bytes = Limits { max_bytes: 100, ..Limits::default() };
    for (ty, b, ct) in cases() {
        same(ty, &b, ct, &rows);
        same(ty, &b, ct, &bytes);
    }
}

#[test]
fn sink_error_stops_reading() {
    let csv = visits_csv(100);
    let mut scan = Scan::new(None);
    scan.update(csv.as_bytes());
    let plan = scan.finish(&Limits::default()).unwrap();
    let mut seen = 0;
    let r = parse_stream(V, &plan, csv.as_bytes(), &Limits::default(), 10, |c: Vec<RawRow>| {
        seen += c.len();
        if seen >= 30 { Err("stop") } else { Ok(()) }
    });
    assert!(matches!(r, Err(StreamError::Sink("stop"))), "{r:?}");
    assert_eq!(seen, 30);
    let json = format!("{{\"records\":[{}]}}", vec!["{\"ZZJGDM\":\"X\"}"; 50].join(","));
    let mut scan = Scan::new(None);
    scan.update(json.as_bytes());
    let plan = scan.finish(&Limits::default()).unwrap();
    let r = parse_stream(V, &plan, json.as_bytes(), &Limits::default(), 10, |_| Err::<(), _>("stop"));
    assert!(matches!(r, Err(StreamError::Sink("stop"))), "{r:?}");
}

#[test]
fn gb_reader_decodes_in_small_reads() {
    let text = "流感𠂇€,".repeat(20_000);
    let (bytes, _, _) = encoding_rs::GB18030.encode(&text);
    let mut r = GbReader::new(&bytes[..]);
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(String::from_utf8(out).unwrap(), "流感𠂇€,".repeat(20_000));
}
