//! Small server-side SVG charts for the web pages (no script, no CDN): line
//! series, stacked bars, interval bands, horizontal level bands and reference
//! lines, with "nice" axis ticks, a legend and Chinese labels. Every text is
//! XML-escaped; a missing value (`None`) breaks a line and skips a bar.
//!
//! ```text
//!  Chart { x_labels, bars (stacked), bands (lower…upper), lines, hbands, hlines, split }
//!     ─▶ y range (0 … max of everything drawn) ─▶ nice_ticks ─▶ <svg viewBox> with
//!        legend · grid · hbands · bars · bands · lines · hlines · split marker · axes
//! ```

use std::fmt::Write;

/// The default palette (colour-blind friendly, Okabe–Ito order).
pub const PALETTE: &[&str] = &["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"];

const FONT: &str = "'Noto Sans CJK SC','Source Han Sans SC','WenQuanYi Micro Hei','Microsoft YaHei',sans-serif";

/// One named series of values, one per x label.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
    /// A CSS colour; `None` takes the palette's next.
    pub color: Option<String>,
    /// Dashed line (e.g. incomplete or forecast data).
    pub dashed: bool,
}

impl Series {
    /// A series with the palette colour.
    pub fn new(name: impl Into<String>, values: Vec<Option<f64>>) -> Series {
        Series { name: name.into(), values, color: None, dashed: false }
    }

    /// Sets the colour.
    pub fn color(mut self, c: impl Into<String>) -> Series {
        self.color = Some(c.into());
        self
    }

    /// Draws it dashed.
    pub fn dashed(mut self) -> Series {
        self.dashed = true;
        self
    }
}

/// An interval (lower … upper per x) drawn as a shaded area.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Band {
    pub name: String,
    pub lower: Vec<Option<f64>>,
    pub upper: Vec<Option<f64>>,
    pub color: String,
    pub opacity: f64,
}

/// A horizontal band across the plot (e.g. an intensity level from `from` to `to`).
#[derive(Clone, Debug, PartialEq)]
pub struct HBand {
    pub name: String,
    pub from: f64,
    pub to: f64,
    pub color: String,
}

/// A horizontal reference line (e.g. the epidemic threshold).
#[derive(Clone, Debug, PartialEq)]
pub struct HLine {
    pub name: String,
    pub value: f64,
    pub color: String,
}

/// A chart; fill what it shows and call [`Chart::render`].
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub title: String,
    pub y_label: String,
    pub x_labels: Vec<String>,
    pub width: u32,
    pub height: u32,
    /// Values are fractions shown as percent on the axis.
    pub percent: bool,
    pub bars: Vec<Series>,
    pub bands: Vec<Band>,
    pub lines: Vec<Series>,
    pub hbands: Vec<HBand>,
    pub hlines: Vec<HLine>,
    /// From this x index on the data are incomplete: a shaded background and a label.
    pub split: Option<(usize, String)>,
}

impl Default for Chart {
    fn default() -> Chart {
        Chart {
            title: String::new(),
            y_label: String::new(),
            x_labels: Vec::new(),
            width: 760,
            height: 300,
            percent: false,
            bars: Vec::new(),
            bands: Vec::new(),
            lines: Vec::new(),
            hbands: Vec::new(),
            hlines: Vec::new(),
            split: None,
        }
    }
}

/// The palette's `k`-th colour (cycling).
pub fn palette(k: usize) -> &'static str {
    PALETTE.get(k % PALETTE.len()).copied().unwrap_or("#0072B2")
}

/// XML-escapes text for element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Colour as given if it is a plain CSS colour (`#hex` or letters), else grey.
fn color(c: &str) -> &str {
    let ok = (c.starts_with('#') && c.len() <= 9 && c.chars().skip(1).all(|x| x.is_ascii_hexdigit()))
        || (!c.is_empty() && c.len() <= 20 && c.chars().all(|x| x.is_ascii_alphabetic()));
    if ok { c } else { "#888888" }
}

/// About `n` round ticks covering `0 ..= max` (1, 2, 2.5, 5 × 10^k steps).
pub fn nice_ticks(max: f64, n: usize) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
    let raw = max / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let count = (max / step).ceil() as usize;
    (0..=count).map(|i| i as f64 * step).collect()
}

