//! What `hlynr eval --plots` draws for racing: the track from above with
//! each policy's driven line, and animated GIFs of an episode as the policy
//! saw it (the camera) and from above (a north-up view following the car).

use std::fmt::Write as _;
use std::path::Path;

use hlynr_racing::raster::TrackRaster;
use hlynr_racing::recording::{Recording, top_down};
use hlynr_racing::track::Track;
use hlynr_rl::eval::plot::{LegendEntry, colour, legend_rows, polyline, svg_titled};

/// Side of the top-down GIF (pixels) and its scale (m per pixel).
const TOP_DOWN_PX: usize = 160;
const TOP_DOWN_M_PER_PX: f64 = 0.4;
/// GIF frames keep every second decision: 10 Hz, 10 cs apart.
const GIF_EVERY: usize = 2;
const GIF_DELAY_CS: u16 = 10;

/// The track with the driven lines of `series` (label, recording).
pub fn track_svg(title: &str, track: &Track, series: &[(String, &Recording)]) -> String {
    let (lo, hi) = track.bounds(5.0);
    let (width, height) = (760.0, 640.0);
    let (left, top, right, bottom) = (30.0, 60.0, width - 30.0, height - 50.0);
    let scale = ((right - left) / (hi[0] - lo[0])).min((bottom - top) / (hi[1] - lo[1]));
    let x0 = left + ((right - left) - scale * (hi[0] - lo[0])) / 2.0;
    let y0 = bottom - ((bottom - top) - scale * (hi[1] - lo[1])) / 2.0;
    let px = |x: f64, y: f64| (x0 + (x - lo[0]) * scale, y0 - (y - lo[1]) * scale);
    let mut out = String::new();
    svg_titled(&mut out, width, height, title);
    // The road: both edges, closed, and the start line.
    let hw = track.half_width_m();
    for side in [1.0, -1.0] {
        let mut edge: Vec<(f64, f64)> = track
            .points()
            .iter()
            .zip(track.tangents())
            .map(|(p, t)| px(p[0] - side * hw * t[1], p[1] + side * hw * t[0]))
            .collect();
        edge.push(edge[0]);
        polyline(&mut out, &edge, "#555555", 1.5, "");
    }
    let (p, t) = (track.points()[0], track.tangents()[0]);
    polyline(
        &mut out,
        &[
            px(p[0] - hw * t[1], p[1] + hw * t[0]),
            px(p[0] + hw * t[1], p[1] - hw * t[0]),
        ],
        "#000000",
        3.0,
        "",
    );
    let mut legend: Vec<LegendEntry> = Vec::new();
    for (i, (label, rec)) in series.iter().enumerate() {
        let line: Vec<(f64, f64)> = rec.path.iter().map(|q| px(q[0], q[1])).collect();
        polyline(&mut out, &line, colour(i), 1.8, "");
        let outcome = match rec.lap_time_s() {
            Some(t) => format!("lap {t:.2} s"),
            None => "no lap".to_string(),
        };
        legend.push((colour(i), false, format!("{label} ({outcome})")));
    }
    legend_rows(&mut out, left, height - 24.0, right, &legend);
    out.push_str("</svg>\n");
    out
}

/// Writes greyscale `frames` of `width x height` as an endlessly looping
/// GIF, every [`GIF_EVERY`]th frame, [`GIF_DELAY_CS`] hundredths apart.
pub fn write_gif(
    path: &Path,
    frames: &[Vec<u8>],
    width: usize,
    height: usize,
) -> std::io::Result<()> {
    let palette: Vec<u8> = (0..=255u8).flat_map(|g| [g, g, g]).collect();
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let (w, h) = (
        u16::try_from(width).map_err(std::io::Error::other)?,
        u16::try_from(height).map_err(std::io::Error::other)?,
    );
    let mut encoder = gif::Encoder::new(file, w, h, &palette).map_err(std::io::Error::other)?;
    encoder
        .set_repeat(gif::Repeat::Infinite)
        .map_err(std::io::Error::other)?;
    for pixels in frames.iter().step_by(GIF_EVERY) {
        let mut frame = gif::Frame::from_indexed_pixels(w, h, pixels.clone(), None);
        frame.delay = GIF_DELAY_CS;
        encoder.write_frame(&frame).map_err(std::io::Error::other)?;
    }
    Ok(())
}

