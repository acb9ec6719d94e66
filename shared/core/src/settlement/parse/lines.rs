//! Reading a flat file one line at a time: a capped line length (a file without line breaks must
//! not fill the memory), CRLF or LF, a UTF-8 BOM, UTF-8 or Windows-1252.

use memchr::memchr;
use std::io::{self, BufRead};

/// The longest line accepted. Real lines are a few hundred bytes.
pub(super) const MAX_LINE_BYTES: usize = 64 * 1024;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// What the next line of the file is.
pub(super) enum Next<'a> {
    /// A non-blank line, decoded, without its line ending.
    Text {
        number: u64,
        text: &'a str,
    },
    /// A line that cannot be read as text at all.
    Unreadable {
        number: u64,
        reason: &'static str,
    },
    End,
}

/// Lines of a file. Blank lines are skipped (but counted, so line numbers match an editor's).
pub(super) struct Lines<R> {
    reader: R,
    /// The raw bytes of the current line, reused from line to line.
    raw: Vec<u8>,
    /// The current line decoded from Windows-1252, when it is not UTF-8.
    decoded: String,
    number: u64,
    /// Bytes of the reader's buffer still holding the line last handed out.
    pending: usize,
}

impl<R: BufRead> Lines<R> {
    pub(super) fn new(reader: R) -> Self {
        Self {
            reader,
            raw: Vec::with_capacity(1024),
            decoded: String::new(),
            number: 0,
            pending: 0,
        }
    }

    /// The number of the last line read (1-based; 0 before the first).
    pub(super) fn number(&self) -> u64 {
        self.number
    }

    pub(super) fn next_line(&mut self) -> io::Result<Next<'_>> {
        // Where this line's bytes are: in the reader's buffer (no copy, the common case), or
        // in `raw` (a line the buffer cut in two).
        let (in_buffer, at_start) = loop {
            // The last line handed out is done with: drop it from the reader's buffer.
            self.reader.consume(std::mem::take(&mut self.pending));
            let at_start = self.number == 0;
            let whole = match fill_buf(&mut self.reader)? {
                [] => return Ok(Next::End),
                available => memchr(b'\n', available).filter(|&at| at <= MAX_LINE_BYTES),
            };
            let in_buffer = match whole {
                Some(at) => {
                    self.pending = at + 1;
                    Some(at)
                }
                None => match self.read_raw()? {
                    None => return Ok(Next::End),
                    Some(true) => {
                        self.number += 1;
                        return Ok(self.unreadable("the line is longer than 64 KiB"));
                    }
                    Some(false) => None,
                },
            };
            self.number += 1;
            let raw = match in_buffer {
                Some(at) => &fill_buf(&mut self.reader)?[..at],
                None => &self.raw[..],
            };
            if at_start && (raw.starts_with(b"\xFF\xFE") || raw.starts_with(b"\xFE\xFF")) {
                return Ok(
                    self.unreadable("the file is UTF-16: save it as UTF-8 (or as Amazon sent it)")
                );
            }
            if !is_blank(line_content(raw, at_start)) {
                break (in_buffer, at_start);
            }
        };
        let raw = match in_buffer {
            // The buffer still holds the line: nothing was consumed since it was found.
            Some(at) => &fill_buf(&mut self.reader)?[..at],
            None => &self.raw[..],
        };
        let bytes = line_content(raw, at_start);
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => {
                // Not UTF-8: spreadsheet programs save Windows-1252, which maps every byte.
                self.decoded.clear();
                let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
                self.decoded.push_str(&text);
                &self.decoded
            }
        };
        Ok(Next::Text {
            number: self.number,
            text,
        })
    }

    fn unreadable(&self, reason: &'static str) -> Next<'static> {
        Next::Unreadable {
            number: self.number,
            reason,
        }
    }

    /// Reads the next line's bytes (without `\n`) into `raw`: `None` at the end of the input,
    /// `Some(true)` when the line was too long (its bytes are then skipped, not kept).
    fn read_raw(&mut self) -> io::Result<Option<bool>> {
        self.raw.clear();
        let mut read_any = false;
        let mut too_long = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                return Ok(read_any.then_some(too_long));
            }
            read_any = true;
            let (chunk, used, ends_line) = match memchr(b'\n', available) {
                Some(at) => (&available[..at], at + 1, true),
                None => (available, available.len(), false),
            };
            if !too_long {
                if self.raw.len() + chunk.len() > MAX_LINE_BYTES {
                    too_long = true;
                    self.raw.clear();
                } else {
                    self.raw.extend_from_slice(chunk);
                }
            }
            self.reader.consume(used);
            if ends_line {
                return Ok(Some(too_long));
            }
        }
    }
}

/// The reader's buffered bytes (empty at the end of the input), retrying an interrupted read.
fn fill_buf<R: BufRead>(reader: &mut R) -> io::Result<&[u8]> {
    loop {
        match reader.fill_buf() {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    reader.fill_buf()
}

/// A line's bytes without the `\r` of CRLF and, on the first line, without a UTF-8 BOM.
fn line_content(raw: &[u8], at_start: bool) -> &[u8] {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    if at_start {
        raw.strip_prefix(UTF8_BOM).unwrap_or(raw)
    } else {
        raw
    }
}

/// Blank: nothing but spaces and tabs (spreadsheets write rows of empty cells).
fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == b' ' || b == b'\t' || b == b'\r')
}
