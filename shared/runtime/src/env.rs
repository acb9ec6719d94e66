//! Reading a function's configuration from its environment (set by template.yaml in Lambda and
//! by the local stack locally), with errors that name the variable.

use std::str::FromStr;

use crate::error::RuntimeError;

/// The variable's value; an error if it is unset, empty or not Unicode.
pub fn required(name: &str) -> Result<String, RuntimeError> {
    optional(name)?.ok_or_else(|| RuntimeError::MissingVar { name: name.into() })
}

/// The variable's value, or `None` if it is unset or empty. Not Unicode is an error.
pub fn optional(name: &str) -> Result<Option<String>, RuntimeError> {
    match std::env::var(name) {
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(RuntimeError::InvalidVar {
            name: name.into(),
            reason: "not valid UTF-8".into(),
        }),
    }
}

/// The variable parsed as `T` (a number, a duration in seconds...), or `default` if unset.
pub fn optional_parsed<T>(name: &str, default: T) -> Result<T, RuntimeError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match optional(name)? {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse()
            .map_err(|e: T::Err| RuntimeError::InvalidVar {
                name: name.into(),
                reason: e.to_string(),
            }),
    }
}

/// A comma-separated list (e.g. several Cognito app client ids); empty items are dropped.
pub fn required_list(name: &str) -> Result<Vec<String>, RuntimeError> {
    let items: Vec<String> = required(name)?
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect();
    if items.is_empty() {
        return Err(RuntimeError::MissingVar { name: name.into() });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each test uses its own variable names: tests run in parallel in one process.
    fn set(name: &str, value: &str) {
        // SAFETY: no other thread reads or writes these test-only variable names.
        unsafe { std::env::set_var(name, value) }
    }

    #[test]
    fn required_names_the_missing_variable() {
        let error = required("ECOMDRIVE_TEST_SURELY_UNSET").expect_err("unset");
        assert_eq!(
            error.to_string(),
            "environment variable ECOMDRIVE_TEST_SURELY_UNSET is not set"
        );
        set("ECOMDRIVE_TEST_EMPTY", "  ");
        assert!(matches!(
            required("ECOMDRIVE_TEST_EMPTY"),
            Err(RuntimeError::MissingVar { .. })
        ));
        set("ECOMDRIVE_TEST_SET", "replies-queue");
        assert_eq!(
            required("ECOMDRIVE_TEST_SET").expect("set"),
            "replies-queue"
        );
    }

    #[test]
    fn optional_is_none_when_unset() {
        assert_eq!(optional("ECOMDRIVE_TEST_OPT_UNSET").expect("ok"), None);
        set("ECOMDRIVE_TEST_OPT", "x");
        assert_eq!(
            optional("ECOMDRIVE_TEST_OPT").expect("ok").as_deref(),
            Some("x")
        );
    }

    #[test]
    fn optional_parsed_uses_the_default_or_names_the_bad_variable() {
        assert_eq!(
            optional_parsed("ECOMDRIVE_TEST_TTL_UNSET", 300u64).expect("ok"),
            300
        );
        set("ECOMDRIVE_TEST_TTL", "60");
        assert_eq!(
            optional_parsed("ECOMDRIVE_TEST_TTL", 300u64).expect("ok"),
            60
        );
        set("ECOMDRIVE_TEST_TTL_BAD", "soon");
        let error = optional_parsed("ECOMDRIVE_TEST_TTL_BAD", 300u64).expect_err("bad");
        assert!(
            error.to_string().contains("ECOMDRIVE_TEST_TTL_BAD"),
            "{error}"
        );
    }

    #[test]
    fn required_list_splits_on_commas() {
        set("ECOMDRIVE_TEST_LIST", "spa-client, admin-client,,");
        assert_eq!(
            required_list("ECOMDRIVE_TEST_LIST").expect("ok"),
            ["spa-client", "admin-client"]
        );
        set("ECOMDRIVE_TEST_LIST_EMPTY", ",");
        assert!(required_list("ECOMDRIVE_TEST_LIST_EMPTY").is_err());
    }
}
