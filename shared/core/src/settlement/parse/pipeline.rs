//! Reading lines on a thread of their own, so that reading, decoding and the fingerprint run
//! beside the splitting and adding up (on two cores, at the same time). Lines travel in batches
//! of text (each line followed by `\n`), with their line numbers; a batch is a few hundred
//! kilobytes, and only a few are in flight, so memory stays flat.
//!
//! The reading thread also splits each row at its tabs (it reads the header itself): the work is
//! then about even between the two threads.
//!
//! The fingerprint is SHA-256 over exactly that text: the decoded lines, each followed by `\n`
//! (blank lines, line endings and the encoding aside), hashed batch by batch as they are sent.

use super::columns::{Fields, Header};
use super::lines::{Lines, Next};
use sha2::{Digest, Sha256};
use std::io::BufRead;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Text per batch: large enough that handing batches over costs nothing per line.
const BATCH_BYTES: usize = 256 * 1024;
/// Batches read ahead of the parser.
const BATCHES_IN_FLIGHT: usize = 4;

/// What the reader found, in file order.
pub(super) enum Item {
    /// A line: its text is `batch.text[start..end]`; its fields, once the header is known.
    Text {
        end: usize,
        number: u64,
        fields: Option<Result<Fields, usize>>,
    },
    Unreadable {
        number: u64,
        reason: &'static str,
    },
    /// The input failed; nothing follows.
    Failed {
        number: u64,
        error: String,
    },
}

pub(super) struct Batch {
    pub text: String,
    pub items: Vec<Item>,
}

impl Batch {
    /// A batch with room for `bytes` of text (the first one starts small: most uploads are).
    fn with_capacity(bytes: usize) -> Self {
        Self {
            text: String::with_capacity(bytes),
            items: Vec::with_capacity(bytes / 128),
        }
    }

    /// The items with the text of each line.
    pub(super) fn lines(&self) -> impl Iterator<Item = Line<'_>> {
        let mut start = 0;
        self.items.iter().map(move |item| match item {
            Item::Text {
                end,
                number,
                fields,
            } => {
                let text = self.text.get(start..*end).unwrap_or_default();
                start = end + 1;
                Line::Text {
                    number: *number,
                    text,
                    fields: fields.as_ref(),
                }
            }
            Item::Unreadable { number, reason } => Line::Unreadable {
                number: *number,
                reason,
            },
            Item::Failed { number, error } => Line::Failed {
                number: *number,
                error,
            },
        })
    }
}

pub(super) enum Line<'a> {
    Text {
        number: u64,
        text: &'a str,
        /// Split by the reading thread (`None`: the header, or lines before a valid one).
        fields: Option<&'a Result<Fields, usize>>,
    },
    Unreadable {
        number: u64,
        reason: &'static str,
    },
    Failed {
        number: u64,
        error: &'a str,
    },
}

/// Reads every line of `reader` on the current thread, sending batches until the input ends or
/// the receiver is gone; returns the fingerprint of the lines read.
pub(super) fn read_lines<R: BufRead>(reader: R, batches: SyncSender<Batch>) -> String {
    let mut lines = Lines::new(reader);
    let mut fingerprint = Sha256::new();
    let mut batch = Batch::with_capacity(4096);
    // The header as this thread reads it (the parser reads it too, and reports its problems).
    let mut header: Option<Option<Header>> = None;
    loop {
        let item = match lines.next_line() {
            Ok(Next::Text { number, text }) => {
                let fields = match &header {
                    None => {
                        header = Some(Header::read(text).ok());
                        None
                    }
                    Some(Some(header)) => Some(header.split_at_tabs(text)),
                    Some(None) => None,
                };
                batch.text.push_str(text);
                batch.text.push('\n');
                Item::Text {
                    end: batch.text.len() - 1,
                    number,
                    fields,
                }
            }
            Ok(Next::Unreadable { number, reason }) => Item::Unreadable { number, reason },
            Ok(Next::End) => break,
            Err(error) => {
                let number = lines.number() + 1;
                batch.items.push(Item::Failed {
                    number,
                    error: error.to_string(),
                });
                break;
            }
        };
        batch.items.push(item);
        if batch.text.len() >= BATCH_BYTES {
            fingerprint.update(batch.text.as_bytes());
            let full = std::mem::replace(&mut batch, Batch::with_capacity(BATCH_BYTES + 4096));
            if batches.send(full).is_err() {
                // The parser stopped (the file is refused): no need to read on.
                break;
            }
        }
    }
    fingerprint.update(batch.text.as_bytes());
    if !batch.items.is_empty() {
        let _ = batches.send(batch);
    }
    hex::encode(fingerprint.finalize())
}

pub(super) fn channel() -> (SyncSender<Batch>, Receiver<Batch>) {
    sync_channel(BATCHES_IN_FLIGHT)
}
