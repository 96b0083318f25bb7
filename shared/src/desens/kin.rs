//! Beyond the rule of INTERFACE §5: names of other persons after a kinship
//! word (其子张伟, 家属：李娜, 联系人 王芳). A name is a common surname (the
//! ~100 most common of 百家姓, plus a few compound surnames) and one or two
//! given-name characters. Characters that in clinical text follow a surname
//! character without being a name (高血压, 于今日, 方面, 陈述) stop the name.

use super::rules::{CharSet, Span, char_at, marker_at, skip_colon};
use super::scrub::IdKind;

/// Kinship and contact words after which a name is looked for, by first
/// character, longest first.
fn kin_words_starting(c: char) -> &'static [&'static str] {
    match c {
        '紧' => &["紧急联系人"],
        '联' => &["联系人"],
        '监' => &["监护人"],
        '委' => &["委托人"],
        '代' => &["代理人"],
        '签' => &["签字人"],
        '陪' => &["陪同人", "陪护"],
        '家' => &["家属"],
        '其' => &["其子", "其女", "其妻", "其夫", "其父", "其母", "其兄", "其弟", "其姐", "其妹"],
        '之' => &["之子", "之女", "之妻", "之夫"],
        '丈' => &["丈夫"],
        '妻' => &["妻子"],
        '儿' => &["儿子", "儿媳"],
        '女' => &["女儿", "女婿"],
        '父' => &["父亲"],
        '母' => &["母亲"],
        '爱' => &["爱人"],
        '配' => &["配偶"],
        '老' => &["老伴"],
        '哥' => &["哥哥"],
        '弟' => &["弟弟"],
        '姐' => &["姐姐"],
        '妹' => &["妹妹"],
        '孙' => &["孙子", "孙女"],
        '外' => &["外孙", "外公", "外婆"],
        '爷' => &["爷爷"],
        '奶' => &["奶奶"],
        _ => &[],
    }
}

/// The first characters of the kinship words, and the marker bracket.
static KIN_OR_MARKER_START: CharSet = CharSet::new("［紧联监委代签陪家其之丈妻儿女父母爱配老哥弟姐妹孙外爷奶");

/// [`SURNAMES`] as a set.
static SURNAME_SET: CharSet = CharSet::new(SURNAMES);

/// The ~100 most common Chinese surnames (about 85 % of the population).
const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤";

/// Compound surnames (two characters).
const COMPOUND_SURNAMES: [&str; 10] = ["欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐"];

/// Characters that end a name where a given name would be: function words,
/// verbs of reporting and accompanying, and the second characters of clinical
/// words that start with a surname character (高血压, 于今日, 方面, 陈述 …).
const NOT_GIVEN: &str = "的了是在有无于为与和及等或诉述称说讲陪同来去到回已未均也都亦因予后前时年月日天周岁次患病院科医护血热烧压龄危度今昨外内本我你他她其该此各每某体健尚仍曾现既往史签字意要求示知情拒绝自行携带送伴照顾看望电话号码手机住址地姓名男女士先生性人员代理老诊治疗查检验面向对从把被让给将所以而且但";

/// Common words that start with a surname character (高度, 方便, 任何 …): after
/// a kinship word they are not a name.
const NOT_NAMES: [&str; 76] = [
    "陈旧", "黄疸", "黄色", "周围", "周身", "徐缓", "马上", "胡言", "何种", "何处", "高龄", "高度", "高危", "高中",
    "高兴", "郑重", "谢绝", "唐突", "许多", "许可", "曾经", "于是", "余下", "余热", "杜绝", "叶酸", "程度", "程序",
    "苏醒", "任何", "任务", "任意", "钟点", "陆续", "范围", "金额", "金属", "石膏", "夏季", "付费", "付款", "方便",
    "方式", "方可", "方法", "方案", "方能", "白细", "白色", "白班", "黎明", "顾虑", "顾及", "毛病", "毛巾", "万分",
    "万一", "钱款", "严格", "严重", "严密", "严禁", "戴口", "莫名", "汤药", "罗列", "林立", "田间", "江湖", "龙头",
    "雷同", "孔径", "史料", "魏晋", "沈阳", "武汉",
];

fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

fn is_given(c: Option<char>) -> bool {
    c.is_some_and(|c| is_han(c) && !NOT_GIVEN.contains(c))
}

/// The kinship word starting at byte `i`: its byte length.
fn kin_at(text: &str, i: usize) -> Option<usize> {
    let rest = text.get(i..)?;
    kin_words_starting(rest.chars().next()?).iter().find(|w| rest.starts_with(*w)).map(|w| w.len())
}

/// A name starting at byte `i`: surname and one or two given characters. Its end.
fn name_at(text: &str, i: usize) -> Option<usize> {
    let rest = text.get(i..)?;
    let surname_len = match COMPOUND_SURNAMES.iter().find(|s| rest.starts_with(*s)) {
        Some(s) => s.len(),
        None => {
            let c = rest.chars().next()?;
            if !SURNAME_SET.contains(c) || NOT_NAMES.iter().any(|w| rest.starts_with(w)) {
                return None;
            }
            c.len_utf8()
        }
    };
    let mut end = i + surname_len;
    for _ in 0..2 {
        let c = char_at(text, end);
        if !is_given(c) {
            break;
        }
        end += c.map_or(0, char::len_utf8);
    }
    (end > i + surname_len).then_some(end)
}

/// Names after kinship words, left to right, never overlapping.
pub(crate) struct KinNames<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> KinNames<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        KinNames { text, pos: 0 }
    }
}

impl Iterator for KinNames<'_> {
    type Item = Span;

    fn next(&mut self) -> Option<Span> {
        let text = self.text;
        let rest = text.get(self.pos..)?;
        let base = self.pos;
        let mut skip_to = 0;
        // Every char is tried, so that overlapping words (其妻子王芳) are too.
        for (off, c) in rest.char_indices() {
            let i = base + off;
            if i < skip_to || !KIN_OR_MARKER_START.contains(c) {
                continue;
            }
            if let Some(len) = marker_at(text, i) {
                skip_to = i + len;
                continue;
            }
            if let Some(len) = kin_at(text, i) {
                let start = skip_colon(text, i + len);
                if let Some(end) = name_at(text, start) {
                    self.pos = end;
                    return Some(Span { start, end, kind: IdKind::Name });
                }
            }
        }
        self.pos = text.len();
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(t: &str) -> Vec<&str> {
        KinNames::new(t).map(|s| &t[s.start..s.end]).collect()
    }

    #[test]
    fn kin_names() {
        assert_eq!(names("其子张伟来院"), vec!["张伟"]);
        assert_eq!(names("家属：李娜，联系人 欧阳娜娜。"), vec!["李娜", "欧阳娜娜"]);
        assert_eq!(names("其妻子王芳陪同"), vec!["王芳"]);
        assert_eq!(names("母亲刘秀英诉"), vec!["刘秀英"]);
        assert!(names("其母有高血压病史，其父高血压，家属陈述，母亲于今日").is_empty());
        assert!(names("家属签字同意，女儿陪同").is_empty());
        assert!(names("家属陆续到院，严格遵守，其女方便时复诊").is_empty());
        assert!(names("［姓名］其子［姓名］").is_empty());
    }

    #[test]
    fn lists_are_sane() {
        assert_eq!(SURNAMES.chars().count(), 100);
        assert!(SURNAMES.chars().all(is_han));
        for w in NOT_NAMES {
            assert!(SURNAMES.contains(w.chars().next().unwrap()), "{w}");
        }
        for c in "紧联监委代签陪家其之丈妻儿女父母爱配老哥弟姐妹孙外爷奶".chars() {
            assert!(KIN_OR_MARKER_START.contains(c));
            let words = kin_words_starting(c);
            assert!(!words.is_empty());
            for (i, a) in words.iter().enumerate() {
                assert!(a.starts_with(c));
                // a longer word that starts with a shorter one must come first
                for b in &words[i + 1..] {
                    assert!(!(b.starts_with(a) && b.len() > a.len()), "{b} after {a}");
                }
            }
        }
    }
}
