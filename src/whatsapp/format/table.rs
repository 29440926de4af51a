//! GitHub-style tables, which WhatsApp cannot show, flattened to one readable line per row:
//! `Plan: Basic, Price: $5` (header cell, colon, value).

use super::inline::{convert, Style};

/// When `lines` starts with a table (a row of cells, then a `|---|` separator row), returns the
/// flattened lines and how many input lines the table used.
pub(super) fn flatten(lines: &[&str]) -> Option<(Vec<String>, usize)> {
    let (header, separator) = (*lines.first()?, *lines.get(1)?);
    if !header.contains('|') || !separator.contains('|') {
        return None;
    }
    let header_cells = split_row(header);
    let separator_cells = split_row(separator);
    if separator_cells.len() != header_cells.len()
        || !separator_cells.iter().all(|c| is_separator(c))
    {
        return None;
    }
    // Header cells are labels: bold inside them would only add noise.
    let keys: Vec<String> = header_cells
        .iter()
        .map(|c| convert(c, Style::Heading))
        .collect();
    let mut out = Vec::new();
    let mut used = 2;
    for line in &lines[2..] {
        if line.trim().is_empty() || !line.contains('|') {
            break;
        }
        used += 1;
        let fields: Vec<String> = split_row(line)
            .iter()
            .enumerate()
            .filter(|(_, cell)| !cell.is_empty())
            .map(|(i, cell)| {
                let value = convert(cell, Style::Body);
                match keys.get(i).filter(|k| !k.is_empty()) {
                    Some(key) => format!("{key}: {value}"),
                    None => value,
                }
            })
            .collect();
        if !fields.is_empty() {
            out.push(fields.join(", "));
        }
    }
    if out.is_empty() {
        let named: Vec<&str> = keys
            .iter()
            .map(String::as_str)
            .filter(|k| !k.is_empty())
            .collect();
        if !named.is_empty() {
            out.push(named.join(" | "));
        }
    }
    Some((out, used))
}

/// The trimmed cells of a table row; `\|` is a literal pipe inside a cell.
fn split_row(line: &str) -> Vec<String> {
    let row = line.trim();
    let row = row.strip_prefix('|').unwrap_or(row);
    let row = match row.strip_suffix('|') {
        Some(inner) if !inner.ends_with('\\') => inner,
        _ => row,
    };
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cell.push('|');
                chars.next();
            }
            '|' => cells.push(std::mem::take(&mut cell).trim().to_owned()),
            _ => cell.push(c),
        }
    }
    cells.push(cell.trim().to_owned());
    cells
}

fn is_separator(cell: &str) -> bool {
    let inner = cell.strip_prefix(':').unwrap_or(cell);
    let inner = inner.strip_suffix(':').unwrap_or(inner);
    !inner.is_empty() && inner.chars().all(|c| c == '-')
}
