//! Geography: a tile-grid map of China's 34 provincial units coloured by a
//! chosen indicator (SVG drawn here), and the drill-down province → city →
//! county → hospital, each level a sortable table from `views::tree`.
//! Tiles outside the account's region are grey and not links; a URL edited
//! to another region is refused by the one access check (无权访问 page).
//!
//! ```text
//!  /map?scope&ind&from&to ─▶ tiles: national account → tree(全国) children
//!                                   other accounts   → tree(own province).node only
//!                         ─▶ table: tree(scope) children, each a link one level down
//! ```

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use flumon_shared::svgchart::esc;
use maud::html;

use super::analyst::maybe_export;
use super::filters::{Q, bar, crumbs};
use super::layout::{cell, html_ok, page, ratio, svg};
use super::table::{Table, Td};
use super::{PageResult, WebUser};
use crate::api::AppState;
use crate::indicators::views::{self, Node};
use crate::indicators::{By, NATIONAL, Scope, scoped};

/// (province code prefix, short name, row, column) of the tile grid.
pub const TILES: &[(&str, &str, u8, u8)] = &[
    ("23", "黑龙江", 0, 8),
    ("65", "新疆", 1, 1),
    ("15", "内蒙古", 1, 5),
    ("22", "吉林", 1, 8),
    ("62", "甘肃", 2, 3),
    ("64", "宁夏", 2, 4),
    ("14", "山西", 2, 5),
    ("11", "北京", 2, 6),
    ("21", "辽宁", 2, 7),
    ("63", "青海", 3, 2),
    ("61", "陕西", 3, 4),
    ("13", "河北", 3, 5),
    ("12", "天津", 3, 6),
    ("37", "山东", 3, 7),
    ("54", "西藏", 4, 1),
    ("51", "四川", 4, 3),
    ("50", "重庆", 4, 4),
    ("41", "河南", 4, 5),
    ("32", "江苏", 4, 6),
    ("31", "上海", 4, 7),
    ("53", "云南", 5, 3),
    ("52", "贵州", 5, 4),
    ("42", "湖北", 5, 5),
    ("34", "安徽", 5, 6),
    ("33", "浙江", 5, 7),
    ("45", "广西", 6, 4),
    ("43", "湖南", 6, 5),
    ("36", "江西", 6, 6),
    ("35", "福建", 6, 7),
    ("71", "台湾", 6, 8),
    ("44", "广东", 7, 5),
    ("81", "香港", 7, 6),
    ("46", "海南", 8, 4),
    ("82", "澳门", 8, 5),
];

/// The indicators a map can show.
pub const INDICATORS: &[(&str, &str)] = &[
    ("cases", "流感病例数"),
    ("oe_ratio", "门急诊流感样病例占比"),
    ("admissions", "新增住院"),
    ("deaths", "死亡例数"),
];

fn value(n: &Node, ind: &str) -> Option<f64> {
    match ind {
        "oe_ratio" => n.oe_ratio.value,
        "admissions" => n.admissions.shown().map(|x| x as f64),
        "deaths" => n.deaths.shown().map(|x| x as f64),
        _ => n.cases.shown().map(|x| x as f64),
    }
}

fn shown(n: &Node, ind: &str) -> String {
    match ind {
        "oe_ratio" => ratio(&n.oe_ratio),
        "admissions" => cell(n.admissions),
        "deaths" => cell(n.deaths),
        _ => cell(n.cases),
    }
}

/// Sequential blues, light → dark.
const SCALE: &[&str] = &["#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c"];

fn shade(v: f64, max: f64) -> &'static str {
    if max <= 0.0 {
        return SCALE.first().copied().unwrap_or("#deebf7");
    }
    let k = ((v / max) * (SCALE.len() - 1) as f64).round() as usize;
    SCALE.get(k.min(SCALE.len() - 1)).copied().unwrap_or("#08519c")
}

