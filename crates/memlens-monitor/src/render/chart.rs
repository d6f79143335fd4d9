//! A line chart of memory over time as SVG, shared by `--plot` and the HTML page.

use std::fmt::Write as _;

use crate::record::Recording;
use crate::size::format_size;

/// One line of the chart.
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) color: &'static str,
    pub(crate) dashed: bool,
    /// (seconds, bytes); `None` breaks the line.
    pub(crate) points: Vec<(f64, Option<u64>)>,
}

pub(crate) const WIDTH: f64 = 960.0;
pub(crate) const HEIGHT: f64 = 420.0;
pub(crate) const LEFT: f64 = 84.0;
pub(crate) const RIGHT: f64 = 24.0;
const TOP: f64 = 52.0;
const BOTTOM: f64 = 48.0;

pub(crate) const PALETTE: [&str; 10] = [
    "#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// The tree totals as series: RSS, PSS, USS (when known) and swap (when ever non-zero).
pub(crate) fn total_series(rec: &Recording) -> Vec<Series> {
    let mut series = vec![Series {
        name: "RSS".to_owned(),
        color: PALETTE[0],
        dashed: false,
        points: rec.samples.iter().map(|s| (s.t, Some(s.rss))).collect(),
    }];
    if rec.has_pss() {
        // PSS and USS may be read on some samples only (see `MonitorBuilder::pss_interval`): the
        // line joins the samples that have them.
        series.push(Series {
            name: "PSS".to_owned(),
            color: PALETTE[1],
            dashed: false,
            points: rec
                .samples
                .iter()
                .filter(|s| s.pss.is_some())
                .map(|s| (s.t, s.pss))
                .collect(),
        });
        series.push(Series {
            name: "USS".to_owned(),
            color: PALETTE[2],
            dashed: false,
            points: rec
                .samples
                .iter()
                .filter(|s| s.uss.is_some())
                .map(|s| (s.t, s.uss))
                .collect(),
        });
    }
    if rec.samples.iter().any(|s| s.swap.unwrap_or(0) > 0) {
        series.push(Series {
            name: "swap".to_owned(),
            color: PALETTE[3],
            dashed: true,
            points: rec.samples.iter().map(|s| (s.t, s.swap)).collect(),
        });
    }
    series
}

/// Options of one chart.
pub(crate) struct Chart<'a> {
    pub(crate) title: &'a str,
    pub(crate) series: &'a [Series],
    pub(crate) threshold: Option<u64>,
    /// Mark the highest point of the first series.
    pub(crate) mark_peak: bool,
    /// A standalone file (with the XML namespace and a white background) or an inline element.
    pub(crate) standalone: bool,
    pub(crate) id: &'a str,
}

