//! One self-contained HTML page: summary, chart of the tree totals, chart of the largest
//! processes, and a table of every process. No network access: styles, the SVG charts and a small
//! hover script are inline, and the page reads well with scripts off.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::chart::{Chart, PALETTE, Series, escape, title, total_series};
use super::json::push_str_value;
use crate::record::Recording;
use crate::size::format_size;

/// How many processes get their own line in the per-process chart.
const TOP_PROCESSES: usize = 8;
/// Rows of the process table; the rest are summarised in one line.
const MAX_ROWS: usize = 500;
/// Points embedded for the hover read-out.
const MAX_HOVER_POINTS: usize = 4000;

/// Writes `recording` as a self-contained HTML page.
///
/// # Errors
/// Any error of the writer.
pub fn write_html(recording: &Recording, mut out: impl Write) -> io::Result<()> {
    let r = recording;
    let heading = title(r);
    let peaks = r.peaks();
    let mut s = String::with_capacity(64 * 1024);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>memlens monitor</h1>\n",
        escape(&heading)
    );
    let _ = writeln!(
        s,
        "<p class=\"cmd\"><code>{}</code></p>",
        escape(&r.command.join(" "))
    );

    // Summary.
    s.push_str("<table class=\"summary\">\n");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(s, "<tr><th>{k}</th><td>{v}</td></tr>");
    };
    match r.peak_sample() {
        Some(p) => row(
            "peak RSS",
            format!(
                "{} at {:.1} s ({} processes)",
                format_size(p.rss),
                p.t,
                p.processes
            ),
        ),
        None => row("peak RSS", "no samples were taken".to_owned()),
    }
    if r.has_pss() {
        row("peak PSS", format_size(peaks.pss));
        row("peak USS", format_size(peaks.uss));
    } else {
        row("PSS / USS", "not readable (see warnings)".to_owned());
    }
    row("peak swap", format_size(peaks.swap));
    if let Some(exit) = &r.exit {
        row("kernel peak RSS of the command", format_size(exit.max_rss));
        row("exit status", exit.status().to_string());
    }
    row(
        "duration",
        format!(
            "{:.1} s, {} samples every {} s, stopped: {}",
            r.duration_s,
            r.samples.len(),
            r.interval_s,
            r.stop.as_str()
        ),
    );
    row("processes seen", r.processes.len().to_string());
    if let Some(th) = &r.threshold {
        let v = match th.first_crossed {
            Some(t) => format!(
                "<span class=\"bad\">{} exceeded at {t:.1} s ({} samples above)</span>",
                format_size(th.bytes),
                th.samples_above
            ),
            None => format!("{} not reached", format_size(th.bytes)),
        };
        row("threshold", v);
    }
    if let Some(err) = &r.error {
        row(
            "error",
            format!("<span class=\"bad\">{}</span>", escape(err)),
        );
    }
    s.push_str("</table>\n");
    for w in &r.warnings {
        let _ = writeln!(s, "<p class=\"warn\">{}</p>", escape(w));
    }

    // Charts.
    let totals = total_series(r);
    let chart = Chart {
        title: &heading,
        series: &totals,
        threshold: r.threshold.map(|t| t.bytes),
        mark_peak: true,
        standalone: false,
        id: "totals",
    };
    s.push_str("<h2>Tree totals</h2>\n<div class=\"chart\">\n");
    s.push_str(&chart.render());
    s.push_str("<div id=\"tip\" hidden></div></div>\n");

    let mut order: Vec<usize> = (0..r.processes.len()).collect();
    order.sort_by(|&a, &b| {
        r.processes[b]
            .peak
            .rss
            .cmp(&r.processes[a].peak.rss)
            .then(a.cmp(&b))
    });
    if r.processes.len() > 1 {
        let per_process: Vec<Series> = order
            .iter()
            .take(TOP_PROCESSES)
            .enumerate()
            .map(|(i, &p)| {
                let p = &r.processes[p];
                let name = p
                    .command
                    .first()
                    .map_or("", |c| c.rsplit('/').next().unwrap_or(c));
                Series {
                    name: format!("{} {}", p.pid, name),
                    color: PALETTE[i % PALETTE.len()],
                    dashed: false,
                    points: with_gaps(p, r.interval_s),
                }
            })
            .collect();
        let chart = Chart {
            title: "RSS of the largest processes",
            series: &per_process,
            threshold: None,
            mark_peak: false,
            standalone: false,
            id: "processes-chart",
        };
        s.push_str("<h2>Largest processes</h2>\n<div class=\"chart\">\n");
        s.push_str(&chart.render());
        s.push_str("</div>\n");
    }

    // Process table.
    s.push_str(
        "<h2>Processes</h2>\n<table class=\"procs\">\n<thead><tr><th>pid</th><th>ppid</th>\
         <th>command</th><th>seen (s)</th><th>peak RSS</th><th>peak PSS</th><th>peak USS</th>\
         <th>peak swap</th><th>kernel peak RSS</th></tr></thead>\n<tbody>\n",
    );
    for &i in order.iter().take(MAX_ROWS) {
        let p = &r.processes[i];
        let known = p.samples.iter().any(|x| x.pss.is_some());
        let opt = |v: u64| {
            if known {
                format_size(v)
            } else {
                "–".to_owned()
            }
        };
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td class=\"c\"><code>{}</code></td><td>{:.1} – {:.1}{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            p.pid,
            p.ppid,
            escape(&p.command.join(" ")),
            p.first_seen,
            p.last_seen,
            if p.exited { " (exited)" } else { "" },
            format_size(p.peak.rss),
            opt(p.peak.pss),
            opt(p.peak.uss),
            format_size(p.peak.swap),
            p.kernel_peak_rss.map_or("–".to_owned(), format_size)
        );
    }
    if r.processes.len() > MAX_ROWS {
        let _ = writeln!(
            s,
            "<tr><td colspan=\"9\">… and {} smaller processes (all are in the JSON output)</td></tr>",
            r.processes.len() - MAX_ROWS
        );
    }
    s.push_str("</tbody></table>\n");

    // Data for the hover read-out, thinned by stride.
    let stride = r.samples.len().div_ceil(MAX_HOVER_POINTS).max(1);
    s.push_str("<script type=\"application/json\" id=\"data\">{\"t\":[");
    let picked: Vec<_> = r.samples.iter().step_by(stride).collect();
    join(&mut s, picked.iter().map(|x| format!("{}", x.t)));
    s.push_str("],\"rss\":[");
    join(&mut s, picked.iter().map(|x| x.rss.to_string()));
    s.push_str("],\"pss\":[");
    join(
        &mut s,
        picked
            .iter()
            .map(|x| x.pss.map_or("null".into(), |v| v.to_string())),
    );
    s.push_str("],\"uss\":[");
    join(
        &mut s,
        picked
            .iter()
            .map(|x| x.uss.map_or("null".into(), |v| v.to_string())),
    );
    s.push_str("],\"n\":[");
    join(&mut s, picked.iter().map(|x| x.processes.to_string()));
    s.push_str("],\"title\":");
    push_str_value(&mut s, &heading);
    s.push_str("}</script>\n<script>");
    s.push_str(SCRIPT);
    s.push_str("</script>\n<footer>Generated by memlens monitor. Sizes use binary units (1 MiB = 1,048,576 bytes).</footer>\n</body>\n</html>\n");
    out.write_all(s.as_bytes())?;
    out.flush()
}

