//! `aural detect --plot`: one PNG per clip — the log-mel spectrogram, the frame probabilities of
//! every class with its threshold, and the detected events, on one time axis.
//!
//! Drawn with `plotters` (bitmap backend, PNG encoder). Text uses plotters' pure-Rust glyph renderer
//! (`ab_glyph`) with a TrueType font found at run time (`AURAL_FONT`, else DejaVu Sans / Liberation
//! Sans / FreeSans in the usual system folders), so the build needs no fontconfig or freetype. With no
//! font the plot is drawn without text and a warning says so.

use std::path::Path;

use anyhow::{anyhow, Result};
use aural::models::sed::{Event, FrameGeometry, FrameScores};
use plotters::prelude::*;

use aural::models::plot::{font_ready, FONT};

/// A perceptually ordered colormap (dark blue → green → yellow), t in [0, 1].
fn heat(t: f32) -> RGBColor {
    const STOPS: [(f32, f32, f32); 5] = [(0.267, 0.005, 0.329), (0.229, 0.322, 0.546), (0.128, 0.567, 0.551), (0.369, 0.789, 0.383), (0.993, 0.906, 0.144)];
    let t = t.clamp(0.0, 1.0) * 4.0;
    let i = (t as usize).min(3);
    let f = t - i as f32;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let c = |x: f32, y: f32| ((x + (y - x) * f) * 255.0).round() as u8;
    RGBColor(c(a.0, b.0), c(a.1, b.1), c(a.2, b.2))
}

pub struct PlotInput<'a> {
    pub title: &'a str,
    /// Raw log-mel (frames × mel), 10 ms frames.
    pub fbank: &'a [f32],
    pub mel: usize,
    pub strong: &'a FrameScores,
    pub geometry: FrameGeometry,
    pub labels: &'a [String],
    pub thresholds: &'a [f32],
    pub events: &'a [Event],
    pub duration_s: f64,
}

pub fn plot(path: &Path, p: &PlotInput) -> Result<()> {
    let text = font_ready();
    let k = p.labels.len();
    let (w, left, right) = (1400u32, 190i32, 20i32);
    let (spec_h, prob_h, row_h, axis_h, top) = (260i32, 220i32, 22i32, 36i32, if text { 34 } else { 10 });
    let ev_h = row_h * k as i32;
    let h = (top + spec_h + 10 + prob_h + 10 + ev_h + axis_h) as u32;
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    let e = |e: DrawingAreaErrorKind<_>| anyhow!("plot {}: {e}", path.display());
    root.fill(&WHITE).map_err(e)?;
    let pw = w as i32 - left - right;
    let frames = p.fbank.len() / p.mel.max(1);
    let t_end = p.duration_s.max(1e-3);
    let x_of = |t: f64| left + ((t / t_end) * pw as f64).round() as i32;
    let style = |size: u32| TextStyle::from((FONT, size).into_font()).color(&BLACK);
    if text {
        root.draw_text(p.title, &style(18), (left, 8)).map_err(e)?;
    }

    // Spectrogram: column → fbank frame (10 ms), row → mel bin (low at the bottom).
    let y0 = top;
    if frames > 0 {
        let (lo, hi) = p.fbank.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let span = (hi - lo).max(1e-6);
        for px in 0..pw {
            let t = (px as f64 + 0.5) / pw as f64 * t_end;
            let fi = (t / 0.01) as usize;
            if fi >= frames {
                root.draw(&Rectangle::new([(left + px, y0), (left + px + 1, y0 + spec_h)], RGBColor(245, 245, 245).filled())).map_err(e)?;
                continue;
            }
            for py in 0..spec_h {
                let m = ((spec_h - 1 - py) as usize * p.mel) / spec_h as usize;
                let v = (p.fbank[fi * p.mel + m] - lo) / span;
                root.draw_pixel((left + px, y0 + py), &heat(v)).map_err(e)?;
            }
        }
    }
    root.draw(&Rectangle::new([(left, y0), (left + pw, y0 + spec_h)], BLACK.stroke_width(1))).map_err(e)?;
    if text {
        root.draw_text("log-mel", &style(14), (10, y0 + spec_h / 2)).map_err(e)?;
    }

    // Frame probabilities, one line per class, thresholds dashed.
    let y1 = y0 + spec_h + 10;
    let y_of = |v: f32| y1 + prob_h - (v.clamp(0.0, 1.0) * prob_h as f32).round() as i32;
    root.draw(&Rectangle::new([(left, y1), (left + pw, y1 + prob_h)], BLACK.stroke_width(1))).map_err(e)?;
    for c in 0..k {
        let color = Palette99::pick(c).to_rgba();
        let pts: Vec<(i32, i32)> = (0..p.strong.frames).map(|f| (x_of(p.geometry.time(f) + p.geometry.hop_s / 2.0), y_of(p.strong.get(f, c)))).collect();
        root.draw(&PathElement::new(pts, color.stroke_width(2))).map_err(e)?;
        let ty = y_of(p.thresholds[c]);
        let mut x = left;
        while x < left + pw {
            root.draw(&PathElement::new(vec![(x, ty), ((x + 6).min(left + pw), ty)], color.mix(0.6).stroke_width(1))).map_err(e)?;
            x += 12;
        }
    }
    if text {
        root.draw_text("probability", &style(14), (10, y1 + prob_h / 2)).map_err(e)?;
        root.draw_text("1", &style(12), (left - 14, y1)).map_err(e)?;
        root.draw_text("0", &style(12), (left - 14, y1 + prob_h - 12)).map_err(e)?;
    }

    // Events: one row per class.
    let y2 = y1 + prob_h + 10;
    for (c, label) in p.labels.iter().enumerate() {
        let ry = y2 + c as i32 * row_h;
        let color = Palette99::pick(c).to_rgba();
        root.draw(&Rectangle::new([(left, ry), (left + pw, ry + row_h)], RGBColor(235, 235, 235).filled())).map_err(e)?;
        for ev in p.events.iter().filter(|ev| ev.event_label == *label) {
            root.draw(&Rectangle::new([(x_of(ev.onset), ry + 3), (x_of(ev.offset).max(x_of(ev.onset) + 1), ry + row_h - 3)], color.filled())).map_err(e)?;
        }
        if text {
            root.draw_text(label, &style(13).color(&color), (6, ry + 4)).map_err(e)?;
        }
    }

    // Time axis: a tick every 1, 2, 5, 10, … seconds (about 10 ticks).
    let y3 = y2 + ev_h;
    let step = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0].into_iter().find(|s| t_end / s <= 12.0).unwrap_or(1200.0);
    let mut t = 0.0;
    while t <= t_end + 1e-9 {
        let x = x_of(t);
        root.draw(&PathElement::new(vec![(x, y3), (x, y3 + 5)], BLACK.stroke_width(1))).map_err(e)?;
        if text {
            root.draw_text(&format!("{}", (t * 10.0).round() / 10.0), &style(12), (x - 8, y3 + 8)).map_err(e)?;
        }
        t += step;
    }
    if text {
        root.draw_text("seconds", &style(12), (left + pw - 50, y3 + 20)).map_err(e)?;
    }
    root.present().map_err(|err| anyhow!("writing {}: {err}", path.display()))?;
    Ok(())
}

