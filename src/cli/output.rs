//! How the command line prints: JSON envelopes, aligned tables, `label  value` fields.

use super::AnyError;

/// Names joined with commas, or `none`.
pub(crate) fn listed(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(",")
    }
}

/// `label  value` lines, the values aligned.
pub(crate) fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(label, _)| label.chars().count())
        .max()
        .unwrap_or(0);
    pairs
        .iter()
        .map(|(label, value)| format!("{}\n", format!("{label:<width$}  {value}").trim_end()))
        .collect()
}

/// A success's envelope on stdout; a failure's reason is the error (stderr, exit code 1).
pub(crate) fn print_json<T: serde::Serialize>(
    result: &iam_tokens::Results<T>,
) -> Result<(), AnyError> {
    if let Some(reason) = result.reason() {
        return Err(reason.as_str().into_owned().into());
    }
    println!("{}", serde_json::to_string_pretty(result)?);
    Ok(())
}

/// Rows under their headers, each column as wide as its widest cell.
pub(crate) fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