/// A process's RSS over time, with a break wherever it was not measured for more than two
/// intervals (before it started, after it ended).
fn with_gaps(p: &crate::record::ProcessRecord, interval: f64) -> Vec<(f64, Option<u64>)> {
    let mut points = Vec::with_capacity(p.samples.len() + 2);
    let mut last: Option<f64> = None;
    for x in &p.samples {
        if last.is_some_and(|l| x.t - l > interval * 2.5) {
            points.push((x.t, None));
        }
        points.push((x.t, Some(x.rss)));
        last = Some(x.t);
    }
    points
}

fn join(s: &mut String, items: impl Iterator<Item = String>) {
    for (i, item) in items.enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&item);
    }
}

const STYLE: &str = "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1040px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}\
.cmd code{background:#f3f3f3;padding:2px 6px;border-radius:4px;word-break:break-all}\
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 10px;text-align:left;vertical-align:top}\
.summary th{color:#555;font-weight:600}.procs thead th{border-bottom:1px solid #ccc}\
.procs td{border-bottom:1px solid #eee}.procs td.c{max-width:460px;word-break:break-all}\
.bad{color:#c62828;font-weight:600}.warn{color:#8a6d00;background:#fff8e1;padding:4px 8px}\
.chart{position:relative}svg{max-width:100%;height:auto}\
#tip{position:absolute;top:52px;background:rgba(255,255,255,.95);border:1px solid #ccc;padding:4px 8px;font-size:12px;pointer-events:none;white-space:pre}\
footer{margin-top:28px;color:#888;font-size:12px}";

