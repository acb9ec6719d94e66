//! Amazon's static sandbox cases, read from the API models' `x-amzn-api-sandbox` blocks
//! (copied into `fixtures/`, see `fixtures/SOURCE.txt`).
//!
//! A call whose parameters equal every parameter a case lists is answered with that case's
//! status and response, whatever the sandbox's state: Amazon's static sandbox is stateless.
//! Nothing is hand-copied here: the cases are whatever the fixture files say.

use std::sync::LazyLock;

use serde_json::Value;

use crate::operation::Operation;
use crate::spapi::Params;

/// One static case: when `parameters` match, answer `status` with `response`.
#[derive(Debug, Clone)]
pub(crate) struct StaticCase {
    pub operation: Operation,
    pub status: u16,
    /// (parameter name, the `value` the model gives: a string, or an array of strings).
    pub parameters: Vec<(String, Value)>,
    pub response: Value,
}

/// The fixture files and the operation taken from each (the "all operations" file is read
/// for getOrderItems only; getOrders and getOrder have their own files).
const SOURCES: [(&str, Operation); 5] = [
    (
        include_str!("../fixtures/ordersV0.getOrders.sandbox.json"),
        Operation::GetOrders,
    ),
    (
        include_str!("../fixtures/ordersV0.getOrder.sandbox.json"),
        Operation::GetOrder,
    ),
    (
        include_str!("../fixtures/ordersV0.ALL_operations.sandbox.json"),
        Operation::GetOrderItems,
    ),
    (
        include_str!("../fixtures/solicitations.getSolicitationActionsForOrder.sandbox.json"),
        Operation::GetSolicitationActions,
    ),
    (
        include_str!(
            "../fixtures/solicitations.createProductReviewAndSellerFeedbackSolicitation.sandbox.json"
        ),
        Operation::CreateSolicitation,
    ),
];

static CASES: LazyLock<Vec<StaticCase>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .flat_map(|(text, operation)| {
            // The fixtures are part of the crate: one that does not parse is a bug here.
            let file: Value = serde_json::from_str(text).expect("fixture files are valid JSON");
            cases_of(&file, *operation)
        })
        .collect()
});

/// The cases of `operation` in a fixture file (one operation object, or an array of them).
fn cases_of(file: &Value, operation: Operation) -> Vec<StaticCase> {
    let entries = match file {
        Value::Array(entries) => entries.iter().collect(),
        entry => vec![entry],
    };
    let mut cases = Vec::new();
    for entry in entries {
        if entry["operationId"] != operation.operation_id() {
            continue;
        }
        let Some(by_status) = entry["x-amzn-api-sandbox_by_status"].as_object() else {
            continue;
        };
        for (status, block) in by_status {
            let Ok(status) = status.parse::<u16>() else {
                continue;
            };
            for case in block["static"].as_array().into_iter().flatten() {
                let parameters = case["request"]["parameters"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, p)| (name.clone(), p["value"].clone()))
                    .collect();
                cases.push(StaticCase {
                    operation,
                    status,
                    parameters,
                    response: case["response"].clone(),
                });
            }
        }
    }
    cases
}

/// Whether a sent value equals the model's: arrays are sent comma-separated.
fn value_matches(expected: &Value, sent: &str) -> bool {
    match expected {
        Value::String(s) => s == sent,
        Value::Array(items) => {
            let joined: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            joined.is_some_and(|parts| parts.join(",") == sent)
        }
        Value::Number(n) => sent.parse::<serde_json::Number>().is_ok_and(|s| s == *n),
        Value::Bool(b) => sent.parse::<bool>() == Ok(*b),
        Value::Null | Value::Object(_) => false,
    }
}

/// The static case this call matches, if any. When several match (getOrders lists one case
/// without `NextToken` and one with it), the one listing more parameters wins.
pub(crate) fn find(operation: Operation, params: &Params) -> Option<&'static StaticCase> {
    let mut best: Option<&'static StaticCase> = None;
    for case in CASES.iter().filter(|c| c.operation == operation) {
        let matches = case.parameters.iter().all(|(name, expected)| {
            params
                .raw(name)
                .is_some_and(|sent| value_matches(expected, sent))
        });
        if matches && best.is_none_or(|b| case.parameters.len() > b.parameters.len()) {
            best = Some(case);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .fold(Params::default(), |p, (name, value)| p.with(name, value))
    }

    #[test]
    fn every_operation_has_its_documented_cases() {
        let count = |op| CASES.iter().filter(|c| c.operation == op).count();
        assert_eq!(count(Operation::GetOrders), 4);
        assert_eq!(count(Operation::GetOrder), 3);
        assert_eq!(count(Operation::GetOrderItems), 2);
        assert_eq!(count(Operation::GetSolicitationActions), 1);
        assert_eq!(count(Operation::CreateSolicitation), 1);
        assert_eq!(count(Operation::LwaToken), 0);
    }

    #[test]
    fn arrays_match_the_comma_separated_value_and_every_listed_parameter_must_match() {
        let case = find(
            Operation::GetOrders,
            &params(&[
                ("CreatedAfter", "TEST_CASE_200"),
                ("MarketplaceIds", "ATVPDKIKX0DER"),
            ]),
        );
        assert_eq!(case.map(|c| c.status), Some(200));
        let other_marketplace = params(&[
            ("CreatedAfter", "TEST_CASE_200"),
            ("MarketplaceIds", "A21TJRUUN4KGV"),
        ]);
        assert!(find(Operation::GetOrders, &other_marketplace).is_none());
        assert!(
            find(
                Operation::GetOrders,
                &params(&[("CreatedAfter", "TEST_CASE_200")])
            )
            .is_none()
        );
        assert!(value_matches(&serde_json::json!(["A", "B"]), "A,B"));
        assert!(!value_matches(&serde_json::json!(["A", "B"]), "A"));
    }

    #[test]
    fn the_most_specific_case_wins() {
        let first_page = params(&[
            ("CreatedAfter", "TEST_CASE_200_NEXT_TOKEN"),
            ("MarketplaceIds", "ATVPDKIKX0DER"),
        ]);
        let case = find(Operation::GetOrders, &first_page).unwrap();
        assert!(case.response["payload"]["NextToken"].is_string());

        let second_page = first_page.with("NextToken", "2YgYW55IGNhcm5hbCBwbGVhc3VyZS4");
        let case = find(Operation::GetOrders, &second_page).unwrap();
        assert!(case.response["payload"].get("NextToken").is_none());
    }

    #[test]
    fn cases_only_answer_their_own_operation() {
        let order = params(&[("orderId", "TEST_CASE_400")]);
        assert_eq!(
            find(Operation::GetOrder, &order).map(|c| c.status),
            Some(400)
        );
        assert!(find(Operation::GetSolicitationActions, &order).is_none());
    }
}
