//! The V2 settlement flat file parser (placeholder: being written).
use super::{OrderSums, ParsedSettlement, Rejection};
use std::io::BufRead;

/// Reads a whole flat file, handing each order's sums to `on_order` as the stream passes it.
pub fn parse_settlement<R: BufRead>(
    _reader: R,
    _on_order: impl FnMut(OrderSums),
) -> Result<ParsedSettlement, Rejection> {
    unimplemented!("being written")
}