impl Chart<'_> {
    pub(crate) fn t_max(&self) -> f64 {
        let t = self
            .series
            .iter()
            .flat_map(|s| s.points.last().map(|p| p.0))
            .fold(0.0f64, f64::max);
        if t > 0.0 { t } else { 1.0 }
    }

    pub(crate) fn render(&self) -> String {
        let mut s = String::with_capacity(16 * 1024);
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let t_max = self.t_max();
        let data_max = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().filter_map(|p| p.1))
            .max()
            .unwrap_or(0)
            .max(self.threshold.unwrap_or(0));
        let (y_step, y_max) = nice_bytes_axis(data_max);
        let x = |t: f64| LEFT + t / t_max * plot_w;
        let y = |v: u64| TOP + plot_h - (v as f64 / y_max as f64) * plot_h;

        if self.standalone {
            s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        }
        let _ = writeln!(
            s,
            "<svg {}id=\"{}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
             font-family=\"-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif\" font-size=\"12\" \
             data-left=\"{LEFT}\" data-width=\"{plot_w}\" data-tmax=\"{t_max}\" role=\"img\">",
            if self.standalone {
                "xmlns=\"http://www.w3.org/2000/svg\" "
            } else {
                ""
            },
            escape(self.id)
        );
        let _ = writeln!(s, "<title>{}</title>", escape(self.title));
        if self.standalone {
            s.push_str("<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n");
        }
        let _ = writeln!(
            s,
            "<text x=\"{LEFT}\" y=\"20\" font-size=\"14\" font-weight=\"600\">{}</text>",
            escape(&truncate(&one_line(self.title), 90))
        );

        // Axes and grid.
        s.push_str("<g stroke=\"#e3e3e3\" stroke-width=\"1\">\n");
        let mut v = 0;
        while v <= y_max {
            let _ = writeln!(
                s,
                "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
                LEFT + plot_w,
                y(v),
                y(v)
            );
            v += y_step;
        }
        s.push_str("</g>\n<g fill=\"#555\" text-anchor=\"end\">\n");
        let mut v = 0;
        while v <= y_max {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                LEFT - 6.0,
                y(v) + 4.0,
                axis_size(v)
            );
            v += y_step;
        }
        s.push_str("</g>\n<g fill=\"#555\" text-anchor=\"middle\">\n");
        let t_step = nice_step(t_max / 8.0);
        let mut i = 0u32;
        loop {
            let t = f64::from(i) * t_step;
            if t > t_max * 1.0001 {
                break;
            }
            let _ = writeln!(
                s,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"#bbb\"/><text x=\"{0:.1}\" y=\"{3:.1}\">{4}</text>",
                x(t),
                TOP + plot_h,
                TOP + plot_h + 5.0,
                TOP + plot_h + 19.0,
                axis_time(t, t_step)
            );
            i += 1;
        }
        let _ = writeln!(
            s,
            "</g>\n<line x1=\"{LEFT}\" x2=\"{x1:.1}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\" stroke=\"#888\"/>\n<line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{y0:.1}\" stroke=\"#888\"/>",
            x1 = LEFT + plot_w,
            y0 = TOP + plot_h
        );
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#555\" text-anchor=\"middle\">time (s)</text>",
            LEFT + plot_w / 2.0,
            HEIGHT - 8.0
        );

        if self.series.iter().all(|s| s.points.is_empty()) {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#888\" text-anchor=\"middle\" font-size=\"16\">no samples were taken</text>",
                LEFT + plot_w / 2.0,
                TOP + plot_h / 2.0
            );
        }

        // Threshold.
        if let Some(th) = self.threshold {
            let _ = writeln!(
                s,
                "<line x1=\"{LEFT}\" x2=\"{x1:.1}\" y1=\"{yt:.1}\" y2=\"{yt:.1}\" stroke=\"#d62728\" stroke-dasharray=\"6 4\"/><text x=\"{xl:.1}\" y=\"{yl:.1}\" fill=\"#d62728\" text-anchor=\"end\">threshold {label}</text>",
                x1 = LEFT + plot_w,
                yt = y(th),
                xl = LEFT + plot_w - 4.0,
                yl = y(th) - 5.0,
                label = format_size(th)
            );
        }

        // Lines, thinned to at most two points per horizontal pixel (min and max kept).
        for series in self.series {
            let points = thin(&series.points, t_max, plot_w as usize);
            let mut d = String::with_capacity(points.len() * 14);
            let mut pen_down = false;
            for (t, v) in points {
                match v {
                    Some(v) => {
                        let _ = write!(
                            d,
                            "{}{:.1},{:.1}",
                            if pen_down { 'L' } else { 'M' },
                            x(t),
                            y(v)
                        );
                        pen_down = true;
                    }
                    None => pen_down = false,
                }
            }
            if d.is_empty() {
                continue;
            }
            let _ = writeln!(
                s,
                "<path d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\" stroke-linejoin=\"round\"{}><title>{}</title></path>",
                series.color,
                if series.dashed {
                    " stroke-dasharray=\"5 3\""
                } else {
                    ""
                },
                escape(&series.name)
            );
        }

        // Peak marker.
        if self.mark_peak
            && let Some(first) = self.series.first()
            && let Some((t, v)) = first
                .points
                .iter()
                .filter_map(|&(t, v)| v.map(|v| (t, v)))
                .fold(None, |best: Option<(f64, u64)>, p| match best {
                    Some(b) if b.1 >= p.1 => Some(b),
                    _ => Some(p),
                })
        {
            let anchor = if x(t) > LEFT + plot_w * 0.75 {
                "end"
            } else {
                "start"
            };
            let dx = if anchor == "end" { -8.0 } else { 8.0 };
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" font-weight=\"600\">peak {} {} at {:.1} s</text>",
                x(t),
                y(v),
                first.color,
                x(t) + dx,
                (y(v) - 8.0).max(TOP + 10.0),
                escape(&first.name),
                format_size(v),
                t
            );
        }

        // Legend.
        let mut lx = LEFT + plot_w;
        for series in self.series.iter().rev() {
            let label = truncate(&series.name, 40);
            let w = 24.0 + 7.0 * label.chars().count() as f64;
            lx -= w + 12.0;
            let _ = writeln!(
                s,
                "<g><line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"36\" y2=\"36\" stroke=\"{}\" stroke-width=\"3\"{}/><text x=\"{:.1}\" y=\"40\">{}</text></g>",
                lx,
                lx + 18.0,
                series.color,
                if series.dashed {
                    " stroke-dasharray=\"5 3\""
                } else {
                    ""
                },
                lx + 22.0,
                escape(&label)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// Keeps at most two points (the lowest and the highest, in time order) per pixel column, so
/// peaks survive however long the recording.
fn thin(points: &[(f64, Option<u64>)], t_max: f64, columns: usize) -> Vec<(f64, Option<u64>)> {
    if points.len() <= columns * 2 {
        return points.to_vec();
    }
    let mut out = Vec::with_capacity(columns * 2 + 2);
    let mut i = 0;
    while i < points.len() {
        let column = (points[i].0 / t_max * columns as f64) as usize;
        let mut j = i;
        let (mut lo, mut hi) = (i, i);
        let mut gap = false;
        while j < points.len() && (points[j].0 / t_max * columns as f64) as usize == column {
            match (points[j].1, points[lo].1, points[hi].1) {
                (None, _, _) => gap = true,
                (Some(v), l, h) => {
                    if l.is_none_or(|l| v < l) {
                        lo = j;
                    }
                    if h.is_none_or(|h| v > h) {
                        hi = j;
                    }
                }
            }
            j += 1;
        }
        let (a, b) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        out.push(points[a]);
        if b != a {
            out.push(points[b]);
        }
        if gap {
            out.push((points[j - 1].0, None));
        }
        i = j;
    }
    out
}

/// A step of 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * magnitude >= raw {
            return m * magnitude;
        }
    }
    10.0 * magnitude
}

