//! How numbers, durations and tables are printed: one owner for what the
//! progress display, `hlynr eval`, `compare`, `doctor` and `monitor` show,
//! so one value reads the same everywhere.

use std::fmt::Write;

/// A number for tables and prose: four significant figures below 1000,
/// whole numbers with grouped thousands from 1000 (`4,840`), scientific
/// notation outside `[1e-3, 1e15)` (`2.5e-5`), trailing zeros dropped, and
/// `NaN` / `inf` / `-inf` spelled out.
pub fn number(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let a = x.abs();
    if (1e3..1e15).contains(&a) {
        let sign = if x < 0.0 { "-" } else { "" };
        return format!("{sign}{}", group_thousands(a.round() as u64));
    }
    if a != 0.0 && !(1e-3..1e15).contains(&a) {
        let text = format!("{x:.3e}");
        return match text.split_once('e') {
            Some((mantissa, exponent)) => format!(
                "{}e{exponent}",
                mantissa.trim_end_matches('0').trim_end_matches('.')
            ),
            None => text,
        };
    }
    let decimals = if a == 0.0 {
        0
    } else {
        (3 - a.log10().floor() as i32).clamp(0, 6) as usize
    };
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A fraction in [0, 1] as a percentage with one decimal (`87.4%`).
pub fn rate(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}%", 100.0 * x)
    } else {
        number(x)
    }
}

/// `1234567` -> `1,234,567`.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds as `H:MM:SS` (`-` when unknown or negative).
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "-".to_string();
    }
    let s = seconds.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Seconds as `12.3 s` under a minute (short runs), else `H:MM:SS`.
pub fn wall_time(seconds: f64) -> String {
    if seconds.is_finite() && (0.0..59.95).contains(&seconds) {
        format!("{seconds:.1} s")
    } else {
        duration(seconds)
    }
}

/// The median of `values` (`None` when empty); the mean of the middle two for
/// an even count.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

/// How a Markdown table column is aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// Appends a Markdown table: `header`, one alignment per column, `rows`.
/// Cells have `|` escaped and newlines flattened, so any text stays inside
/// its cell.
pub fn markdown_table<H: AsRef<str>>(
    out: &mut String,
    header: &[H],
    align: &[Align],
    rows: &[Vec<String>],
) {
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<String> = cells
            .map(|c| c.replace('|', "\\|").replace('\n', " "))
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    };
    line(out, &mut header.iter().map(AsRef::as_ref));
    let rule: Vec<&str> = (0..header.len())
        .map(|i| match align.get(i) {
            Some(Align::Right) => "---:",
            _ => "---",
        })
        .collect();
    let _ = writeln!(out, "|{}|", rule.join("|"));
    for row in rows {
        line(out, &mut row.iter().map(String::as_str));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_four_significant_figures_and_grouped_thousands() {
        assert_eq!(number(0.12345), "0.1235");
        assert_eq!(number(0.0125), "0.0125");
        assert_eq!(number(500.0), "500");
        assert_eq!(number(123.456), "123.5");
        assert_eq!(number(-143.673), "-143.7");
        assert_eq!(number(4839.6), "4,840");
        assert_eq!(number(-25_000.4), "-25,000");
        assert_eq!(number(2.5e-5), "2.5e-5");
        assert_eq!(number(2.00774e-7), "2.008e-7");
        assert_eq!(number(-3e20), "-3e20");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::NEG_INFINITY), "-inf");
        assert_eq!(rate(0.874), "87.4%");
        assert_eq!(rate(f64::NAN), "NaN");
    }

    #[test]
    fn durations_and_groups() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
        assert_eq!(duration(3725.0), "1:02:05");
        assert_eq!(duration(f64::INFINITY), "-");
        assert_eq!(wall_time(2.25), "2.2 s");
        assert_eq!(wall_time(3725.0), "1:02:05");
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn markdown_tables_escape_cells_and_align_columns() {
        let mut out = String::new();
        markdown_table(
            &mut out,
            &["run", "return"],
            &[Align::Left, Align::Right],
            &[vec!["a|b".into(), "1\n2".into()]],
        );
        assert_eq!(out, "| run | return |\n|---|---:|\n| a\\|b | 1 2 |\n");
    }
}