/// The top-down frames of a recording on `raster`.
pub fn top_down_frames(raster: &TrackRaster, rec: &Recording) -> Vec<Vec<u8>> {
    rec.path
        .iter()
        .step_by(GIF_EVERY)
        .map(|q| {
            let mut frame = vec![0u8; TOP_DOWN_PX * TOP_DOWN_PX];
            top_down(
                raster,
                q[0],
                q[1],
                q[2],
                TOP_DOWN_PX,
                TOP_DOWN_M_PER_PX,
                &mut frame,
            );
            frame
        })
        .collect()
}

/// Recorded episodes of every policy, ready to draw.
#[derive(Debug, Default)]
pub struct RacingPlots {
    /// `(policy, episode, recording)`, episodes in order per policy.
    pub recordings: Vec<(String, u64, Recording)>,
}

impl RacingPlots {
    /// Writes, per episode, `track-episode-K.svg` with every policy's line,
    /// and per policy and episode `camera-POLICY-episode-K.gif` and
    /// `topdown-POLICY-episode-K.gif`. Returns the number of files.
    pub fn write(&self, dir: &Path) -> std::io::Result<usize> {
        std::fs::create_dir_all(dir)?;
        let mut written = 0;
        let mut episodes: Vec<u64> = self.recordings.iter().map(|r| r.1).collect();
        episodes.sort_unstable();
        episodes.dedup();
        for k in episodes {
            let series: Vec<(String, &Recording)> = self
                .recordings
                .iter()
                .filter(|r| r.1 == k)
                .map(|(p, _, r)| (p.clone(), r))
                .collect();
            let Some((_, first)) = series.first() else {
                continue;
            };
            let track = hlynr_racing::track::named(&first.track).map_err(std::io::Error::other)?;
            let title = format!("{}: episode {k}", track.name());
            std::fs::write(
                dir.join(format!("track-episode-{k}.svg")),
                track_svg(&title, &track, &series),
            )?;
            written += 1;
            let raster = TrackRaster::new(&track);
            for (policy, rec) in &series {
                let stem = policy.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
                let (w, h) = rec.camera_size;
                write_gif(
                    &dir.join(format!("camera-{stem}-episode-{k}.gif")),
                    &rec.camera,
                    w,
                    h,
                )?;
                // Already thinned to every GIF_EVERY-th frame.
                let tops: Vec<Vec<u8>> = top_down_frames(&raster, rec)
                    .into_iter()
                    .flat_map(|f| std::iter::repeat_n(f, GIF_EVERY))
                    .collect();
                write_gif(
                    &dir.join(format!("topdown-{stem}-episode-{k}.gif")),
                    &tops,
                    TOP_DOWN_PX,
                    TOP_DOWN_PX,
                )?;
                written += 2;
            }
        }
        Ok(written)
    }
}

/// A short summary line per recording, for the command's output.
pub fn summary(plots: &RacingPlots) -> String {
    let mut s = String::new();
    for (policy, k, rec) in &plots.recordings {
        let _ = writeln!(
            s,
            "{policy} episode {k} on {}: {} steps, {}",
            rec.track,
            rec.path.len() - 1,
            rec.lap_time_s()
                .map_or("no lap".to_string(), |t| format!("lap in {t:.2} s"))
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gifs_hold_every_second_frame_exactly() {
        let dir = std::env::temp_dir().join(format!("hlynr-gif-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let frames: Vec<Vec<u8>> = (0..7u8)
            .map(|k| (0..12).map(|i| k * 30 + i).collect())
            .collect();
        let path = dir.join("t.gif");
        write_gif(&path, &frames, 4, 3).unwrap();
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::Indexed);
        let mut decoder = options
            .read_info(std::fs::File::open(&path).unwrap())
            .unwrap();
        let mut got = Vec::new();
        while let Some(frame) = decoder.read_next_frame().unwrap() {
            assert_eq!(
                (frame.width, frame.height, frame.delay),
                (4, 3, GIF_DELAY_CS)
            );
            got.push(frame.buffer.to_vec());
        }
        let want: Vec<Vec<u8>> = frames.iter().step_by(GIF_EVERY).cloned().collect();
        assert_eq!(got, want);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_track_plot_draws_both_edges_and_each_line() {
        let track = hlynr_racing::track::shipped("oval").unwrap();
        let mut rec = Recording {
            path: vec![[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]],
            ..Recording::default()
        };
        rec.final_info.set("lap_time_s", 33.2);
        let svg = track_svg(
            "oval",
            &track,
            &[("driver".into(), &rec), ("other".into(), &rec)],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // Two edges, the start line and two driven lines.
        assert_eq!(svg.matches("<polyline").count(), 5, "{svg}");
        assert!(svg.contains("driver (lap 33.20 s)"));
    }
}
