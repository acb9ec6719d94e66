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

impl Row<'_> {
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
        let mut fields = [""; COUNT + 1];
        let mut start = 0;
        let mut index = 0;
        for end in Tabs::new(text.as_bytes()).chain([text.len()]) {
            let slot = self.slots.get(index).copied().unwrap_or(UNREAD);
            fields[usize::from(slot)] = text.get(start..end).unwrap_or_default();
            index += 1;
            start = end + 1;
        }
        if index > self.slots.len() {
            Err(index)
        } else {
            Ok(Row { fields })
        }
    }
}

/// The positions of the tabs of a line, found eight bytes at a time: splitting lines is the
/// parser's hottest loop, and a call to `memchr` per field costs more than the field.
struct Tabs<'a> {
    words: std::slice::ChunksExact<'a, u8>,
    /// The last bytes (fewer than eight), padded with zeros, until they are looked at.
    tail: Option<[u8; 8]>,
    /// Where the current word starts, and its tabs (the high bit of each byte that is a tab).
    offset: usize,
    tabs: u64,
    next_offset: usize,
}

impl<'a> Tabs<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let words = bytes.chunks_exact(8);
        let mut tail = [0; 8];
        let rest = words.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        Self {
            words,
            tail: Some(tail),
            offset: 0,
            tabs: 0,
            next_offset: 0,
        }
    }
}

impl Iterator for Tabs<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.tabs == 0 {
            let word = match self.words.next() {
                Some(chunk) => chunk.try_into().unwrap_or([0; 8]),
                None => self.tail.take()?,
            };
            self.offset = self.next_offset;
            self.next_offset += 8;
            self.tabs = tabs_in(u64::from_le_bytes(word));
        }
        let at = self.offset + (self.tabs.trailing_zeros() / 8) as usize;
        self.tabs &= self.tabs - 1;
        Some(at)
    }
}

/// The high bit of each byte of `word` that is a tab.
fn tabs_in(word: u64) -> u64 {
    const TABS: u64 = u64::from_le_bytes([b'\t'; 8]);
    const LOW_SEVEN: u64 = u64::from_le_bytes([0x7F; 8]);
    let zero_where_tab = word ^ TABS;
    // A byte's high bit ends up set exactly when the byte is not zero (no carry crosses bytes).
    let nonzero = ((zero_where_tab & LOW_SEVEN) + LOW_SEVEN) | zero_where_tab;
    !(nonzero | LOW_SEVEN)
}

#[cfg(test)]
mod tests {
    use super::Tabs;

    #[test]
    fn tabs_are_found_wherever_they_are() {
        // Every pattern of tabs in lines of up to 20 bytes, with bytes that look like tabs
        // to a careless bit trick (0x08, 0x0A, 0x89, 0xFF).
        for len in 0..20usize {
            for seed in 0..64u32 {
                let line: Vec<u8> = (0..len)
                    .map(|i| match (seed.rotate_left(i as u32) ^ i as u32) % 6 {
                        0 => b'\t',
                        1 => 0x08,
                        2 => 0x0A,
                        3 => 0x89,
                        4 => 0xFF,
                        _ => b'a',
                    })
                    .collect();
                let expected: Vec<usize> = (0..len).filter(|&i| line[i] == b'\t').collect();
                assert_eq!(Tabs::new(&line).collect::<Vec<_>>(), expected, "{line:?}");
            }
        }
    }
}
