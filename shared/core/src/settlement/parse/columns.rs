//! The header: which column holds what, found by name (Amazon's order of columns is not a
//! promise), and splitting a row into the fields we read.

/// The most columns a header may have (Amazon's has 24).
pub(super) const MAX_COLUMNS: usize = 1000;

/// The columns we read. Any other column is allowed and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Column {
    SettlementId,
    StartDate,
    EndDate,
    DepositDate,
    TotalAmount,
    Currency,
    TransactionType,
    OrderId,
    MarketplaceName,
    AmountType,
    AmountDescription,
    Amount,
    PostedDate,
    PostedDateTime,
    Sku,
    QuantityPurchased,
}

const COUNT: usize = 16;

impl Column {
    const ALL: [Column; COUNT] = [
        Column::SettlementId,
        Column::StartDate,
        Column::EndDate,
        Column::DepositDate,
        Column::TotalAmount,
        Column::Currency,
        Column::TransactionType,
        Column::OrderId,
        Column::MarketplaceName,
        Column::AmountType,
        Column::AmountDescription,
        Column::Amount,
        Column::PostedDate,
        Column::PostedDateTime,
        Column::Sku,
        Column::QuantityPurchased,
    ];

    /// The name Amazon gives the column in the header.
    pub(super) fn name(self) -> &'static str {
        match self {
            Column::SettlementId => "settlement-id",
            Column::StartDate => "settlement-start-date",
            Column::EndDate => "settlement-end-date",
            Column::DepositDate => "deposit-date",
            Column::TotalAmount => "total-amount",
            Column::Currency => "currency",
            Column::TransactionType => "transaction-type",
            Column::OrderId => "order-id",
            Column::MarketplaceName => "marketplace-name",
            Column::AmountType => "amount-type",
            Column::AmountDescription => "amount-description",
            Column::Amount => "amount",
            Column::PostedDate => "posted-date",
            Column::PostedDateTime => "posted-date-time",
            Column::Sku => "sku",
            Column::QuantityPurchased => "quantity-purchased",
        }
    }

    fn named(name: &str) -> Option<Column> {
        Column::ALL
            .into_iter()
            .find(|column| column.name().eq_ignore_ascii_case(name))
    }

    /// Columns without which a file cannot be added up (posted-date / posted-date-time: either).
    const REQUIRED: [Column; 8] = [
        Column::SettlementId,
        Column::TotalAmount,
        Column::Currency,
        Column::TransactionType,
        Column::OrderId,
        Column::AmountType,
        Column::AmountDescription,
        Column::Amount,
    ];
}

/// The header line, read: for each position, where its field goes in a [`Row`] (a column we
/// do not read goes to a spare slot, which saves a branch per field).
#[derive(Debug)]
pub(super) struct Header {
    slots: Vec<u8>,
}

/// The slot of the fields of columns we do not read.
const UNREAD: u8 = COUNT as u8;

/// A row split into the fields we read (a column the row is too short for, or the header does
/// not have, reads as empty).
pub(super) struct Row<'a> {
    fields: [&'a str; COUNT + 1],
}

/// Where each field we read is in its line (start, end): a row split on one thread and read on
/// another.
pub(super) type Fields = [(u32, u32); COUNT + 1];

impl<'a> Row<'a> {
    /// The row of `text` split at `fields` (from [`Header::split_at_tabs`] on that text).
    pub(super) fn at(text: &'a str, fields: &Fields) -> Row<'a> {
        Row {
            fields: fields
                .map(|(start, end)| text.get(start as usize..end as usize).unwrap_or_default()),
        }
    }

    /// The field, without surrounding spaces.
    pub(super) fn get(&self, column: Column) -> &str {
        let field = self.fields[column as usize];
        let bytes = field.as_bytes();
        if bytes.first() == Some(&b' ') || bytes.last() == Some(&b' ') {
            field.trim_matches(' ')
        } else {
            field
        }
    }
}

impl Header {
    /// Reads a header line, or says everything that is wrong with it.
    pub(super) fn read(text: &str) -> Result<Header, Vec<String>> {
        let names: Vec<&str> = text.split('\t').map(|name| name.trim()).collect();
        if names.len() > MAX_COLUMNS {
            return Err(vec![format!(
                "the header has {} columns; at most {MAX_COLUMNS} are accepted",
                names.len()
            )]);
        }
        let at: Vec<Option<Column>> = names.iter().map(|name| Column::named(name)).collect();
        if at.iter().all(Option::is_none) {
            return Err(vec![format!(
                "no header: the first line should name the columns ({}, {}, {}, …)",
                Column::SettlementId.name(),
                Column::TotalAmount.name(),
                Column::Amount.name()
            )]);
        }
        let mut problems = Vec::new();
        for column in Column::ALL {
            let positions: Vec<usize> = (0..at.len()).filter(|&i| at[i] == Some(column)).collect();
            if let [first, second, ..] = positions[..] {
                problems.push(format!(
                    "the column {} appears twice (columns {} and {})",
                    column.name(),
                    first + 1,
                    second + 1
                ));
            }
        }
        let has = |column: Column| at.contains(&Some(column));
        for column in Column::REQUIRED {
            if !has(column) {
                problems.push(format!("the required column {} is missing", column.name()));
            }
        }
        if !has(Column::PostedDate) && !has(Column::PostedDateTime) {
            problems.push(format!(
                "the required column {} (or {}) is missing",
                Column::PostedDate.name(),
                Column::PostedDateTime.name()
            ));
        }
        if problems.is_empty() {
            let slots = at
                .iter()
                .map(|column| column.map_or(UNREAD, |c| c as u8))
                .collect();
            Ok(Header { slots })
        } else {
            Err(problems)
        }
    }