/// `aural evaluate --plot`: the effective PSD-ROC of PSDS1 and PSDS2 (thick) over their classes'
/// single-class ROCs (thin), eTPR against eFPR per hour, each step curve up to its max eFPR.
pub fn psd_roc(path: &Path, r: &aural::models::sed::metrics::report::Report) -> Result<()> {
    let text = font_ready();
    let (w, h) = (1300u32, 560u32);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    let e = |e: DrawingAreaErrorKind<_>| anyhow!("plot {}: {e}", path.display());
    root.fill(&WHITE).map_err(e)?;
    let style = |size: u32| TextStyle::from((FONT, size).into_font()).color(&BLACK);
    let panels = [("PSDS1", &r.psds1), ("PSDS2", &r.psds2)];
    let pw = (w as i32 - 60) / 2 - 40;
    for (i, (name, res)) in panels.iter().enumerate() {
        let Some(res) = res else { continue };
        let (x0, y0, ph) = (60 + i as i32 * (pw + 60), 40, h as i32 - 100);
        let max_x = res.roc.last().map_or(1.0, |p| p.0).max(1e-9);
        let px = |x: f64| x0 + ((x / max_x).clamp(0.0, 1.0) * pw as f64).round() as i32;
        let py = |y: f64| y0 + ph - ((y.clamp(0.0, 1.0)) * ph as f64).round() as i32;
        root.draw(&Rectangle::new([(x0, y0), (x0 + pw, y0 + ph)], BLACK.stroke_width(1))).map_err(e)?;
        let stairs = |pts: &[(f64, f64)]| -> Vec<(i32, i32)> {
            let mut v = Vec::with_capacity(2 * pts.len() + 1);
            let mut last_y = 0.0;
            for &(x, y) in pts {
                v.push((px(x), py(last_y)));
                v.push((px(x), py(y)));
                last_y = y;
            }
            v.push((px(max_x), py(last_y)));
            v
        };
        for (c, roc) in res.class_rocs.iter().enumerate() {
            let color = Palette99::pick(c).to_rgba().mix(0.5);
            root.draw(&PathElement::new(stairs(roc), color.stroke_width(1))).map_err(e)?;
            if text {
                if let Some(label) = r.psds_classes.get(c) {
                    root.draw_text(
                        label,
                        &style(12).color(&Palette99::pick(c).to_rgba()),
                        (x0 + pw - 170, y0 + ph - 16 * (res.class_rocs.len() - c) as i32 - 4),
                    )
                    .map_err(e)?;
                }
            }
        }
        root.draw(&PathElement::new(stairs(&res.roc), BLACK.stroke_width(3))).map_err(e)?;
        if text {
            root.draw_text(&format!("{name} = {:.4}   (effective PSD-ROC, thick; classes, thin)", res.psds), &style(15), (x0, 12)).map_err(e)?;
            for k in 0..=5 {
                let (fx, fy) = (k as f64 / 5.0, k as f64 / 5.0);
                root.draw_text(&format!("{:.0}", fx * max_x), &style(12), (px(fx * max_x) - 8, y0 + ph + 6)).map_err(e)?;
                root.draw_text(&format!("{fy:.1}"), &style(12), (x0 - 28, py(fy) - 6)).map_err(e)?;
            }
            root.draw_text("eFPR per hour", &style(13), (x0 + pw / 2 - 40, y0 + ph + 26)).map_err(e)?;
        }
    }
    root.present().map_err(|err| anyhow!("writing {}: {err}", path.display()))?;
    Ok(())
}