/// A tick label: percent, or a number with 万 for large values.
pub fn fmt_tick(v: f64, percent: bool) -> String {
    if percent {
        let p = v * 100.0;
        return if (p - p.round()).abs() < 1e-9 { format!("{p:.0}%") } else { format!("{p:.1}%") };
    }
    if v.abs() >= 10_000.0 {
        let w = v / 10_000.0;
        return if (w - w.round()).abs() < 1e-9 { format!("{w:.0}万") } else { format!("{w:.1}万") };
    }
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        let t = format!("{v:.3}");
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

impl Chart {
    fn max_value(&self) -> f64 {
        let n = self.x_labels.len();
        let mut m: f64 = 0.0;
        for i in 0..n {
            let stack: f64 = self.bars.iter().filter_map(|s| s.values.get(i).copied().flatten()).sum();
            m = m.max(stack);
        }
        for s in &self.lines {
            m = s.values.iter().flatten().fold(m, |a, b| a.max(*b));
        }
        for b in &self.bands {
            m = b.upper.iter().flatten().fold(m, |a, x| a.max(*x));
        }
        for h in &self.hlines {
            m = m.max(h.value);
        }
        // Level bands show where the data are; they stretch the axis by at most a quarter.
        let cap = if m > 0.0 { m * 1.25 } else { f64::INFINITY };
        for h in &self.hbands {
            let top = if h.to.is_finite() { h.to } else { h.from * 1.15 };
            m = m.max(top.min(cap));
        }
        m
    }

    /// The chart as an `<svg>` element.
    pub fn render(&self) -> String {
        let (w, h) = (f64::from(self.width.max(200)), f64::from(self.height.max(120)));
        let legend_items = self.legend();
        let per_row = ((w - 60.0) / 150.0).floor().max(1.0) as usize;
        let legend_rows = legend_items.len().div_ceil(per_row);
        let top = 14.0 + if self.title.is_empty() { 0.0 } else { 20.0 } + legend_rows as f64 * 18.0;
        let (left, right, bottom) = (58.0, 16.0, 44.0);
        let (pw, ph) = (w - left - right, (h - top - bottom).max(40.0));
        let n = self.x_labels.len().max(1);
        let slot = pw / n as f64;
        let ticks = nice_ticks(self.max_value(), 5);
        let ymax = ticks.last().copied().unwrap_or(1.0).max(f64::MIN_POSITIVE);
        let y = |v: f64| top + ph - (v.clamp(0.0, ymax) / ymax) * ph;
        let x = |i: usize| left + slot * (i as f64 + 0.5);
        let mut o = String::new();
        let _ = write!(
            o,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{t}" font-family="{FONT}" font-size="12">"#,
            t = esc(&self.title)
        );
        let _ = write!(o, r##"<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>"##);
        if !self.title.is_empty() {
            let _ = write!(
                o,
                r##"<text x="{left}" y="18" font-size="14" font-weight="bold" fill="#1f2d3d">{}</text>"##,
                esc(&self.title)
            );
        }
        // Legend.
        let ly0 = if self.title.is_empty() { 16.0 } else { 36.0 };
        for (k, (name, col, kind)) in legend_items.iter().enumerate() {
            let (lx, ly) = (left + (k % per_row) as f64 * 150.0, ly0 + (k / per_row) as f64 * 18.0);
            match kind {
                Mark::Line(dashed) => {
                    let d = if *dashed { r#" stroke-dasharray="5,3""# } else { "" };
                    let _ = write!(
                        o,
                        r#"<line x1="{lx}" y1="{}" x2="{}" y2="{}" stroke="{col}" stroke-width="2.5"{d}/>"#,
                        ly - 4.0,
                        lx + 18.0,
                        ly - 4.0
                    );
                }
                Mark::Box(op) => {
                    let _ = write!(
                        o,
                        r#"<rect x="{lx}" y="{}" width="18" height="10" fill="{col}" fill-opacity="{op}"/>"#,
                        ly - 9.0
                    );
                }
            }
            let _ = write!(o, r##"<text x="{}" y="{ly}" fill="#333">{}</text>"##, lx + 24.0, esc(name));
        }
        // Horizontal bands, then grid.
        for b in &self.hbands {
            let (y0, y1) = (y(b.from), y(if b.to.is_finite() { b.to } else { ymax }));
            if y0 > y1 {
                let _ = write!(
                    o,
                    r#"<rect x="{left}" y="{y1:.1}" width="{pw:.1}" height="{:.1}" fill="{}" fill-opacity="0.22"/>"#,
                    y0 - y1,
                    color(&b.color)
                );
            }
        }
        if let Some((i, label)) = &self.split
            && *i < n
        {
            let sx = left + slot * *i as f64;
            let _ = write!(
                o,
                r##"<rect x="{sx:.1}" y="{top}" width="{:.1}" height="{ph:.1}" fill="#f3f3f3"/><line x1="{sx:.1}" y1="{top}" x2="{sx:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="3,3"/><text x="{:.1}" y="{:.1}" fill="#666" font-size="11">{}</text>"##,
                left + pw - sx,
                top + ph,
                sx + 4.0,
                top + 12.0,
                esc(label)
            );
        }
        for t in &ticks {
            let ty = y(*t);
            let _ = write!(
                o,
                r##"<line x1="{left}" y1="{ty:.1}" x2="{:.1}" y2="{ty:.1}" stroke="#e5e7eb"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
                left + pw,
                left - 6.0,
                ty + 4.0,
                fmt_tick(*t, self.percent)
            );
        }
        // Stacked bars.
        let bw = (slot * 0.7).max(1.0);
        for i in 0..n {
            let mut acc = 0.0;
            for (k, s) in self.bars.iter().enumerate() {
                let Some(v) = s.values.get(i).copied().flatten() else { continue };
                if v <= 0.0 {
                    continue;
                }
                let (y0, y1) = (y(acc), y(acc + v));
                acc += v;
                let c = s.color.as_deref().map_or(palette(k), color);
                let _ = write!(
                    o,
                    r#"<rect x="{:.1}" y="{y1:.1}" width="{bw:.1}" height="{:.1}" fill="{c}"><title>{} {}: {}</title></rect>"#,
                    x(i) - bw / 2.0,
                    (y0 - y1).max(0.0),
                    esc(self.x_labels.get(i).map_or("", |s| s.as_str())),
                    esc(&s.name),
                    fmt_value(v, self.percent)
                );
            }
        }
        // Bands.
        for b in &self.bands {
            for seg in segments(n, |i| Some((b.lower.get(i).copied().flatten()?, b.upper.get(i).copied().flatten()?))) {
                let mut pts: Vec<String> = seg.iter().map(|(i, (_, u))| format!("{:.1},{:.1}", x(*i), y(*u))).collect();
                pts.extend(seg.iter().rev().map(|(i, (l, _))| format!("{:.1},{:.1}", x(*i), y(*l))));
                let _ = write!(
                    o,
                    r#"<polygon points="{}" fill="{}" fill-opacity="{}" stroke="none"/>"#,
                    pts.join(" "),
                    color(&b.color),
                    b.opacity.clamp(0.05, 1.0)
                );
            }
        }
        // Lines.
        let offset = self.bars.len();
        for (k, s) in self.lines.iter().enumerate() {
            let c = s.color.as_deref().map_or(palette(k + offset), color);
            let d = if s.dashed { r#" stroke-dasharray="6,4""# } else { "" };
            for seg in segments(n, |i| s.values.get(i).copied().flatten().filter(|v| v.is_finite())) {
                let pts: Vec<String> = seg.iter().map(|(i, v)| format!("{:.1},{:.1}", x(*i), y(*v))).collect();
                let _ = write!(
                    o,
                    r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"{d} stroke-linejoin="round"/>"#,
                    pts.join(" ")
                );
                if seg.len() == 1 || n <= 60 {
                    for (i, v) in &seg {
                        let _ = write!(
                            o,
                            r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{c}"><title>{} {}: {}</title></circle>"#,
                            x(*i),
                            y(*v),
                            esc(self.x_labels.get(*i).map_or("", |s| s.as_str())),
                            esc(&s.name),
                            fmt_value(*v, self.percent)
                        );
                    }
                }
            }
        }
        for hl in &self.hlines {
            let hy = y(hl.value);
            let _ = write!(
                o,
                r#"<line x1="{left}" y1="{hy:.1}" x2="{:.1}" y2="{hy:.1}" stroke="{}" stroke-width="1.5" stroke-dasharray="8,4"/>"#,
                left + pw,
                color(&hl.color)
            );
        }
        // Axes and x labels (thinned to about 12).
        let _ = write!(
            o,
            r##"<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#444"/><line x1="{left}" y1="{top}" x2="{left}" y2="{:.1}" stroke="#444"/>"##,
            top + ph,
            left + pw,
            top + ph,
            top + ph
        );
        let every = n.div_ceil(12).max(1);
        for (i, l) in self.x_labels.iter().enumerate() {
            if i % every == 0 {
                let _ = write!(
                    o,
                    r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555" font-size="11">{}</text>"##,
                    x(i),
                    top + ph + 16.0,
                    esc(l)
                );
            }
        }
        if !self.y_label.is_empty() {
            let _ = write!(
                o,
                r##"<text transform="translate(14,{:.1}) rotate(-90)" text-anchor="middle" fill="#555">{}</text>"##,
                top + ph / 2.0,
                esc(&self.y_label)
            );
        }
        o.push_str("</svg>");
        o
    }

    fn legend(&self) -> Vec<(String, String, Mark)> {
        let mut v = Vec::new();
        for b in &self.hbands {
            v.push((b.name.clone(), color(&b.color).to_string(), Mark::Box(0.35)));
        }
        for (k, s) in self.bars.iter().enumerate() {
            let c = s.color.as_deref().map_or(palette(k), color);
            v.push((s.name.clone(), c.to_string(), Mark::Box(1.0)));
        }
        for b in &self.bands {
            v.push((b.name.clone(), color(&b.color).to_string(), Mark::Box(b.opacity.clamp(0.05, 1.0))));
        }
        let offset = self.bars.len();
        for (k, s) in self.lines.iter().enumerate() {
            let c = s.color.as_deref().map_or(palette(k + offset), color);
            v.push((s.name.clone(), c.to_string(), Mark::Line(s.dashed)));
        }
        for h in &self.hlines {
            v.push((h.name.clone(), color(&h.color).to_string(), Mark::Line(true)));
        }
        v.retain(|(name, _, _)| !name.is_empty());
        v
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mark {
    Line(bool),
    Box(f64),
}

/// A value for a tooltip.
pub fn fmt_value(v: f64, percent: bool) -> String {
    if percent { format!("{:.1}%", v * 100.0) } else { fmt_tick(v, false) }
}

/// Runs of consecutive indices where `f` gives a value.
fn segments<T>(n: usize, f: impl Fn(usize) -> Option<T>) -> Vec<Vec<(usize, T)>> {
    let mut out: Vec<Vec<(usize, T)>> = Vec::new();
    let mut cur: Vec<(usize, T)> = Vec::new();
    for i in 0..n {
        match f(i) {
            Some(v) => cur.push((i, v)),
            _ => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover() {
        assert_eq!(nice_ticks(87.0, 5), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(nice_ticks(0.0, 5), vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        let t = nice_ticks(0.123, 5);
        assert!(*t.last().unwrap() >= 0.123 && t.len() <= 7);
        assert_eq!(nice_ticks(12_500.0, 5).last().copied(), Some(12_500.0));
        assert_eq!(nice_ticks(13_000.0, 5).last().copied(), Some(15_000.0));
        assert_eq!(fmt_tick(0.125, false), "0.125");
        assert_eq!(fmt_tick(25_000.0, false), "2.5万");
        assert_eq!(fmt_tick(0.25, true), "25%");
        assert_eq!(fmt_tick(0.125, true), "12.5%");
        assert_eq!(fmt_tick(f64::NAN, false), "NaN");
    }

    #[test]
    fn escapes_and_draws_every_kind() {
        let c = Chart {
            title: "病例数 <测试>".into(),
            x_labels: (1..=10).map(|w| format!("W{w}")).collect(),
            bars: vec![
                Series::new("门诊", (0..10).map(|i| Some(f64::from(i))).collect()),
                Series::new("急诊", vec![Some(1.0); 10]),
            ],
            lines: vec![Series::new("合计", (0..10).map(|i| Some(f64::from(i) + 1.0)).collect()).dashed()],
            bands: vec![Band {
                name: "95% 区间".into(),
                lower: vec![Some(0.0); 10],
                upper: vec![Some(12.0); 10],
                color: "#0072B2".into(),
                opacity: 0.2,
            }],
            hlines: vec![HLine { name: "流行阈值".into(), value: 5.0, color: "red".into() }],
            hbands: vec![HBand { name: "高".into(), from: 8.0, to: 11.0, color: "#ff0000".into() }],
            split: Some((7, "数据不完整".into())),
            ..Chart::default()
        };
        let s = c.render();
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(s.contains("病例数 &lt;测试&gt;"));
        assert!(!s.contains("<测试>"));
        assert_eq!(s.matches("<polyline").count(), 1);
        assert_eq!(s.matches("<polygon").count(), 1);
        assert!(s.contains("stroke-dasharray=\"6,4\""));
        // 9 + 10 bars (the zero of 门诊 at W1 is not drawn).
        assert_eq!(s.matches("<rect x=").count() - 1 - 4 - 1 - 1, 19);
        assert!(s.contains("数据不完整") && s.contains("流行阈值") && s.contains(">高<"));
        // Axis reaches the band's upper 12 → ticks to 12 or beyond.
        assert!(s.contains(">12.5<"), "{s}");
    }

    #[test]
    fn gaps_break_lines_and_bad_colours_are_replaced() {
        let c = Chart {
            x_labels: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            lines: vec![Series::new("x", vec![Some(1.0), None, Some(2.0), Some(3.0)]).color("url(javascript:1)")],
            percent: true,
            ..Chart::default()
        };
        let s = c.render();
        assert_eq!(s.matches("<polyline").count(), 2);
        assert_eq!(s.matches("<circle").count(), 3);
        assert!(!s.contains("javascript"));
        assert!(s.contains("#888888"));
        assert!(s.contains('%'));
        // Empty chart renders without panicking.
        let e = Chart::default().render();
        assert!(e.contains("</svg>"));
    }

    #[test]
    fn segments_split_on_none() {
        let v = [Some(1), None, Some(2), Some(3), None];
        let s = segments(5, |i| v[i]);
        assert_eq!(s, vec![vec![(0, 1)], vec![(2, 2), (3, 3)]]);
    }
}