    /// How many columns the header names.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Splits a row at its tabs; `Err(fields)` when it has more fields than the header.
    pub(super) fn split<'a>(&self, text: &'a str) -> Result<Row<'a>, usize> {
        self.split_at_tabs(text)
            .map(|fields| Row::at(text, &fields))
    }

    /// Where the fields of a row are; `Err(fields)` when it has more fields than the header.
    /// Lines are at most 64 KiB: offsets fit a `u32`.
    pub(super) fn split_at_tabs(&self, text: &str) -> Result<Fields, usize> {
        let mut fields: Fields = [(0, 0); COUNT + 1];
        let bytes = text.as_bytes();
        let mut start = 0;
        let mut index = 0;
        let mut field = |end: usize, index: &mut usize| {
            let slot = self.slots.get(*index).copied().unwrap_or(UNREAD);
            fields[usize::from(slot)] = (start as u32, end as u32);
            *index += 1;
            start = end + 1;
        };
        let mut block = 0;
        while block + 16 <= bytes.len() {
            let mut tabs = tab_mask_16(&bytes[block..block + 16]);
            while tabs != 0 {
                field(block + tabs.trailing_zeros() as usize, &mut index);
                tabs &= tabs - 1;
            }
            block += 16;
        }
        for (at, _) in bytes[block..]
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\t')
        {
            field(block + at, &mut index);
        }
        field(bytes.len(), &mut index);
        if index > self.slots.len() {
            Err(index)
        } else {
            Ok(fields)
        }
    }
}

/// A bit per byte of a 16-byte block that is a tab. Splitting lines is the parser's hottest
/// loop: one SIMD compare finds every tab of the block (SSE2, which every x86-64 has).
#[cfg(target_arch = "x86_64")]
fn tab_mask_16(block: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    debug_assert_eq!(block.len(), 16);
    // SAFETY: SSE2 is part of x86-64; the load reads exactly the 16 bytes of `block` (unaligned).
    unsafe {
        let bytes = _mm_loadu_si128(block.as_ptr().cast());
        _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'\t' as i8))) as u32
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn tab_mask_16(block: &[u8]) -> u32 {
    block
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\t')
        .fold(0, |mask, (i, _)| mask | 1 << i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_split_at_every_tab_wherever_it_is() {
        let columns = [
            Column::SettlementId,
            Column::TotalAmount,
            Column::Currency,
            Column::TransactionType,
            Column::OrderId,
            Column::AmountType,
            Column::AmountDescription,
            Column::Amount,
            Column::PostedDate,
        ];
        let names: Vec<&str> = columns.iter().map(|c| c.name()).collect();
        let header = Header::read(&names.join("\t")).expect("a header");
        // Lines of 0 to 40 bytes (across the 16-byte blocks) with tabs anywhere, among bytes
        // that look like tabs to a careless bit trick (0x08, 0x0A, 0x89).
        for len in 0..40usize {
            for seed in 0..64u32 {
                let line: String = (0..len)
                    .map(|i| match (seed.rotate_left(i as u32) ^ i as u32) % 7 {
                        0 => '\t',
                        1 => '\u{8}',
                        2 => '\n',
                        3 => '\u{89}',
                        _ => 'a',
                    })
                    .collect();
                let expected: Vec<&str> = line.split('\t').collect();
                match header.split(&line) {
                    Ok(row) => {
                        assert!(expected.len() <= columns.len(), "{line:?}");
                        for (at, column) in columns.iter().enumerate() {
                            let want = expected.get(at).copied().unwrap_or_default();
                            assert_eq!(row.fields[*column as usize], want, "{line:?}");
                        }
                    }
                    Err(fields) => assert_eq!(fields, expected.len(), "{line:?}"),
                }
            }
        }
    }
}
