//! Protection for CSV exports: a cell that a spreadsheet would evaluate as a formula
//! (OWASP "CSV injection") is prefixed with a single quote so it is shown as text.

use std::borrow::Cow;

pub fn neutralise_formula(cell: &str) -> Cow<'_, str> {
    if would_be_evaluated(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// Whether a spreadsheet would evaluate this cell: it starts like a formula.
pub fn would_be_evaluated(cell: &str) -> bool {
    matches!(
        cell.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_are_quoted_and_text_is_untouched() {
        assert_eq!(neutralise_formula("=1+2"), "'=1+2");
        assert_eq!(neutralise_formula("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise_formula("-3"), "'-3");
        assert_eq!(neutralise_formula("\tx"), "'\tx");
        assert_eq!(neutralise_formula("plain text = fine"), "plain text = fine");
        assert_eq!(neutralise_formula(""), "");
    }
}