/// A y axis for bytes: a round step in the unit that suits the maximum, and the top of the axis.
fn nice_bytes_axis(max: u64) -> (u64, u64) {
    let max = max.max(1024);
    let mut unit = 1u64;
    while unit.saturating_mul(1024) <= max {
        unit *= 1024;
    }
    let step_units = nice_step(max as f64 / unit as f64 / 5.0);
    let step = ((step_units * unit as f64) as u64).max(1);
    let top = max.div_ceil(step) * step;
    (step, top.max(step))
}

fn axis_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes == 0 {
        return "0".to_owned();
    }
    let mut unit = 0;
    let mut scale = 1u64;
    while bytes / scale >= 1024 && unit + 1 < UNITS.len() {
        scale *= 1024;
        unit += 1;
    }
    let value = bytes as f64 / scale as f64;
    if value.fract().abs() < 1e-9 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn axis_time(t: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{t:.0}")
    } else if step >= 0.1 {
        format!("{t:.1}")
    } else {
        format!("{t:.2}")
    }
}

/// Folds runs of whitespace (newlines in `python -c` code) into single spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut t: String = text.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// Escapes text for HTML and SVG (element content and quoted attributes).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A title line for a recording: the command it monitored.
pub(crate) fn title(rec: &Recording) -> String {
    let command = rec.command.join(" ");
    match (rec.command.is_empty(), rec.pid) {
        (true, Some(pid)) => format!("memlens monitor: pid {pid}"),
        (true, None) => "memlens monitor".to_owned(),
        (false, _) => format!("memlens monitor: {command}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_use_round_steps() {
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(70.0), 100.0);
        let (step, top) = nice_bytes_axis(314 * 1024 * 1024);
        assert_eq!(step, 100 * 1024 * 1024);
        assert_eq!(top, 400 * 1024 * 1024);
        assert_eq!(axis_size(100 * 1024 * 1024), "100 MiB");
        assert_eq!(axis_size(1536 * 1024 * 1024), "1.5 GiB");
    }

    #[test]
    fn thinning_keeps_the_peak_and_bounds_the_size() {
        let points: Vec<(f64, Option<u64>)> = (0..100_000)
            .map(|i| {
                (
                    i as f64 * 0.01,
                    Some(if i == 54_321 { 999 } else { (i % 7) as u64 }),
                )
            })
            .collect();
        let thinned = thin(&points, 1000.0, 800);
        assert!(thinned.len() <= 1700, "{}", thinned.len());
        assert!(thinned.iter().any(|p| p.1 == Some(999)));
        assert!(thinned.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(escape("a\u{1}b"), "a\u{fffd}b");
    }
}
