//! CSV a spreadsheet opens as intended (the P&L download, the data export): UTF-8 with a byte
//! order mark so Excel reads any script, CRLF line ends and quoting as RFC 4180 says, and text
//! cells that can never run as a formula (CSV injection).

use std::io::Write;

/// Written first, so Excel reads the file as UTF-8 rather than the system's code page.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A CSV writer over `out` that has written the byte order mark: RFC 4180 quoting (a cell with a
/// comma, quote or line break is quoted, quotes doubled) and CRLF line ends.
pub fn writer<W: Write>(mut out: W) -> std::io::Result<csv::Writer<W>> {
    out.write_all(UTF8_BOM)?;
    Ok(csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out))
}

/// A text cell a spreadsheet shows as text, never runs as a formula: one starting with `=`, `+`,
/// `-`, `@`, a tab or a carriage return is prefixed with `'`.
pub fn text_cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_plain_text_is_kept() {
        assert_eq!(text_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(text_cell("+1"), "'+1");
        assert_eq!(text_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(text_cell("Priyā, \"Mumbai\""), "Priyā, \"Mumbai\"");
    }

    #[test]
    fn the_writer_starts_with_the_bom_and_quotes_as_rfc_4180_says() {
        let mut w = writer(Vec::new()).unwrap();
        w.write_record(["a,b", "say \"hi\"", "two\nlines", "plain"])
            .unwrap();
        let bytes = w.into_inner().unwrap();
        assert_eq!(
            bytes,
            b"\xEF\xBB\xBF\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",plain\r\n"
        );
    }
}