/// The tile map: `nodes` by province code; `allowed` says which tiles link.
pub fn tile_map(
    nodes: &BTreeMap<String, Node>,
    ind: &str,
    allowed: &dyn Fn(&str) -> bool,
    link: &dyn Fn(&str) -> String,
) -> String {
    let (w, h, gap) = (62.0, 50.0, 4.0);
    let max = nodes.values().filter_map(|n| value(n, ind)).fold(0.0_f64, f64::max);
    let mut o = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="tilemap" viewBox="0 0 {} {}" width="100%" font-family="'Noto Sans CJK SC','WenQuanYi Micro Hei',sans-serif" font-size="12" role="img" aria-label="分省地图">"#,
        10.0 * (w + gap),
        9.0 * (h + gap) + 30.0
    );
    for (prefix, short, row, col) in TILES {
        let code = format!("{prefix}0000");
        let (x, y) = (f64::from(*col) * (w + gap) + 4.0, f64::from(*row) * (h + gap) + 4.0);
        let node = nodes.get(&code);
        let ok = allowed(&code);
        let (fill, text_col, label) = match node.and_then(|n| value(n, ind)) {
            Some(v) if ok => {
                let f = shade(v, max);
                let dark = SCALE.iter().position(|c| *c == f).is_some_and(|p| p >= 4);
                (f, if dark { "#ffffff" } else { "#1f2d3d" }, node.map(|n| shown(n, ind)).unwrap_or_default())
            }
            _ if ok => ("#f2f4f7", "#556", node.map(|n| shown(n, ind)).unwrap_or_else(|| "—".into())),
            _ => ("#e4e7eb", "#9aa3ad", "无权限".into()),
        };
        let tile = format!(
            r##"<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="4" fill="{fill}" stroke="#ffffff"/><text x="{}" y="{}" text-anchor="middle" fill="{text_col}" font-weight="bold">{}</text><text x="{}" y="{}" text-anchor="middle" fill="{text_col}" font-size="11">{}</text><title>{}: {}</title>"##,
            x + w / 2.0,
            y + 21.0,
            esc(short),
            x + w / 2.0,
            y + 38.0,
            esc(&label),
            esc(short),
            esc(&label)
        );
        if ok {
            o.push_str(&format!(r#"<a href="{}" class="tile" data-code="{code}">{tile}</a>"#, esc(&link(&code))));
        } else {
            o.push_str(&format!(r#"<g class="tile off" data-code="{code}">{tile}</g>"#));
        }
    }
    // Legend.
    let ly = 9.0 * (h + gap) + 10.0;
    for (k, c) in SCALE.iter().enumerate() {
        o.push_str(&format!(r#"<rect x="{}" y="{ly}" width="28" height="12" fill="{c}"/>"#, 60.0 + k as f64 * 28.0));
    }
    o.push_str(&format!(
        r##"<text x="4" y="{}" fill="#556">低</text><text x="{}" y="{}" fill="#556">高 (最大 {})</text>"##,
        ly + 11.0,
        66.0 + SCALE.len() as f64 * 28.0,
        ly + 11.0,
        esc(&if ind == "oe_ratio" { format!("{:.1}%", max * 100.0) } else { format!("{max:.0}") })
    ));
    o.push_str("</svg>");
    o
}

fn level_zh(level: &str) -> &'static str {
    match level {
        "province" => "省",
        "city" => "市",
        "county" => "县 (区)",
        "hospital" => "医院",
        _ => "全国",
    }
}

/// `GET /map`.
pub async fn map(State(st): State<AppState>, u: WebUser, Query(q): Query<Q>) -> PageResult {
    let s = q.scoped(&st, &u).await?;
    let p = q.period(&st, 7, By::Week).map_err(|e| u.err(e))?;
    let ind = q.ind.as_deref().filter(|i| INDICATORS.iter().any(|(k, _)| k == i)).unwrap_or("cases").to_string();
    let tree = views::tree(&st.db, &s, &p).await.map_err(|e| u.err(e))?;
    // The tiles: nationally every province; otherwise only the account's own province's figure.
    let own = u.account.scope.clone().unwrap_or_default();
    let mut tiles: BTreeMap<String, Node> = BTreeMap::new();
    if own == NATIONAL {
        let nat = if matches!(s.scope(), Scope::National) {
            tree.clone()
        } else {
            views::tree(&st.db, &scoped(&u.account, &Scope::National).map_err(|e| u.err(e.into()))?, &p)
                .await
                .map_err(|e| u.err(e))?
        };
        for n in nat.children {
            tiles.insert(n.code.clone(), n);
        }
    } else if let Some(prov) = own.get(..2).map(|p| format!("{p}0000")) {
        // A city account may not read its province: its map stays grey, its table shows its city.
        if let Ok(ps) = scoped(&u.account, &Scope::region(&prov).map_err(|e| u.err(e))?) {
            tiles.insert(prov.clone(), views::tree(&st.db, &ps, &p).await.map_err(|e| u.err(e))?.node);
        }
    }
    let own_prefix = if own == NATIONAL { String::new() } else { own.get(..2).unwrap_or("").to_string() };
    let allowed = |code: &str| own == NATIONAL || code.starts_with(&own_prefix) && own.ends_with("0000");
    let link = |code: &str| q.url("/map", &[("scope", code)]);
    let map_svg = tile_map(&tiles, &ind, &allowed, &link);

    let mut t = Table::new(
        "regions",
        format!("{} 下级{}", tree.node.name, tree.children.first().map_or("", |c| level_zh(c.level))),
        &["代码", "名称", "流感病例数", "新增住院", "死亡例数", "门急诊流感样病例占比"],
    );
    let names: BTreeMap<String, String> = if tree.children.iter().any(|c| c.level == "hospital") {
        crate::indicators::fetch::hospitals(&st.db, &s)
            .await
            .map_err(|e| u.err(e))?
            .into_iter()
            .map(|h| (h.code, h.name))
            .collect()
    } else {
        BTreeMap::new()
    };
    for c in &tree.children {
        let name = names.get(&c.code).cloned().unwrap_or_else(|| c.name.clone());
        let href = if c.level == "hospital" { q.url("/series", &[("scope", &c.code)]) } else { link(&c.code) };
        t.push(vec![
            Td::text(c.code.clone()),
            Td::link(name, href),
            Td::num(cell(c.cases)),
            Td::num(cell(c.admissions)),
            Td::num(cell(c.deaths)),
            Td::num(ratio(&c.oe_ratio)),
        ]);
    }
    t.push_class(
        vec![
            Td::text(tree.node.code.clone()),
            Td::text(format!("{} 合计", tree.node.name)),
            Td::num(cell(tree.node.cases)),
            Td::num(cell(tree.node.admissions)),
            Td::num(cell(tree.node.deaths)),
            Td::num(ratio(&tree.node.oe_ratio)),
        ],
        Some("warn"),
    );
    if let Some(r) = maybe_export(&q, std::slice::from_ref(&t), "regions") {
        return r;
    }
    let ind_sel = html! {
        div { label for="f-ind" { "着色指标" }
            select #f-ind name="ind" {
                @for (k, n) in INDICATORS { option value=(k) selected[*k == ind] { (n) } }
            }
        }
    };
    let body = html! {
        h2 { "地区分布 · " (s.scope().name()) }
        (crumbs("/map", &q, s.scope()))
        (bar("/map", &q, &u, Some(&p), &["scope", "from", "to"], ind_sel))
        div.map {
            div.card { h3 { "分省概况 (" (INDICATORS.iter().find(|(k, _)| *k == ind).map_or("", |x| x.1)) ")" } (svg(map_svg))
                p.hint { "点击省份查看下级地区; 灰色为本账户范围以外。" } }
            div.card { (t.html(Some(&q.url("/map", &[])))) }
        }
    };
    Ok(html_ok(page(&u.frame("/map"), "地区分布", body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_are_34_unique() {
        assert_eq!(TILES.len(), 34);
        let mut pos: Vec<(u8, u8)> = TILES.iter().map(|t| (t.2, t.3)).collect();
        pos.sort_unstable();
        pos.dedup();
        assert_eq!(pos.len(), 34);
        for (p, ..) in TILES {
            assert!(crate::regions::name_of(&format!("{p}0000")).is_some(), "{p}");
        }
    }

    #[test]
    fn map_links_only_allowed() {
        let s = tile_map(&BTreeMap::new(), "cases", &|c| c.starts_with("44"), &|c| format!("/map?scope={c}"));
        assert_eq!(s.matches("<a href").count(), 1);
        assert!(s.contains("/map?scope=440000"));
        assert_eq!(s.matches("无权限").count(), 33 * 2);
    }
}
