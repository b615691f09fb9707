//! A token's verifications over a range as a bar chart the server draws (SVG through the
//! token page's template): one bar per bucket, valid uses under refusals, scaled to the
//! busiest bucket. The geometry is computed here; the template only places it.

use crate::analytics::Report;
use crate::domain::analytics::Code;

/// The ranges a page offers: its name, its length in seconds, its bucket in seconds.
pub const RANGES: [(&str, i64, i64); 3] = [
    ("24h", 86_400, 3_600),
    ("7d", 7 * 86_400, 86_400 / 4),
    ("30d", 30 * 86_400, 86_400),
];

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 160.0;

/// One bucket's bar: where it stands, and its two parts.
pub struct Bar {
    pub x: String,
    pub width: String,
    pub valid_y: String,
    pub valid_height: String,
    pub refused_y: String,
    pub refused_height: String,
    /// Its tooltip (`<title>`): when, and the counts.
    pub title: String,
}

pub struct Chart {
    pub width: u32,
    pub height: u32,
    pub bars: Vec<Bar>,
    /// The busiest bucket's count (the top of the scale).
    pub max: u64,
    pub valid: u64,
    pub refused: u64,
}

/// The chart of `report`'s first series over `[start, end)` in buckets of `bucket` seconds
/// (buckets the report has no point for count 0; a report's coarser points are spread over
/// the buckets they start in).
pub fn chart(report: &Report, start: i64, end: i64, bucket: i64) -> Chart {
    let count = usize::try_from((end - start) / bucket).unwrap_or(0).max(1);
    let mut buckets = vec![(0u64, 0u64); count];
    let valid_index = Code::ALL
        .iter()
        .position(|c| *c == Code::Valid)
        .unwrap_or(0);
    for point in report.series.iter().flat_map(|series| series.points.iter()) {
        let Ok(at) = usize::try_from((point.t - start) / bucket) else {
            continue;
        };
        if let Some(slot) = buckets.get_mut(at) {
            let valid = point.counts[valid_index];
            slot.0 += valid;
            slot.1 += point.total() - valid;
        }
    }
    let max = buckets.iter().map(|(v, r)| v + r).max().unwrap_or(0);
    let scale = if max == 0 {
        0.0
    } else {
        (HEIGHT - 4.0) / max as f64
    };
    let step = WIDTH / count as f64;
    let bars = buckets
        .iter()
        .enumerate()
        .map(|(i, (valid, refused))| {
            let valid_height = *valid as f64 * scale;
            let refused_height = *refused as f64 * scale;
            let from = chrono::DateTime::from_timestamp(start + i as i64 * bucket, 0)
                .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default();
            Bar {
                x: format!("{:.1}", i as f64 * step + 1.0),
                width: format!("{:.1}", (step - 2.0).max(1.0)),
                valid_y: format!("{:.1}", HEIGHT - valid_height),
                valid_height: format!("{valid_height:.1}"),
                refused_y: format!("{:.1}", HEIGHT - valid_height - refused_height),
                refused_height: format!("{refused_height:.1}"),
                title: format!("{from}: {valid} valid, {refused} refused"),
            }
        })
        .collect();
    Chart {
        width: WIDTH as u32,
        height: HEIGHT as u32,
        bars,
        max,
        valid: buckets.iter().map(|(v, _)| v).sum(),
        refused: buckets.iter().map(|(_, r)| r).sum(),
    }
}

/// A token's verifications over the last 24 hours as a line the tokens page draws in a row
/// (SVG), one point an hour, scaled to the busiest hour.
pub struct Sparkline {
    /// The polyline's `points` in a [`SPARK_WIDTH`] × [`SPARK_HEIGHT`] box.
    pub points: String,
    pub total: u64,
    /// The busiest hour's count.
    pub max: u64,
}

pub const SPARK_WIDTH: u32 = 72;
pub const SPARK_HEIGHT: u32 = 18;

/// The sparkline of `hours` (oldest first).
pub fn sparkline(hours: &[u64]) -> Sparkline {
    let max = hours.iter().copied().max().unwrap_or(0);
    let (width, height) = (f64::from(SPARK_WIDTH), f64::from(SPARK_HEIGHT));
    // One pixel of room above and below, so a flat line at either end shows.
    let span = (hours.len().max(2) - 1) as f64;
    let points = hours
        .iter()
        .enumerate()
        .map(|(i, count)| {
            let x = i as f64 * width / span;
            let y = match max {
                0 => height - 1.0,
                _ => height - 1.0 - (*count as f64 / max as f64) * (height - 2.0),
            };
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ");
    Sparkline {
        points,
        total: hours.iter().sum(),
        max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_scales_to_its_busiest_hour_and_sums_the_day() {
        let line = sparkline(&[0, 2, 4]);
        assert_eq!(line.points, "0.0,17.0 36.0,9.0 72.0,1.0");
        assert_eq!((line.total, line.max), (6, 4));
        let quiet = sparkline(&[0; 25]);
        assert!(quiet.points.split(' ').all(|p| p.ends_with(",17.0")));
        assert_eq!(quiet.points.split(' ').count(), 25);
        assert_eq!(sparkline(&[]).points, "");
    }
}