/// Shows the values at the pointer over the totals chart; the page works without it.
const SCRIPT: &str = r##"(function(){
var d=JSON.parse(document.getElementById("data").textContent),svg=document.getElementById("totals"),tip=document.getElementById("tip");
if(!svg||!d.t.length)return;
var left=+svg.dataset.left,w=+svg.dataset.width,tmax=+svg.dataset.tmax,ns="http://www.w3.org/2000/svg";
var line=document.createElementNS(ns,"line");line.setAttribute("stroke","#999");line.setAttribute("y1","52");line.setAttribute("y2","372");line.style.display="none";svg.appendChild(line);
function fmt(b){if(b==null)return"–";var u=["B","KiB","MiB","GiB","TiB"],i=0;while(b>=1024&&i<4){b/=1024;i++;}return(i?b.toFixed(1):b)+" "+u[i];}
svg.addEventListener("mousemove",function(e){var r=svg.getBoundingClientRect(),x=(e.clientX-r.left)*960/r.width,t=(x-left)/w*tmax;
var lo=0,hi=d.t.length-1;while(lo<hi){var m=(lo+hi)>>1;if(d.t[m]<t)lo=m+1;else hi=m;}if(lo>0&&Math.abs(d.t[lo-1]-t)<Math.abs(d.t[lo]-t))lo--;
var px=left+d.t[lo]/tmax*w;line.setAttribute("x1",px);line.setAttribute("x2",px);line.style.display="";
tip.textContent="t "+d.t[lo].toFixed(2)+" s\nRSS "+fmt(d.rss[lo])+"\nPSS "+fmt(d.pss[lo])+"\nUSS "+fmt(d.uss[lo])+"\nprocesses "+d.n[lo];
tip.hidden=false;tip.style.left=Math.min(e.clientX-r.left+14,r.width-160)+"px";});
svg.addEventListener("mouseleave",function(){tip.hidden=true;line.style.display="none";});
})();"##;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::fixture;

    fn render() -> String {
        let mut out = Vec::new();
        write_html(&fixture(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn is_self_contained() {
        let html = render();
        assert!(html.starts_with("<!DOCTYPE html>"));
        for remote in ["src=\"http", "href=\"http", "@import", "url(", "<link"] {
            assert!(!html.contains(remote), "found {remote}");
        }
        assert!(html.contains("<svg id=\"totals\""));
        assert!(html.contains("<svg id=\"processes-chart\""));
        assert!(html.contains("peak RSS"));
        assert!(html.contains("3.0 MiB at 0.2 s"));
    }

    #[test]
    fn escapes_the_command_everywhere() {
        let html = render();
        // The fixture's command holds `</script><` : never raw in the page.
        assert_eq!(html.matches("</script>").count(), 2, "{html}");
        assert!(html.contains("print(&quot;&lt;/script&gt;&lt;&quot;)"));
    }
}
