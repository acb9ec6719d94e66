//! Business metrics in CloudWatch Embedded Metric Format: one JSON object per line on stdout,
//! which CloudWatch Logs turns into metrics with no API call on the request path.
//!
//! The object must be the whole line (`_aws` at the top level), so it is written to stdout
//! directly rather than as a field of a tracing event, where it would be a quoted string.

/// One count of a business event, e.g. `("MessagesStored", 3)`.
pub type Count = (&'static str, u64);

/// The EMF line for `counts` in `namespace`, without dimensions.
pub fn emf_line(namespace: &str, counts: &[Count], timestamp_ms: i64) -> String {
    let metrics: Vec<_> = counts
        .iter()
        .map(|(name, _)| serde_json::json!({"Name": name, "Unit": "Count"}))
        .collect();
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[]],
                "Metrics": metrics,
            }]
        }
    });
    for (name, value) in counts {
        line[*name] = serde_json::json!(value);
    }
    line.to_string()
}

/// Writes the counts as one EMF line on stdout.
pub fn emit(namespace: &str, counts: &[Count]) {
    let now = time::OffsetDateTime::now_utc();
    let ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    // `println!`, not a raw handle on stdout: the test harness captures it with the test's output.
    println!("{}", emf_line(namespace, counts, ms));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_an_emf_object_whose_metrics_have_values() {
        let line = emf_line(
            "EcomDrive/Messenger",
            &[("MessagesStored", 3), ("DroppedUnconnectedPage", 1)],
            1_700_000_000_000,
        );
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "EcomDrive/Messenger");
        let names: Vec<_> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["MessagesStored", "DroppedUnconnectedPage"]);
        // Every metric named in the directive has a numeric value at the top level.
        assert_eq!(v["MessagesStored"], 3);
        assert_eq!(v["DroppedUnconnectedPage"], 1);
    }
}
