//! Amounts and quantities as settlement files write them.

use rust_decimal::Decimal;

/// Digits before the decimal separator (ten trillion is more than any line's amount). With the
/// cap on decimals, an amount fits a `u64` and every sum stays exact and far from `Decimal`'s
/// limit: overflowing it would take ~10^15 lines of the largest amount.
const MAX_WHOLE_DIGITS: u32 = 13;
/// Digits after the decimal separator: Amazon's currencies have at most two, and a third digit
/// means the separator was a thousands separator (`1,234`, `1.234`) — ambiguous, so refused
/// rather than read as 1.234.
const MAX_DECIMALS: u32 = 2;

/// An amount: `-12.34`, `-12,34` (a decimal comma, as European marketplaces write), `1234`,
/// `+5.00`. One separator at most, no thousands separators, no spaces inside, no exponent.
pub(crate) fn parse_amount(text: &str) -> Result<Decimal, &'static str> {
    let (negative, digits) = match text.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        all => (false, all),
    };
    let mut mantissa: u64 = 0;
    let mut whole = 0;
    let mut decimals = 0;
    let mut separated = false;
    for &byte in digits {
        match byte {
            b'0'..=b'9' => {
                if separated {
                    decimals += 1;
                } else {
                    whole += 1;
                }
                // At most 13 + 2 digits: below u64::MAX.
                mantissa = mantissa * 10 + u64::from(byte - b'0');
                if whole > MAX_WHOLE_DIGITS {
                    return Err("more than 13 digits before the decimal separator");
                }
                if decimals > MAX_DECIMALS {
                    return Err(
                        "more than 2 digits after the decimal separator (amounts are written \
                         without thousands separators)",
                    );
                }
            }
            b'.' | b',' if separated => {
                return Err("more than one separator (thousands separators are not accepted)");
            }
            b'.' | b',' => {
                if whole == 0 {
                    return Err("no digit before the decimal separator");
                }
                separated = true;
            }
            _ => return Err("not a number (digits, an optional sign and one . or ,)"),
        }
    }
    if whole == 0 {
        return Err("not a number (digits, an optional sign and one . or ,)");
    }
    if separated && decimals == 0 {
        return Err("no digit after the decimal separator");
    }
    let low = (mantissa & u64::from(u32::MAX)) as u32;
    let middle = (mantissa >> 32) as u32;
    Ok(Decimal::from_parts(
        low,
        middle,
        0,
        negative && mantissa != 0,
        decimals,
    ))
}

/// The most units one line may carry: more is a typo, not an order.
const MAX_QUANTITY: u64 = 1_000_000_000;

/// `quantity-purchased`: a whole number of units.
pub(crate) fn parse_quantity(text: &str) -> Result<u64, &'static str> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a whole number of units");
    }
    match text.parse::<u64>() {
        Ok(units) if units <= MAX_QUANTITY => Ok(units),
        _ => Err("more than a billion units"),
    }
}
