//! Promises kept by configuration, proven by reading template.yaml (POLICY.md: "a promise kept
//! by configuration is proven by a test that reads template.yaml and asserts the setting"),
//! and the local provisioning of what it declares.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use ecomdrive_local::provision;
use serde_yaml::{Mapping, Value};

use crate::support;

/// POLICY A19: deletion requests complete within 30 days, so nothing (backups, old object
/// versions) may keep deleted data longer.
const DELETION_PROMISE_DAYS: u64 = 30;

// ------------------------------------------------------------------ reading the template

fn template() -> &'static Value {
    static TEMPLATE: OnceLock<Value> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let path = provision::template_path(&provision::repo_root());
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_yaml::from_str(&text)
            .expect("template.yaml parses (short tags kept as tagged values)")
    })
}

fn resources() -> &'static Mapping {
    template()["Resources"]
        .as_mapping()
        .expect("Resources is a mapping")
}

fn resource(logical_id: &str) -> &'static Value {
    resources()
        .get(logical_id)
        .unwrap_or_else(|| panic!("template.yaml has no resource {logical_id}"))
}

fn properties(logical_id: &str) -> &'static Value {
    &resource(logical_id)["Properties"]
}

/// Logical ids and properties of every resource of `kind`.
fn of_type(kind: &str) -> Vec<(&'static str, &'static Value)> {
    resources()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(id, r)| {
            (
                id.as_str().expect("logical ids are strings"),
                &r["Properties"],
            )
        })
        .collect()
}

/// A property of a function, falling back to `Globals.Function` as SAM does.
fn function_property(logical_id: &str, key: &str) -> &'static Value {
    let own = &properties(logical_id)[key];
    if own.is_null() {
        &template()["Globals"]["Function"][key]
    } else {
        own
    }
}

/// An intrinsic call in short or long form: (`Ref` | `Fn::GetAtt` | `Fn::Sub` | ..., argument).
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let short = tag.trim_start_matches('!').to_string();
            let name = if short == "Ref" {
                short
            } else {
                format!("Fn::{short}")
            };
            Some((name, &tagged.value))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (key, argument) = m.iter().next()?;
            let key = key.as_str()?;
            (key == "Ref" || key.starts_with("Fn::")).then(|| (key.to_string(), argument))
        }
        _ => None,
    }
}

/// True when `value` refers (Ref, GetAtt, Sub) to `logical_id` anywhere inside.
fn mentions(value: &Value, logical_id: &str) -> bool {
    if let Some((function, argument)) = intrinsic(value) {
        let direct = match function.as_str() {
            "Ref" => argument.as_str() == Some(logical_id),
            "Fn::GetAtt" => match argument {
                Value::String(s) => s.split('.').next() == Some(logical_id),
                Value::Sequence(parts) => parts.first().and_then(Value::as_str) == Some(logical_id),
                _ => false,
            },
            "Fn::Sub" => {
                let text = match argument {
                    Value::Sequence(parts) => parts.first().and_then(Value::as_str),
                    other => other.as_str(),
                };
                text.is_some_and(|t| {
                    t.contains(&format!("${{{logical_id}}}"))
                        || t.contains(&format!("${{{logical_id}."))
                })
            }
            _ => false,
        };
        return direct || mentions(argument, logical_id);
    }
    match value {
        Value::Sequence(items) => items.iter().any(|v| mentions(v, logical_id)),
        Value::Mapping(m) => m.values().any(|v| mentions(v, logical_id)),
        Value::Tagged(t) => mentions(&t.value, logical_id),
        _ => false,
    }
}

/// The logical id a `!Ref X` or `!GetAtt X.Attr` points at.
fn target(value: &Value) -> Option<&str> {
    let (function, argument) = intrinsic(value)?;
    match (function.as_str(), argument) {
        ("Ref", Value::String(id)) => Some(id),
        ("Fn::GetAtt", Value::String(dotted)) => dotted.split('.').next(),
        ("Fn::GetAtt", Value::Sequence(parts)) => parts.first().and_then(Value::as_str),
        _ => None,
    }
}

/// The text of a `!Sub` with a plain string argument.
fn sub_text(value: &Value) -> Option<&str> {
    match intrinsic(value)? {
        (function, Value::String(text)) if function == "Fn::Sub" => Some(text),
        _ => None,
    }
}

fn number(value: &Value) -> Option<f64> {
    value
        .as_f64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

fn is_true(value: &Value) -> bool {
    value.as_bool() == Some(true) || value.as_str() == Some("true")
}

/// Every string scalar in `value` (tag arguments included).
fn strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Sequence(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Mapping(m) => m.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out);
        }),
        Value::Tagged(t) => strings(&t.value, out),
        _ => {}
    }
}

/// Every IAM policy statement of a role, as (role, statement).
fn role_statements() -> Vec<(&'static str, &'static Value)> {
    let mut out = Vec::new();
    for (role, props) in of_type("AWS::IAM::Role") {
        for policy in props["Policies"].as_sequence().into_iter().flatten() {
            for statement in policy["PolicyDocument"]["Statement"]
                .as_sequence()
                .into_iter()
                .flatten()
            {
                out.push((role, statement));
            }
        }
    }
    out
}

const FUNCTIONS: [&str; 13] = [
    "ApiFunction",
    "MessengerWebhookFunction",
    "MessengerIngestFunction",
    "AgentReplyFunction",
    "AuthClaimsFunction",
    "OrderSyncFunction",
    "SolicitationSchedulerFunction",
    "SolicitationSenderFunction",
    "SettlementImportFunction",
    "DataExportFunction",
    "DataDeletionFunction",
    "DataDeletionJobFunction",
    "RetentionSweeperFunction",
];

/// Every queue with its dead-letter queue and how often a message is received before it goes
/// there.
const QUEUES: [(&str, &str, f64); 8] = [
    ("InboundQueue", "InboundDeadLetterQueue", 5.0),
    ("RepliesQueue", "RepliesDeadLetterQueue", 5.0),
    ("OrderSyncQueue", "OrderSyncDeadLetterQueue", 5.0),
    (
        "SolicitationPlanQueue",
        "SolicitationPlanDeadLetterQueue",
        5.0,
    ),
    // The sender hands a message back when the seller's pace is exhausted: more receives.
    ("SolicitationsQueue", "SolicitationsDeadLetterQueue", 10.0),
    (
        "SettlementImportQueue",
        "SettlementImportDeadLetterQueue",
        5.0,
    ),
    ("ExportsQueue", "ExportsDeadLetterQueue", 3.0),
    // A deletion left half-done by a timeout comes back until it is finished (POLICY A19).
    ("DeletionsQueue", "DeletionsDeadLetterQueue", 10.0),
];

/// The actions of a statement (a single action or a list).
fn actions(statement: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    strings(&statement["Action"], &mut out);
    out
}

/// The statements of the role `function` runs with.
fn statements_of(function: &str) -> Vec<&'static Value> {
    let role = target(&properties(function)["Role"])
        .unwrap_or_else(|| panic!("{function} has an explicit Role"));
    role_statements()
        .into_iter()
        .filter(|(r, _)| *r == role)
        .map(|(_, s)| s)
        .collect()
}

/// The function's own environment (not `Globals`).
fn own_env(function: &str) -> &'static Mapping {
    static EMPTY: OnceLock<Mapping> = OnceLock::new();
    properties(function)["Environment"]["Variables"]
        .as_mapping()
        .unwrap_or_else(|| EMPTY.get_or_init(Mapping::new))
}

// ------------------------------------------------------------------ policy tests

#[test]
fn policy_a13_data_stays_in_ap_south_1() {
    // A rule assertion makes a deploy to any other region fail before anything is created.
    let rules = template()["Rules"]
        .as_mapping()
        .expect("template.yaml has Rules");
    let pinned = rules.values().any(|rule| {
        rule["Assertions"]
            .as_sequence()
            .into_iter()
            .flatten()
            .any(|assertion| match intrinsic(&assertion["Assert"]) {
                Some((f, Value::Sequence(sides))) if f == "Fn::Equals" && sides.len() == 2 => {
                    let is_region = |v: &Value| target(v) == Some("AWS::Region");
                    let is_mumbai = |v: &Value| v.as_str() == Some("ap-south-1");
                    (is_region(&sides[0]) && is_mumbai(&sides[1]))
                        || (is_mumbai(&sides[0]) && is_region(&sides[1]))
                }
                _ => false,
            })
    });
    assert!(
        pinned,
        "a Rules assertion must require AWS::Region == ap-south-1"
    );

    // And no resource names another region (a cross-region replica, bucket or key).
    let prefixes = ["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx", "cn"];
    let mut texts = Vec::new();
    strings(template(), &mut texts);
    for text in texts {
        for token in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
            let parts: Vec<&str> = token.split('-').collect();
            let looks_like_region = parts.len() == 3
                && prefixes.contains(&parts[0])
                && parts[1].chars().all(|c| c.is_ascii_lowercase())
                && parts[2].chars().all(|c| c.is_ascii_digit())
                && !parts[2].is_empty();
            assert!(
                !looks_like_region || token == "ap-south-1",
                "template.yaml names region {token:?} in {text:?}; data stays in ap-south-1"
            );
        }
    }
}

#[test]
fn policy_a13_encrypted_at_rest_and_in_transit() {
    // Table: SSE with the project's key.
    let sse = &properties("Table")["SSESpecification"];
    assert!(is_true(&sse["SSEEnabled"]), "table SSE must be enabled");
    assert_eq!(sse["SSEType"].as_str(), Some("KMS"));
    assert!(
        mentions(&sse["KMSMasterKeyId"], "DataKey"),
        "table must use DataKey"
    );

    // Queues: every one under DataKey.
    let queues = of_type("AWS::SQS::Queue");
    assert_eq!(
        queues.len(),
        2 * QUEUES.len(),
        "expected every queue of QUEUES with its DLQ"
    );
    for (id, props) in &queues {
        assert!(
            mentions(&props["KmsMasterKeyId"], "DataKey"),
            "queue {id} must use DataKey"
        );
    }

    // Bucket: SSE-KMS with DataKey, private, and TLS required by policy.
    let bucket = properties("DataBucket");
    let rule = &bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0];
    assert_eq!(
        rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"].as_str(),
        Some("aws:kms")
    );
    assert!(mentions(
        &rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"],
        "DataKey"
    ));
    assert!(is_true(&rule["BucketKeyEnabled"]));
    let block = &bucket["PublicAccessBlockConfiguration"];
    for setting in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert!(
            is_true(&block[setting]),
            "DataBucket {setting} must be true"
        );
    }
    let denies_plain_http = of_type("AWS::S3::BucketPolicy")
        .into_iter()
        .filter(|(_, p)| target(&p["Bucket"]) == Some("DataBucket"))
        .flat_map(|(_, p)| {
            p["PolicyDocument"]["Statement"]
                .as_sequence()
                .into_iter()
                .flatten()
        })
        .any(|statement| {
            let secure = &statement["Condition"]["Bool"]["aws:SecureTransport"];
            statement["Effect"].as_str() == Some("Deny")
                && statement["Principal"].as_str() == Some("*")
                && statement["Action"].as_str() == Some("s3:*")
                && (secure.as_str() == Some("false") || secure.as_bool() == Some(false))
                && mentions(&statement["Resource"], "DataBucket")
        });
    assert!(
        denies_plain_http,
        "a DataBucket policy must deny every request without TLS"
    );

    // Secret and logs: under DataKey; the key policy lets CloudWatch Logs use it.
    for (id, props) in of_type("AWS::SecretsManager::Secret") {
        assert!(
            mentions(&props["KmsKeyId"], "DataKey"),
            "secret {id} must use DataKey"
        );
    }
    let log_groups = of_type("AWS::Logs::LogGroup");
    assert!(log_groups.len() >= FUNCTIONS.len());
    for (id, props) in &log_groups {
        assert!(
            mentions(&props["KmsKeyId"], "DataKey"),
            "log group {id} must use DataKey"
        );
    }
    let logs_may_use_data_key = properties("DataKey")["KeyPolicy"]["Statement"]
        .as_sequence()
        .expect("DataKey has a key policy")
        .iter()
        .any(|s| sub_text(&s["Principal"]["Service"]) == Some("logs.${AWS::Region}.amazonaws.com"));
    assert!(
        logs_may_use_data_key,
        "DataKey's policy must allow CloudWatch Logs"
    );

    // In transit: every URL the functions are given is HTTPS.
    let mut env_values = Vec::new();
    strings(
        &template()["Globals"]["Function"]["Environment"],
        &mut env_values,
    );
    for function in FUNCTIONS {
        strings(&properties(function)["Environment"], &mut env_values);
    }
    // A `!Ref Parameter` stands for the parameter's default, and what a deploy may set it to.
    let parameters = template()["Parameters"]
        .as_mapping()
        .expect("template.yaml has Parameters");
    let mut parameter_urls = 0;
    for name in env_values.clone() {
        let Some(parameter) = parameters.get(name) else {
            continue;
        };
        let default = parameter["Default"].as_str().unwrap_or_default();
        if default.contains("://") {
            env_values.push(default);
            let pattern = parameter["AllowedPattern"].as_str().unwrap_or_default();
            assert!(
                pattern.starts_with("^https://"),
                "parameter {name} is a URL: its AllowedPattern must require https://"
            );
            parameter_urls += 1;
        }
    }
    assert!(
        parameter_urls >= 2,
        "the Amazon endpoints are URL parameters"
    );
    for value in env_values.into_iter().filter(|v| v.contains("://")) {
        assert!(
            value.starts_with("https://"),
            "function environment URL {value:?} must be HTTPS"
        );
    }
}

#[test]
fn policy_a18_token_lifetimes() {
    fn minutes(validity: &Value, unit: &Value, what: &str) -> f64 {
        let amount = number(validity).unwrap_or_else(|| panic!("{what} validity must be set"));
        // Cognito's defaults differ per token (refresh: days), so the unit must be explicit.
        let per_unit = match unit.as_str() {
            Some("minutes") => 1.0,
            Some("hours") => 60.0,
            Some("days") => 1440.0,
            other => panic!("{what} needs an explicit TokenValidityUnits entry, found {other:?}"),
        };
        amount * per_unit
    }
    let clients = of_type("AWS::Cognito::UserPoolClient");
    assert!(
        !clients.is_empty(),
        "template.yaml declares a user pool client"
    );
    for (id, client) in clients {
        let units = &client["TokenValidityUnits"];
        let access = minutes(
            &client["AccessTokenValidity"],
            &units["AccessToken"],
            "access token",
        );
        let id_token = minutes(&client["IdTokenValidity"], &units["IdToken"], "id token");
        let refresh = minutes(
            &client["RefreshTokenValidity"],
            &units["RefreshToken"],
            "refresh token",
        );
        assert!(
            access <= 60.0,
            "{id}: access tokens live {access} min, at most 60"
        );
        assert!(
            id_token <= 60.0,
            "{id}: id tokens live {id_token} min, at most 60"
        );
        assert!(
            refresh <= 24.0 * 60.0,
            "{id}: sessions last {refresh} min, at most 24 h"
        );
        assert!(
            is_true(&client["EnableTokenRevocation"]),
            "{id}: sign-out must revoke tokens"
        );
    }
}

#[test]
fn policy_a15_api_throttling() {
    let apis = of_type("AWS::Serverless::HttpApi");
    assert!(!apis.is_empty(), "template.yaml declares an HTTP API");
    assert!(
        of_type("AWS::Serverless::Api").is_empty(),
        "REST APIs would need their own throttling test"
    );
    for (id, api) in &apis {
        let settings = &api["DefaultRouteSettings"];
        let burst = number(&settings["ThrottlingBurstLimit"]).unwrap_or(0.0);
        let rate = number(&settings["ThrottlingRateLimit"]).unwrap_or(0.0);
        assert!(
            (1.0..=1000.0).contains(&burst),
            "{id}: burst limit {burst} must be set and modest"
        );
        assert!(
            (1.0..=500.0).contains(&rate),
            "{id}: rate limit {rate} must be set and modest"
        );
    }
    // An HttpApi event without ApiId makes SAM create an implicit API with no throttling.
    let throttled: BTreeSet<&str> = apis.iter().map(|(id, _)| *id).collect();
    for (function, props) in of_type("AWS::Serverless::Function") {
        for (name, event) in props["Events"].as_mapping().into_iter().flatten() {
            if event["Type"].as_str() == Some("HttpApi") {
                let api = target(&event["Properties"]["ApiId"]);
                assert!(
                    api.is_some_and(|api| throttled.contains(api)),
                    "{function} event {name:?} must name a throttled HttpApi with ApiId"
                );
            }
        }
    }
}

#[test]
fn policy_a16_cognito_lockout_and_user_existence() {
    let pool = properties("UserPool");
    // Threat protection (risk-based blocking and notices) needs the PLUS tier and ENFORCED mode.
    assert_eq!(pool["UserPoolTier"].as_str(), Some("PLUS"));
    assert_eq!(
        pool["UserPoolAddOns"]["AdvancedSecurityMode"].as_str(),
        Some("ENFORCED")
    );
    let risk = of_type("AWS::Cognito::UserPoolRiskConfigurationAttachment")
        .into_iter()
        .find(|(_, r)| target(&r["UserPoolId"]) == Some("UserPool"))
        .map(|(_, r)| r)
        .expect("a risk configuration is attached to UserPool");
    assert_eq!(
        risk["AccountTakeoverRiskConfiguration"]["Actions"]["HighAction"]["EventAction"].as_str(),
        Some("BLOCK")
    );
    assert_eq!(
        risk["CompromisedCredentialsRiskConfiguration"]["Actions"]["EventAction"].as_str(),
        Some("BLOCK")
    );
    let password = &pool["Policies"]["PasswordPolicy"];
    assert!(number(&password["MinimumLength"]).unwrap_or(0.0) >= 12.0);
    for (id, client) in of_type("AWS::Cognito::UserPoolClient") {
        assert_eq!(
            client["PreventUserExistenceErrors"].as_str(),
            Some("ENABLED"),
            "{id} must not reveal whether an account exists"
        );
        assert!(
            !is_true(&client["GenerateSecret"]),
            "{id}: a browser client has no secret"
        );
    }
}

#[test]
fn policy_a11_tokens_under_their_own_key() {
    let token_key = resource("TokenKey");
    assert_eq!(token_key["Type"].as_str(), Some("AWS::KMS::Key"));
    let key = &token_key["Properties"];
    assert!(is_true(&key["EnableKeyRotation"]), "TokenKey rotates");
    // SYMMETRIC_DEFAULT is AES-256-GCM.
    assert!(matches!(
        key["KeySpec"].as_str(),
        None | Some("SYMMETRIC_DEFAULT")
    ));
    // Its key policy gives the account (IAM) control and nobody else.
    for statement in key["KeyPolicy"]["Statement"]
        .as_sequence()
        .expect("TokenKey has a policy")
    {
        let root = sub_text(&statement["Principal"]["AWS"]);
        assert_eq!(
            root,
            Some("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")
        );
    }

    // Nothing stores data under TokenKey, and only two roles may use it.
    let mut users = BTreeSet::new();
    for (id, r) in resources() {
        let id = id.as_str().expect("logical ids are strings");
        let kind = r["Type"].as_str().unwrap_or_default();
        // A function's environment names the key id; that grants nothing.
        if id != "TokenKey"
            && !matches!(kind, "AWS::Serverless::Function" | "AWS::KMS::Alias")
            && mentions(r, "TokenKey")
        {
            users.insert(id);
        }
    }
    // Each role, the integrations whose tokens it may use (encryption context `integration`),
    // and the operations: only the api stores tokens (OAuth callbacks).
    let allowed: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::from([
        (
            "ApiRole",
            (
                BTreeSet::from(["messenger_user", "messenger_page", "amazon_seller"]),
                BTreeSet::from(["kms:Encrypt", "kms:Decrypt"]),
            ),
        ),
        (
            "AgentReplyRole",
            (
                BTreeSet::from(["messenger_page"]),
                BTreeSet::from(["kms:Decrypt"]),
            ),
        ),
        (
            "OrderSyncRole",
            (
                BTreeSet::from(["amazon_seller"]),
                BTreeSet::from(["kms:Decrypt"]),
            ),
        ),
        (
            "SolicitationSenderRole",
            (
                BTreeSet::from(["amazon_seller"]),
                BTreeSet::from(["kms:Decrypt"]),
            ),
        ),
        (
            "SettlementImportRole",
            (
                BTreeSet::from(["amazon_seller"]),
                BTreeSet::from(["kms:Decrypt"]),
            ),
        ),
        // Meta's callbacks unsubscribe the app from a Page with its token, then delete it.
        (
            "DataDeletionRole",
            (
                BTreeSet::from(["messenger_page"]),
                BTreeSet::from(["kms:Decrypt"]),
            ),
        ),
        (
            "DataDeletionJobRole",
            (
                BTreeSet::from(["messenger_page"]),
                BTreeSet::from(["kms:Decrypt"]),
            ),
        ),
    ]);
    assert_eq!(users, allowed.keys().copied().collect::<BTreeSet<_>>());
    // The name the Amazon functions seal refresh tokens under.
    assert_eq!(ecomdrive_aws::vault::AMAZON_SELLER, "amazon_seller");
    for (function, role) in [
        ("ApiFunction", "ApiRole"),
        ("AgentReplyFunction", "AgentReplyRole"),
        ("OrderSyncFunction", "OrderSyncRole"),
        ("SolicitationSenderFunction", "SolicitationSenderRole"),
        ("SettlementImportFunction", "SettlementImportRole"),
    ] {
        assert_eq!(target(&properties(function)["Role"]), Some(role));
    }
    // No function has SAM `Policies` that could reach the key some other way.
    for (function, props) in of_type("AWS::Serverless::Function") {
        assert!(
            props["Policies"].is_null(),
            "{function} must use its explicit Role"
        );
        assert!(
            target(&props["Role"]).is_some(),
            "{function} has an explicit Role"
        );
    }
    // Each use is bound to a merchant by the encryption context.
    for (role, statement) in role_statements() {
        if mentions(&statement["Resource"], "TokenKey") {
            let keys =
                &statement["Condition"]["ForAnyValue:StringEquals"]["kms:EncryptionContextKeys"];
            let requires_merchant = keys.as_str() == Some("merchant_id")
                || keys
                    .as_sequence()
                    .is_some_and(|k| k.iter().any(|v| v.as_str() == Some("merchant_id")));
            assert!(
                requires_merchant,
                "{role}: TokenKey use must require the merchant_id context"
            );
            // And names the integrations: a role for Amazon jobs cannot open a Page token.
            let mut integrations = Vec::new();
            strings(
                &statement["Condition"]["StringEquals"]["kms:EncryptionContext:integration"],
                &mut integrations,
            );
            let (integrations_allowed, actions_allowed) = &allowed[role];
            assert_eq!(
                integrations.into_iter().collect::<BTreeSet<_>>(),
                *integrations_allowed,
                "{role}: TokenKey use must be limited (StringEquals) to its integrations"
            );
            assert_eq!(statement["Effect"].as_str(), Some("Allow"));
            for action in actions(statement) {
                assert!(
                    actions_allowed.contains(action),
                    "{role} may not {action} with TokenKey"
                );
            }
        }
    }
    // And DataKey is a different key.
    assert_eq!(resource("DataKey")["Type"].as_str(), Some("AWS::KMS::Key"));
}

#[test]
fn template_functions_use_known_runtime_and_build_method() {
    let functions = of_type("AWS::Serverless::Function");
    let ids: BTreeSet<&str> = functions.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        BTreeSet::from(FUNCTIONS),
        "the code depends on these logical ids"
    );

    // Binaries the workspace builds: every [[bin]] name in functions/*/Cargo.toml.
    let root = provision::repo_root();
    let mut binaries = BTreeSet::new();
    for entry in std::fs::read_dir(root.join("functions")).expect("functions/ exists") {
        let manifest = entry.expect("readable entry").path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let mut in_bin = false;
        for line in text.lines().map(str::trim) {
            // `name = "api"` inside a [[bin]] table.
            let name = line
                .strip_prefix("name")
                .and_then(|rest| rest.split('"').nth(1));
            if line.starts_with('[') {
                in_bin = line == "[[bin]]";
            } else if let (true, Some(name)) = (in_bin, name) {
                binaries.insert(name.to_string());
            }
        }
    }

    for (id, _) in &functions {
        // cfn-lint and sam validate do not catch a misspelled runtime or build method.
        assert_eq!(
            function_property(id, "Runtime").as_str(),
            Some("provided.al2023"),
            "{id}"
        );
        assert_eq!(
            function_property(id, "Handler").as_str(),
            Some("bootstrap"),
            "{id}"
        );
        assert_eq!(
            target(&function_property(id, "Architectures")[0]),
            Some("Architecture"),
            "{id}: the architecture is one template parameter"
        );
        let metadata = &resource(id)["Metadata"];
        assert_eq!(
            metadata["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{id}"
        );
        let binary = metadata["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} names its Binary"));
        assert!(
            binaries.contains(binary),
            "{id} builds binary {binary:?}, but no functions/*/Cargo.toml has a [[bin]] of that name \
             (found {binaries:?})"
        );
        for (name, event) in properties(id)["Events"].as_mapping().into_iter().flatten() {
            if event["Type"].as_str() == Some("SQS") {
                let types: Vec<&str> = event["Properties"]["FunctionResponseTypes"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                assert_eq!(types, ["ReportBatchItemFailures"], "{id} event {name:?}");
            }
        }
    }
}

#[test]
fn policy_a5_usage_logs_go_before_their_ip_addresses_must() {
    // The per-request usage records are these logs (the HTTP API's access log holds each caller's
    // IP address). CloudWatch cannot cut an IP down to its network, so a log goes whole before
    // the IP period ends, well before the usage-record period.
    use ecomdrive_core::retention::{IP_ADDRESS, Period, USAGE_RECORDS};
    let (Period::Days(ip_days), Period::Days(usage_days)) = (IP_ADDRESS, USAGE_RECORDS) else {
        panic!("both periods are in days");
    };
    let limit = ip_days.min(usage_days) as f64;
    let groups: BTreeMap<&str, &Value> = of_type("AWS::Logs::LogGroup").into_iter().collect();
    for (id, group) in &groups {
        let days = number(&group["RetentionInDays"]).unwrap_or(f64::INFINITY);
        assert!(
            days <= limit,
            "log group {id} keeps logs {days} days; they hold IP addresses (POLICY A5: {limit})"
        );
    }
    // Each function logs to a group of the template, named as Lambda would name it; otherwise
    // Lambda creates one that keeps logs forever.
    for function in FUNCTIONS {
        let group = target(&properties(function)["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{function} names its LoggingConfig.LogGroup"));
        let group_name = sub_text(
            &groups
                .get(group)
                .unwrap_or_else(|| panic!("{group} is a LogGroup"))["LogGroupName"],
        );
        let function_name = sub_text(&properties(function)["FunctionName"]);
        assert_eq!(
            group_name.map(str::to_string),
            function_name.map(|name| format!("/aws/lambda/{name}")),
            "{function}'s log group is /aws/lambda/<its name>"
        );
    }
    for (id, api) in of_type("AWS::Serverless::HttpApi") {
        let destination = target(&api["AccessLogSettings"]["DestinationArn"]);
        assert!(
            destination.is_some_and(|g| groups.contains_key(g)),
            "{id} logs to a template log group"
        );
    }
}

#[test]
fn template_pitr_shorter_than_deletion_promise() {
    let pitr = &properties("Table")["PointInTimeRecoverySpecification"];
    assert!(is_true(&pitr["PointInTimeRecoveryEnabled"]));
    let days = number(&pitr["RecoveryPeriodInDays"])
        .expect("RecoveryPeriodInDays is explicit (default is 35)");
    assert!(
        days < DELETION_PROMISE_DAYS as f64,
        "backups kept {days} days outlive the deletion promise"
    );

    let rules = properties("DataBucket")["LifecycleConfiguration"]["Rules"]
        .as_sequence()
        .expect("DataBucket has lifecycle rules");
    let noncurrent = rules
        .iter()
        .filter(|r| r["Status"].as_str() == Some("Enabled"))
        .filter_map(|r| number(&r["NoncurrentVersionExpiration"]["NoncurrentDays"]))
        .fold(f64::INFINITY, f64::min);
    assert!(
        noncurrent < DELETION_PROMISE_DAYS as f64,
        "old object versions kept {noncurrent} days"
    );
}

#[test]
fn every_dlq_has_an_alarm() {
    let queues: BTreeMap<&str, &Value> = of_type("AWS::SQS::Queue").into_iter().collect();
    let alarms = of_type("AWS::CloudWatch::Alarm");
    let mut dead_letter_queues = BTreeSet::new();
    for (id, queue) in &queues {
        let redrive = &queue["RedrivePolicy"];
        if redrive.is_null() {
            continue;
        }
        let dlq =
            target(&redrive["deadLetterTargetArn"]).unwrap_or_else(|| panic!("{id} names its DLQ"));
        assert!(
            queues.contains_key(dlq),
            "{id}'s DLQ {dlq} is a queue of the template"
        );
        let receives = QUEUES
            .iter()
            .find(|(queue, _, _)| queue == id)
            .map(|(_, declared_dlq, receives)| {
                assert_eq!(*declared_dlq, dlq, "{id}'s DLQ");
                *receives
            })
            .unwrap_or_else(|| panic!("{id} is listed in QUEUES"));
        assert_eq!(number(&redrive["maxReceiveCount"]), Some(receives), "{id}");
        assert_eq!(
            number(&queues[dlq]["MessageRetentionPeriod"]),
            Some(1_209_600.0),
            "{dlq} keeps 14 days"
        );
        dead_letter_queues.insert(dlq);
    }
    assert_eq!(
        dead_letter_queues,
        QUEUES
            .iter()
            .map(|(_, dlq, _)| *dlq)
            .collect::<BTreeSet<_>>(),
        "every queue of QUEUES has its DLQ"
    );
    for dlq in dead_letter_queues {
        let alarmed = alarms.iter().any(|(_, alarm)| {
            alarm["Namespace"].as_str() == Some("AWS/SQS")
                && alarm["MetricName"].as_str() == Some("ApproximateNumberOfMessagesVisible")
                && alarm["ComparisonOperator"].as_str() == Some("GreaterThanOrEqualToThreshold")
                && number(&alarm["Threshold"]) == Some(1.0)
                && alarm["Dimensions"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .any(|d| {
                        d["Name"].as_str() == Some("QueueName") && target(&d["Value"]) == Some(dlq)
                    })
                && alarm["AlarmActions"]
                    .as_sequence()
                    .is_some_and(|a| a.iter().any(|t| target(t) == Some("AlarmTopic")))
        });
        assert!(
            alarmed,
            "dead-letter queue {dlq} needs an alarm at one visible message to AlarmTopic"
        );
    }
}

#[test]
fn queue_visibility_covers_six_consumer_timeouts() {
    let mut consumed = 0;
    for (function, props) in of_type("AWS::Serverless::Function") {
        for (_, event) in props["Events"].as_mapping().into_iter().flatten() {
            if event["Type"].as_str() != Some("SQS") {
                continue;
            }
            let queue = target(&event["Properties"]["Queue"]).expect("SQS event names its queue");
            let timeout = number(function_property(function, "Timeout")).expect("a timeout");
            let window =
                number(&event["Properties"]["MaximumBatchingWindowInSeconds"]).unwrap_or(0.0);
            let visibility = number(&properties(queue)["VisibilityTimeout"]).unwrap_or(30.0);
            assert!(
                visibility >= 6.0 * timeout + window,
                "{queue} visibility {visibility}s < 6 x {function} timeout {timeout}s + batching window {window}s"
            );
            consumed += 1;
        }
    }
    assert_eq!(consumed, QUEUES.len(), "each queue has its consumer");
}

/// Each function runs with a role of its own (least privilege per function), and its error rate
/// has an alarm to the alarm topic.
#[test]
fn every_function_has_its_own_role_and_an_error_rate_alarm() {
    let mut roles = BTreeMap::new();
    for function in FUNCTIONS {
        let role = target(&properties(function)["Role"])
            .unwrap_or_else(|| panic!("{function} has an explicit Role"));
        assert_eq!(
            resource(role)["Type"].as_str(),
            Some("AWS::IAM::Role"),
            "{function}'s role {role}"
        );
        if let Some(other) = roles.insert(role, function) {
            panic!("{function} and {other} share the role {role}");
        }
        // The role writes only its own function's logs.
        let log_group = target(&properties(function)["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{function} names its log group"));
        for statement in statements_of(function) {
            if actions(statement).iter().any(|a| a.starts_with("logs:")) {
                assert!(
                    mentions(&statement["Resource"], log_group)
                        && !FUNCTIONS.iter().any(|other| {
                            *other != function && {
                                let theirs =
                                    target(&properties(other)["LoggingConfig"]["LogGroup"]);
                                theirs.is_some_and(|g| mentions(&statement["Resource"], g))
                            }
                        }),
                    "{function} writes only to {log_group}"
                );
            }
        }

        let alarmed = of_type("AWS::CloudWatch::Alarm")
            .into_iter()
            .any(|(_, alarm)| {
                let metrics = || alarm["Metrics"].as_sequence().into_iter().flatten();
                let on = |name: &str| {
                    metrics().any(|m| {
                        let metric = &m["MetricStat"]["Metric"];
                        metric["Namespace"].as_str() == Some("AWS/Lambda")
                            && metric["MetricName"].as_str() == Some(name)
                            && metric["Dimensions"]
                                .as_sequence()
                                .into_iter()
                                .flatten()
                                .any(|d| {
                                    d["Name"].as_str() == Some("FunctionName")
                                        && target(&d["Value"]) == Some(function)
                                })
                    })
                };
                let rate = metrics().any(|m| {
                    m["Expression"]
                        .as_str()
                        .is_some_and(|e| e.contains("errors / invocations"))
                        && is_true(&m["ReturnData"])
                });
                rate && on("Errors")
                    && on("Invocations")
                    && alarm["AlarmActions"]
                        .as_sequence()
                        .is_some_and(|a| a.iter().any(|t| target(t) == Some("AlarmTopic")))
            });
        assert!(
            alarmed,
            "{function} needs an error-rate alarm to AlarmTopic"
        );
    }
}

/// App secrets are read only by the functions that talk to their platform, and platform tokens
/// (TokenKey) are out of reach of the scheduler, which never talks to Amazon.
#[test]
fn app_secrets_reach_only_the_functions_of_their_platform() {
    let readers = |secret: &str| -> BTreeSet<&str> {
        role_statements()
            .into_iter()
            .filter(|(_, s)| mentions(&s["Resource"], secret))
            .map(|(role, s)| {
                assert_eq!(
                    actions(s),
                    ["secretsmanager:GetSecretValue"],
                    "{role} only reads {secret}"
                );
                role
            })
            .collect()
    };
    assert_eq!(
        readers("MetaAppSecret"),
        BTreeSet::from([
            "ApiRole",
            "MessengerWebhookRole",
            "AgentReplyRole",
            // Meta's data deletion callbacks are signed with the app secret; both deletion
            // functions unsubscribe Pages (appsecret_proof).
            "DataDeletionRole",
            "DataDeletionJobRole"
        ])
    );
    assert_eq!(
        readers("DeletionFormSecret"),
        BTreeSet::from(["DataDeletionRole"])
    );
    assert_eq!(
        readers("AmazonAppSecret"),
        BTreeSet::from([
            "ApiRole",
            "OrderSyncRole",
            "SolicitationSenderRole",
            "SettlementImportRole"
        ])
    );
    // No statement reaches secrets other than by name.
    for (role, statement) in role_statements() {
        if actions(statement)
            .iter()
            .any(|a| a.starts_with("secretsmanager:"))
        {
            assert!(
                mentions(&statement["Resource"], "MetaAppSecret")
                    || mentions(&statement["Resource"], "AmazonAppSecret")
                    || mentions(&statement["Resource"], "DeletionFormSecret"),
                "{role}: secretsmanager access must name its secret"
            );
        }
    }
    // The Amazon app secret holds the LWA credentials as placeholders only.
    let secret = properties("AmazonAppSecret");
    let value: serde_json::Value = serde_json::from_str(
        secret["SecretString"]
            .as_str()
            .expect("AmazonAppSecret has a placeholder SecretString"),
    )
    .expect("the placeholder is JSON");
    let fields: BTreeSet<&str> = value
        .as_object()
        .expect("an object")
        .iter()
        .map(|(field, placeholder)| {
            assert!(
                placeholder
                    .as_str()
                    .is_some_and(|p| p.starts_with("REPLACE_ME")),
                "AmazonAppSecret.{field} is a placeholder"
            );
            field.as_str()
        })
        .collect();
    assert_eq!(
        fields,
        BTreeSet::from(["application_id", "client_id", "client_secret"])
    );
    assert!(
        secret["Description"]
            .as_str()
            .is_some_and(|d| d.contains("180 days") && d.contains("5 minutes")),
        "AmazonAppSecret's description says how rotation works"
    );

    // The scheduler: no platform token, no app secret, DataKey only through SQS.
    for statement in statements_of("SolicitationSchedulerFunction") {
        for forbidden in ["TokenKey", "MetaAppSecret", "AmazonAppSecret"] {
            assert!(
                !mentions(statement, forbidden),
                "the scheduler may not reach {forbidden}"
            );
        }
        assert!(
            !actions(statement)
                .iter()
                .any(|a| a.starts_with("secretsmanager:")),
            "the scheduler reads no secret"
        );
        if actions(statement).iter().any(|a| a.starts_with("kms:")) {
            assert!(mentions(&statement["Resource"], "DataKey"));
            assert!(
                sub_text(&statement["Condition"]["StringEquals"]["kms:ViaService"])
                    == Some("sqs.${AWS::Region}.amazonaws.com"),
                "the scheduler uses DataKey only through SQS"
            );
        }
    }
    assert!(
        own_env("SolicitationSchedulerFunction")
            .keys()
            .filter_map(Value::as_str)
            .all(|name| !name.starts_with("AMAZON_")),
        "the scheduler never talks to Amazon"
    );
}

/// A function is given the id of a queue or secret only if its role may use it, and the
/// functions that talk to Amazon get the whole Amazon configuration.
#[test]
fn functions_are_given_what_their_roles_may_use() {
    for function in FUNCTIONS {
        let statements = statements_of(function);
        let may = |action: &str, logical_id: &str| {
            statements.iter().any(|s| {
                s["Effect"].as_str() == Some("Allow")
                    && actions(s).contains(&action)
                    && mentions(&s["Resource"], logical_id)
            })
        };
        let env = own_env(function);
        for (name, value) in env {
            let name = name.as_str().expect("variable names are strings");
            let Some(id) = target(value) else { continue };
            match resource_type(id) {
                Some("AWS::SQS::Queue") => assert!(
                    may("sqs:SendMessage", id),
                    "{function} is given {name} but may not send to {id}"
                ),
                Some("AWS::SecretsManager::Secret") => assert!(
                    may("secretsmanager:GetSecretValue", id),
                    "{function} is given {name} but may not read {id}"
                ),
                _ => {}
            }
        }
        let amazon: BTreeSet<&str> = env
            .keys()
            .filter_map(Value::as_str)
            .filter(|name| name.starts_with("AMAZON_"))
            .collect();
        assert!(
            amazon.is_empty()
                || amazon
                    == BTreeSet::from([
                        "AMAZON_SECRET_ID",
                        "AMAZON_LWA_TOKEN_URL",
                        "AMAZON_SPAPI_BASE",
                        "AMAZON_CONSENT_BASE",
                        "AMAZON_MARKETPLACE_ID",
                    ]),
            "{function} gets all of the Amazon configuration or none: {amazon:?}"
        );
    }
    let talks_to_amazon: BTreeSet<&str> = FUNCTIONS
        .into_iter()
        .filter(|f| own_env(f).contains_key("AMAZON_SECRET_ID"))
        .collect();
    assert_eq!(
        talks_to_amazon,
        BTreeSet::from([
            "ApiFunction",
            "OrderSyncFunction",
            "SolicitationSenderFunction",
            "SettlementImportFunction"
        ])
    );
    let marketplace = &template()["Parameters"]["AmazonMarketplaceId"];
    assert_eq!(
        marketplace["Default"].as_str(),
        Some("A21TJRUUN4KGV"),
        "amazon.in"
    );
}

fn resource_type(logical_id: &str) -> Option<&'static str> {
    resources().get(logical_id)?["Type"].as_str()
}

/// The EventBridge schedules of the Amazon jobs, and how their queues are consumed.
#[test]
fn amazon_jobs_run_on_their_schedules_and_queues() {
    let schedules = |function: &str| -> Vec<&'static str> {
        properties(function)["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter(|(_, e)| e["Type"].as_str() == Some("Schedule"))
            .map(|(name, e)| {
                let p = &e["Properties"];
                assert!(
                    p["Enabled"].is_null() || is_true(&p["Enabled"]),
                    "{function} schedule {name:?} is enabled"
                );
                assert!(
                    p["State"].is_null() || p["State"].as_str() == Some("ENABLED"),
                    "{function} schedule {name:?} is enabled"
                );
                p["Schedule"].as_str().expect("a schedule expression")
            })
            .collect()
    };
    assert_eq!(schedules("OrderSyncFunction"), ["rate(1 hour)"]);
    // 03:30 UTC is 09:00 in India (UTC+05:30, no daylight saving).
    assert_eq!(
        schedules("SolicitationSchedulerFunction"),
        ["cron(30 3 * * ? *)"]
    );
    assert!(schedules("SolicitationSenderFunction").is_empty());
    assert_eq!(schedules("SettlementImportFunction"), ["rate(6 hours)"]);

    let sqs = |function: &str| -> Vec<&'static Value> {
        properties(function)["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter(|(_, e)| e["Type"].as_str() == Some("SQS"))
            .map(|(_, e)| &e["Properties"])
            .collect()
    };
    // Each job function, its queue, the largest batch and the longest timeout it may have.
    for (function, queue, max_batch, max_timeout) in [
        ("OrderSyncFunction", "OrderSyncQueue", 5.0, 300.0),
        (
            "SolicitationSchedulerFunction",
            "SolicitationPlanQueue",
            5.0,
            300.0,
        ),
        (
            "SolicitationSenderFunction",
            "SolicitationsQueue",
            5.0,
            60.0,
        ),
        // One settlement job (a merchant's reports, or one uploaded file) per invocation, with
        // Lambda's longest timeout: large files take minutes.
        (
            "SettlementImportFunction",
            "SettlementImportQueue",
            1.0,
            900.0,
        ),
    ] {
        let events = sqs(function);
        assert_eq!(events.len(), 1, "{function} consumes one queue");
        let event = events[0];
        assert_eq!(target(&event["Queue"]), Some(queue), "{function}");
        let batch = number(&event["BatchSize"]).expect("an explicit BatchSize");
        assert!(
            (1.0..=max_batch).contains(&batch),
            "{function} batch {batch}"
        );
        // The consumer may receive, delete and hand back; nothing else reads the queue.
        let consumers: BTreeSet<&str> = role_statements()
            .into_iter()
            .filter(|(_, s)| {
                actions(s).contains(&"sqs:ReceiveMessage") && mentions(&s["Resource"], queue)
            })
            .map(|(role, _)| role)
            .collect();
        assert_eq!(
            consumers,
            BTreeSet::from([target(&properties(function)["Role"]).expect("a role")]),
            "only {function} consumes {queue}"
        );
        let timeout = number(&properties(function)["Timeout"]).expect("an explicit Timeout");
        assert!(
            timeout <= max_timeout,
            "{function} timeout {timeout}s > {max_timeout}s"
        );
    }
    let sender = sqs("SolicitationSenderFunction")[0];
    assert_eq!(number(&sender["BatchSize"]), Some(5.0));
    assert_eq!(
        number(&sender["MaximumBatchingWindowInSeconds"]),
        Some(10.0)
    );
    assert_eq!(
        number(&sender["ScalingConfig"]["MaximumConcurrency"]),
        Some(5.0),
        "few senders at a time: the Solicitations API paces each seller"
    );
    // Lambda accepts 2..=1000 for an SQS source's maximum concurrency.
    for function in FUNCTIONS {
        for event in sqs(function) {
            if let Some(max) = number(&event["ScalingConfig"]["MaximumConcurrency"]) {
                assert!((2.0..=1000.0).contains(&max), "{function}: {max}");
            }
        }
    }
}

/// settlement-import has room for large files (Lambda's longest timeout, /tmp for the streamed
/// documents) and only what a settlement job needs: it writes and sums settlements but never
/// deletes items or scans the table, reaches only its own queue, only Amazon seller tokens and
/// only merchants' objects.
#[test]
fn settlement_import_has_room_for_large_files_and_least_privilege() {
    let function = "SettlementImportFunction";
    let props = properties(function);
    assert_eq!(number(&props["Timeout"]), Some(900.0));
    assert_eq!(number(&props["MemorySize"]), Some(1024.0));
    assert_eq!(
        number(&props["EphemeralStorage"]["Size"]),
        Some(4096.0),
        "documents are streamed to /tmp and read twice"
    );

    // Its resources: its own queue (fan-out), and from Globals the table, token key and bucket.
    let env = own_env(function);
    let globals = &template()["Globals"]["Function"]["Environment"]["Variables"];
    for (name, id) in [
        ("SETTLEMENT_IMPORT_QUEUE_URL", "SettlementImportQueue"),
        ("AMAZON_SECRET_ID", "AmazonAppSecret"),
        ("TABLE_NAME", "Table"),
        ("TOKEN_KEY_ID", "TokenKey"),
        ("DATA_BUCKET", "DataBucket"),
    ] {
        let value = env.get(name).unwrap_or(&globals[name]);
        assert_eq!(target(value), Some(id), "{function} gets {name}");
    }

    let statements = statements_of(function);
    for statement in &statements {
        assert_eq!(statement["Effect"].as_str(), Some("Allow"));
        for action in actions(statement) {
            assert!(
                !action.contains('*'),
                "{function}: wildcard action {action}"
            );
        }
    }
    let actions_on = |prefix: &str| -> BTreeSet<&'static str> {
        statements
            .iter()
            .copied()
            .flat_map(actions)
            .filter(|a| a.starts_with(prefix))
            .collect()
    };

    // Table: these five, on the table and its indexes; never DeleteItem or Scan.
    assert_eq!(
        actions_on("dynamodb:"),
        BTreeSet::from([
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:BatchWriteItem",
        ])
    );
    for statement in &statements {
        if actions(statement)
            .iter()
            .any(|a| a.starts_with("dynamodb:"))
        {
            let resources: Vec<&Value> = match statement["Resource"].as_sequence() {
                Some(items) => items.iter().collect(),
                None => vec![&statement["Resource"]],
            };
            assert!(resources.iter().all(|r| mentions(r, "Table")));
            assert!(
                resources
                    .iter()
                    .any(|r| sub_text(r) == Some("${Table.Arn}/index/*")),
                "{function} queries the table's indexes"
            );
        }
    }

    // Queue: consumes and fans out to its own queue, no other.
    assert_eq!(
        actions_on("sqs:"),
        BTreeSet::from([
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
            "sqs:SendMessage",
        ])
    );
    for statement in &statements {
        if actions(statement).iter().any(|a| a.starts_with("sqs:")) {
            assert_eq!(
                target(&statement["Resource"]),
                Some("SettlementImportQueue"),
                "{function} uses only its own queue"
            );
        }
    }

    // Bucket: archives reports, reads and deletes uploads, under merchants/ only.
    assert_eq!(
        actions_on("s3:"),
        BTreeSet::from(["s3:PutObject", "s3:GetObject", "s3:DeleteObject"])
    );
    for statement in &statements {
        if actions(statement).iter().any(|a| a.starts_with("s3:")) {
            assert_eq!(
                sub_text(&statement["Resource"]),
                Some("${DataBucket.Arn}/merchants/*")
            );
        }
    }

    // Secrets: the Amazon app's only; KMS: seller tokens (see policy_a11) and DataKey through
    // the services that store under it.
    assert_eq!(
        actions_on("secretsmanager:"),
        BTreeSet::from(["secretsmanager:GetSecretValue"])
    );
    assert!(
        statements.iter().all(|s| !mentions(s, "MetaAppSecret")),
        "{function} never talks to Meta"
    );
    assert_eq!(
        actions_on("kms:"),
        BTreeSet::from(["kms:Decrypt", "kms:GenerateDataKey"])
    );
    for statement in &statements {
        if mentions(&statement["Resource"], "DataKey") {
            assert!(
                !via_services(statement).is_empty(),
                "{function} uses DataKey only through its services"
            );
        }
    }
    let prefixes: BTreeSet<&str> = statements
        .iter()
        .copied()
        .flat_map(actions)
        .filter_map(|a| a.split(':').next())
        .collect();
    assert_eq!(
        prefixes,
        BTreeSet::from(["logs", "sqs", "dynamodb", "kms", "secretsmanager", "s3"])
    );
}

/// The `kms:ViaService` values (`!Sub` texts) a statement is limited to.
fn via_services(statement: &Value) -> Vec<&str> {
    let via = &statement["Condition"]["StringEquals"]["kms:ViaService"];
    match via.as_sequence() {
        Some(items) => items.iter().filter_map(sub_text).collect(),
        None => sub_text(via).into_iter().collect(),
    }
}

/// Objects are merchants' data (their key starts with `merchants/<merchant_id>/`): no role
/// reaches the bucket elsewhere, and a role that writes or reads objects may use DataKey through
/// S3 for it (the bucket encrypts with DataKey; a presigned PUT is signed by the api's role).
#[test]
fn roles_reach_only_merchant_objects_and_data_key_through_s3() {
    let through_s3 = "s3.${AWS::Region}.amazonaws.com";
    let mut object_roles = BTreeSet::new();
    for (role, statement) in role_statements() {
        let s3: Vec<&str> = actions(statement)
            .into_iter()
            .filter(|a| a.starts_with("s3:"))
            .collect();
        if s3.is_empty() {
            continue;
        }
        if s3 == ["s3:ListBucket"] {
            // Listing names the bucket itself; the prefix condition keeps it to merchants' objects.
            assert_eq!(target(&statement["Resource"]), Some("DataBucket"), "{role}");
            let mut prefixes = Vec::new();
            strings(
                &statement["Condition"]["StringLike"]["s3:prefix"],
                &mut prefixes,
            );
            assert!(
                !prefixes.is_empty()
                    && prefixes
                        .iter()
                        .all(|p| ["merchants/*", "exports/*"].contains(p)),
                "{role} lists only merchants' objects and exports: {prefixes:?}"
            );
            continue;
        }
        object_roles.insert(role);
        let resources: Vec<&Value> = match statement["Resource"].as_sequence() {
            Some(items) => items.iter().collect(),
            None => vec![&statement["Resource"]],
        };
        for resource in resources {
            // Exports are a merchant's data too, under their own prefix so that one lifecycle
            // rule expires them.
            assert!(
                sub_text(resource).is_some_and(|r| r.starts_with("${DataBucket.Arn}/merchants/")
                    || r == "${DataBucket.Arn}/exports/*"),
                "{role}: {s3:?} must be limited to merchants' objects and exports"
            );
        }
        let may_kms = |action: &str| {
            role_statements().into_iter().any(|(r, s)| {
                r == role
                    && s["Effect"].as_str() == Some("Allow")
                    && mentions(&s["Resource"], "DataKey")
                    && actions(s).contains(&action)
                    && via_services(s).contains(&through_s3)
            })
        };
        if s3.contains(&"s3:PutObject") {
            assert!(
                may_kms("kms:GenerateDataKey"),
                "{role} writes objects: it needs kms:GenerateDataKey on DataKey through S3"
            );
        }
        if s3.contains(&"s3:GetObject") {
            assert!(
                may_kms("kms:Decrypt"),
                "{role} reads objects: it needs kms:Decrypt on DataKey through S3"
            );
        }
    }
    for role in [
        "ApiRole",
        "MessengerIngestRole",
        "SettlementImportRole",
        "DataExportRole",
        "DataDeletionJobRole",
        "RetentionSweeperRole",
    ] {
        assert!(
            object_roles.contains(role),
            "{role} stores or deletes objects"
        );
    }
}

/// The api queues settlement imports and signs the web app's upload URLs (a presigned PUT is
/// allowed only if the signer may PutObject itself).
#[test]
fn api_may_queue_settlement_imports_and_presign_uploads() {
    assert_eq!(
        target(&own_env("ApiFunction")["SETTLEMENT_IMPORT_QUEUE_URL"]),
        Some("SettlementImportQueue")
    );
    let statements = statements_of("ApiFunction");
    let may = |action: &str, check: &dyn Fn(&Value) -> bool| {
        statements.iter().any(|s| {
            s["Effect"].as_str() == Some("Allow")
                && actions(s).contains(&action)
                && check(&s["Resource"])
        })
    };
    assert!(may("sqs:SendMessage", &|r: &Value| target(r)
        == Some("SettlementImportQueue")));
    assert!(may("s3:PutObject", &|r: &Value| sub_text(r)
        == Some("${DataBucket.Arn}/merchants/*")));
}

/// The settlement, COGS, P&L and reconciliation routes of the web app reach the api behind the
/// Cognito authorizer (through its `/v1` catch-all, or explicit routes if it ever has them), and
/// no other function or public route answers them.
#[test]
fn settlement_routes_reach_the_api_behind_cognito() {
    const ROUTES: [(&str, &str); 12] = [
        ("POST", "/v1/merchants/m/settlements"),
        ("GET", "/v1/merchants/m/settlements"),
        ("GET", "/v1/merchants/m/settlements/s"),
        ("POST", "/v1/merchants/m/settlements/uploads"),
        ("GET", "/v1/merchants/m/settlements/uploads/u"),
        ("POST", "/v1/merchants/m/settlements/uploads/u/import"),
        ("PUT", "/v1/merchants/m/cogs"),
        ("GET", "/v1/merchants/m/cogs"),
        ("GET", "/v1/merchants/m/pnl"),
        ("GET", "/v1/merchants/m/pnl/skus"),
        ("GET", "/v1/merchants/m/pnl/orders"),
        ("GET", "/v1/merchants/m/reconciliation"),
    ];
    /// API Gateway's matching: `{name}` is one segment, a trailing `{name+}` one or more.
    fn matches(pattern: &str, path: &str) -> bool {
        let pattern: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
        let path: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        for (i, part) in pattern.iter().enumerate() {
            if part.starts_with('{') && part.ends_with("+}") {
                return i == pattern.len() - 1 && path.len() > i;
            }
            let Some(segment) = path.get(i) else {
                return false;
            };
            if !(part.starts_with('{') && part.ends_with('}')) && part != segment {
                return false;
            }
        }
        pattern.len() == path.len()
    }
    let mut routes = Vec::new();
    for (function, props) in of_type("AWS::Serverless::Function") {
        for (_, event) in props["Events"].as_mapping().into_iter().flatten() {
            if event["Type"].as_str() == Some("HttpApi") {
                let p = &event["Properties"];
                routes.push((
                    function,
                    p["Method"].as_str().expect("an explicit Method"),
                    p["Path"].as_str().expect("an explicit Path"),
                    p["Auth"]["Authorizer"].as_str(),
                ));
            }
        }
    }
    for (method, path) in ROUTES {
        let answering: Vec<_> = routes
            .iter()
            .filter(|(_, m, pattern, _)| (*m == "ANY" || *m == method) && matches(pattern, path))
            .collect();
        assert!(!answering.is_empty(), "no route serves {method} {path}");
        for (function, _, pattern, authorizer) in answering {
            assert_eq!(*function, "ApiFunction", "{method} {path} via {pattern}");
            assert!(
                matches!(authorizer, None | Some("CognitoJwt")),
                "{method} {path} via {pattern} must need a Cognito token"
            );
        }
    }
}

/// The web app PUTs large settlement files straight to the bucket with a presigned URL: CORS
/// allows exactly that (PUT, from the app's origin), and multipart uploads a browser abandons
/// are cleaned up after a day. The bucket stays private (policy_a13 test).
#[test]
fn data_bucket_takes_presigned_uploads_from_the_web_app_only() {
    let bucket = properties("DataBucket");
    let rules = bucket["CorsConfiguration"]["CorsRules"]
        .as_sequence()
        .expect("DataBucket has CORS rules");
    assert!(!rules.is_empty());
    for rule in rules {
        let methods: Vec<&str> = rule["AllowedMethods"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(methods, ["PUT"], "the browser only uploads");
        let origins = rule["AllowedOrigins"]
            .as_sequence()
            .expect("AllowedOrigins is a list");
        assert!(!origins.is_empty());
        for origin in origins {
            assert_eq!(
                target(origin),
                Some("SpaOrigin"),
                "only the web app's origin, never a wildcard"
            );
        }
    }
    let aborts_after = properties("DataBucket")["LifecycleConfiguration"]["Rules"]
        .as_sequence()
        .expect("DataBucket has lifecycle rules")
        .iter()
        .filter(|r| r["Status"].as_str() == Some("Enabled"))
        .filter_map(|r| number(&r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]))
        .fold(f64::INFINITY, f64::min);
    assert_eq!(
        aborts_after, 1.0,
        "incomplete multipart uploads are aborted after 1 day"
    );
}

/// Every route of the HTTP API needs a Cognito token except an explicit list of public ones
/// (health, API document, platform callbacks and webhooks, each verified by its function).
#[test]
fn only_the_listed_routes_are_public() {
    let api = properties("HttpApi");
    assert_eq!(
        api["Auth"]["DefaultAuthorizer"].as_str(),
        Some("CognitoJwt"),
        "routes are authorized unless they opt out"
    );
    let mut public = BTreeSet::new();
    let mut authorized = BTreeSet::new();
    for (function, props) in of_type("AWS::Serverless::Function") {
        for (_, event) in props["Events"].as_mapping().into_iter().flatten() {
            if event["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let p = &event["Properties"];
            let route = (
                p["Method"].as_str().expect("an explicit Method"),
                p["Path"].as_str().expect("an explicit Path"),
                function,
            );
            match p["Auth"]["Authorizer"].as_str() {
                Some("NONE") => public.insert(route),
                None | Some("CognitoJwt") => authorized.insert(route),
                Some(other) => panic!("{route:?}: unknown authorizer {other}"),
            };
        }
    }
    assert_eq!(
        public,
        BTreeSet::from([
            ("GET", "/healthz", "ApiFunction"),
            ("GET", "/openapi.json", "ApiFunction"),
            ("GET", "/oauth/messenger/callback", "ApiFunction"),
            ("GET", "/oauth/amazon/callback", "ApiFunction"),
            ("GET", "/webhooks/messenger", "MessengerWebhookFunction"),
            ("POST", "/webhooks/messenger", "MessengerWebhookFunction"),
            // The public data-deletion form and Meta's callbacks (POLICY E15).
            ("GET", "/data-deletion", "DataDeletionFunction"),
            ("POST", "/data-deletion", "DataDeletionFunction"),
            ("GET", "/data-deletion/confirm", "DataDeletionFunction"),
            (
                "GET",
                "/data-deletion/status/{confirmation_code}",
                "DataDeletionFunction"
            ),
            ("POST", "/data-deletion/facebook", "DataDeletionFunction"),
            (
                "POST",
                "/data-deletion/facebook/deauthorize",
                "DataDeletionFunction"
            ),
        ])
    );
    assert!(authorized.contains(&("ANY", "/v1/{proxy+}", "ApiFunction")));
    for (_, path, _) in &public {
        assert!(!path.starts_with("/v1"), "{path} is under /v1 and public");
    }
}

// ------------------------------------------------------------------ against the emulator

/// The fake Amazon app credentials this module's provisioning passes.
fn fake_amazon_secret() -> serde_json::Value {
    serde_json::json!({
        "application_id": "amzn1.sp.solution.local-fake",
        "client_id": "amzn1.application-oa2-client.local-fake",
        "client_secret": "local-fake-lwa-client-secret",
    })
}

/// Provisions every resource of template.yaml under a unique prefix, passing a value for each
/// secret it declares.
async fn provisioned(sdk: &aws_config::SdkConfig) -> provision::Resources {
    let prefix = format!("t{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
    let secrets = BTreeMap::from([
        ("MetaAppSecret".to_string(), support::fake_meta_secret()),
        ("AmazonAppSecret".to_string(), fake_amazon_secret()),
        (
            "DeletionFormSecret".to_string(),
            serde_json::json!({ "form_signing_key": "local-fake-form-key" }),
        ),
    ]);
    let template = provision::template_path(&provision::repo_root());
    provision::provision(sdk, &template, &prefix, &secrets)
        .await
        .unwrap_or_else(|error| panic!("provisioning from {} failed: {error}", template.display()))
}

#[tokio::test]
async fn provisioning_creates_what_the_template_declares() {
    let sdk = support::sdk().await;
    let created = provisioned(&sdk).await;

    // Table: keys, GSI1, TTL on expires_at.
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = dynamodb
        .describe_table()
        .table_name(&created.table)
        .send()
        .await
        .expect("the table exists");
    let table = table.table().expect("a description");
    let index = table
        .global_secondary_indexes()
        .iter()
        .find(|i| i.index_name() == Some("GSI1"))
        .expect("GSI1 exists");
    let index_keys: Vec<&str> = index
        .key_schema()
        .iter()
        .map(|k| k.attribute_name())
        .collect();
    assert_eq!(index_keys, ["GSI1PK", "GSI1SK"]);
    let ttl = dynamodb
        .describe_time_to_live()
        .table_name(&created.table)
        .send()
        .await
        .expect("TTL is described");
    let ttl = ttl.time_to_live_description().expect("a TTL description");
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(
        ttl.time_to_live_status().map(|s| s.as_str()),
        Some("ENABLED")
    );

    // Queues: redrive points at the matching DLQ; the visibility timeout is the template's.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let attributes = |url: String| {
        let sqs = sqs.clone();
        async move {
            sqs.get_queue_attributes()
                .queue_url(url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                .send()
                .await
                .expect("queue attributes")
                .attributes()
                .cloned()
                .unwrap_or_default()
        }
    };
    use aws_sdk_sqs::types::QueueAttributeName as Q;
    for (queue, dlq, logical) in [
        (
            &created.inbound_queue_url,
            &created.inbound_dlq_url,
            "InboundQueue",
        ),
        (
            &created.replies_queue_url,
            &created.replies_dlq_url,
            "RepliesQueue",
        ),
        (
            &created.order_sync_queue_url,
            &created.order_sync_dlq_url,
            "OrderSyncQueue",
        ),
        (
            &created.solicitation_plan_queue_url,
            &created.solicitation_plan_dlq_url,
            "SolicitationPlanQueue",
        ),
        (
            &created.solicitations_queue_url,
            &created.solicitations_dlq_url,
            "SolicitationsQueue",
        ),
        (
            &created.settlement_import_queue_url,
            &created.settlement_import_dlq_url,
            "SettlementImportQueue",
        ),
    ] {
        let main = attributes(queue.clone()).await;
        let dead = attributes(dlq.clone()).await;
        let redrive: serde_json::Value =
            serde_json::from_str(&main[&Q::RedrivePolicy]).expect("redrive policy is JSON");
        assert_eq!(
            redrive["deadLetterTargetArn"].as_str(),
            Some(dead[&Q::QueueArn].as_str())
        );
        let receives =
            number(&properties(logical)["RedrivePolicy"]["maxReceiveCount"]).expect("declared");
        assert_eq!(
            redrive["maxReceiveCount"].to_string().trim_matches('"'),
            format!("{receives}"),
            "{logical}"
        );
        let declared = number(&properties(logical)["VisibilityTimeout"]).expect("declared");
        assert_eq!(main[&Q::VisibilityTimeout], format!("{declared}"));
    }

    // TokenKey: encryption bound to a merchant by the encryption context.
    let kms = aws_sdk_kms::Client::new(&sdk);
    let sealed = kms
        .encrypt()
        .key_id(&created.token_key_id)
        .plaintext(aws_sdk_kms::primitives::Blob::new(
            b"local-fake-page-token".to_vec(),
        ))
        .encryption_context("merchant_id", "m1")
        .send()
        .await
        .expect("encrypt");
    let ciphertext = sealed.ciphertext_blob().expect("ciphertext").clone();
    let opened = kms
        .decrypt()
        .ciphertext_blob(ciphertext.clone())
        .encryption_context("merchant_id", "m1")
        .send()
        .await
        .expect("decrypt with the right context");
    assert_eq!(
        opened.plaintext().expect("plaintext").as_ref(),
        b"local-fake-page-token"
    );
    let wrong = kms
        .decrypt()
        .ciphertext_blob(ciphertext)
        .encryption_context("merchant_id", "m2")
        .send()
        .await;
    assert!(
        wrong.is_err(),
        "another merchant's context must not decrypt"
    );
    assert_ne!(created.token_key_id, created.data_key_id);

    // Bucket (versioned) and secret (the caller's value).
    let s3 = ecomdrive_local::emulator::s3_client(&sdk);
    // (moto's GetBucketVersioning answer does not parse in the Rust SDK, so versioning is
    // checked by its effect: each write of one key gets its own version id.)
    let mut versions = BTreeSet::new();
    for body in ["first", "second"] {
        let put = s3
            .put_object()
            .bucket(&created.bucket)
            .key("merchants/m1/probe.txt")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(
                body.as_bytes(),
            ))
            .send()
            .await
            .expect("the bucket takes objects");
        let version = put
            .version_id()
            .expect("a versioned bucket returns a version id");
        assert_ne!(version, "null", "versioning is enabled");
        versions.insert(version.to_string());
    }
    assert_eq!(versions.len(), 2, "two writes keep two versions");
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let secret = secrets
        .get_secret_value()
        .secret_id(&created.meta_secret_id)
        .send()
        .await
        .expect("the secret exists");
    let secret: serde_json::Value =
        serde_json::from_str(secret.secret_string().expect("a string")).expect("JSON");
    assert_eq!(secret, support::fake_meta_secret());
    let amazon = secrets
        .get_secret_value()
        .secret_id(&created.amazon_secret_id)
        .send()
        .await
        .expect("the Amazon app secret exists");
    let amazon: serde_json::Value =
        serde_json::from_str(amazon.secret_string().expect("a string")).expect("JSON");
    assert_eq!(amazon, fake_amazon_secret());
    // A secret the caller gives no value for is refused by name, not created empty.
    let without_amazon =
        BTreeMap::from([("MetaAppSecret".to_string(), support::fake_meta_secret())]);
    let refused = provision::provision(
        &sdk,
        &provision::template_path(&provision::repo_root()),
        &format!("t{}", ulid::Ulid::new().to_string().to_ascii_lowercase()),
        &without_amazon,
    )
    .await
    .expect_err("AmazonAppSecret needs a value");
    assert!(refused.to_string().contains("AmazonAppSecret"), "{refused}");

    // Names carry the prefix, so a second copy lives beside the first.
    let other = provisioned(&sdk).await;
    assert_ne!(other.table, created.table);
    assert_eq!(created.all.get("Table"), Some(&created.table));
    let env: BTreeMap<&str, String> = created.function_env().into_iter().collect();
    assert_eq!(env["INBOUND_QUEUE_URL"], created.inbound_queue_url);
    assert_eq!(env["ORDER_SYNC_QUEUE_URL"], created.order_sync_queue_url);
    assert_eq!(
        env["SOLICITATION_PLAN_QUEUE_URL"],
        created.solicitation_plan_queue_url
    );
    assert_eq!(
        env["SOLICITATIONS_QUEUE_URL"],
        created.solicitations_queue_url
    );
    assert_eq!(
        env["SETTLEMENT_IMPORT_QUEUE_URL"],
        created.settlement_import_queue_url
    );
    assert_eq!(env["AMAZON_SECRET_ID"], created.amazon_secret_id);
    assert_eq!(env["EXPORTS_QUEUE_URL"], created.exports_queue_url);
    assert_eq!(env["DELETIONS_QUEUE_URL"], created.deletions_queue_url);
    assert_eq!(env["FORM_SECRET_ID"], created.deletion_form_secret_id);
    assert_eq!(env["MAIL_FROM"], created.mail_from);
    assert_eq!(env.len(), 15);
    // Every resource variable a function of the template is given, the local stack gives too.
    let mut declared: BTreeSet<&str> =
        template()["Globals"]["Function"]["Environment"]["Variables"]
            .as_mapping()
            .into_iter()
            .flatten()
            .chain(FUNCTIONS.iter().flat_map(|f| own_env(f).iter()))
            .filter(|(_, value)| target(value).is_some_and(|id| resources().contains_key(id)))
            .filter_map(|(name, _)| name.as_str())
            .collect();
    // Not created locally (Cognito): the local stack's auth is configured otherwise.
    declared.retain(|name| !name.starts_with("JWT_"));
    for name in declared {
        assert!(env.contains_key(name), "function_env() lacks {name}");
    }
}

#[tokio::test]
async fn local_emulator_starts_answers_and_stops() {
    use ecomdrive_local::LocalError;
    use ecomdrive_local::emulator::Emulator;

    // Without the venv the error says what to run.
    let empty = std::env::temp_dir().join(format!("ecomdrive-no-venv-{}", ulid::Ulid::new()));
    let missing = Emulator::start(&empty).expect_err("no emulator installed there");
    assert!(matches!(missing, LocalError::NotInstalled(_)));
    assert!(
        missing.to_string().contains("infra/scripts/venv.sh"),
        "{missing}"
    );

    let root = provision::repo_root();
    let emulator = tokio::task::spawn_blocking(move || Emulator::start(&root))
        .await
        .expect("the start task runs")
        .expect("the emulator starts (run infra/scripts/venv.sh first)");
    let endpoint = emulator.endpoint.clone();
    let sdk = ecomdrive_local::emulator::sdk_config(&endpoint).await;
    assert_eq!(sdk.region().map(|r| r.as_ref()), Some("ap-south-1"));
    let tables = aws_sdk_dynamodb::Client::new(&sdk)
        .list_tables()
        .send()
        .await
        .expect("the emulator answers DynamoDB");
    assert!(
        tables.table_names().is_empty(),
        "a new emulator starts empty"
    );

    drop(emulator);
    let after = reqwest::get(&endpoint).await;
    assert!(after.is_err(), "dropping the emulator stops it");
}

/// agent-reply's at-most-once protocol relies on the replies queue: a record whose outcome is
/// unknown comes back only after the visibility timeout, which must outlast the echo wait, and it
/// must be received often enough to use every attempt before the DLQ takes it.
#[test]
fn replies_queue_leaves_room_for_the_echo_wait_and_every_attempt() {
    let props = properties("RepliesQueue");
    let visibility = number(&props["VisibilityTimeout"]).expect("VisibilityTimeout is a number");
    let receives =
        number(&props["RedrivePolicy"]["maxReceiveCount"]).expect("maxReceiveCount is a number");
    let echo_wait = agent_reply::Config::DEFAULT_ECHO_WAIT.as_secs_f64();
    assert!(
        visibility > echo_wait,
        "VisibilityTimeout {visibility}s must exceed the echo wait {echo_wait}s"
    );
    let attempts = f64::from(agent_reply::Config::DEFAULT_MAX_ATTEMPTS);
    assert!(
        receives > attempts,
        "maxReceiveCount {receives} must exceed max_attempts {attempts}: the last receive records the outcome"
    );
}

/// messenger-webhook accepts deliveries up to 1 MiB and puts them on the inbound queue whole:
/// the queue (and its DLQ, where a bad one ends) must take messages that large.
#[test]
fn inbound_queues_take_the_largest_delivery_the_webhook_accepts() {
    let bound = ecomdrive_core::webhook::MAX_DELIVERY_BYTES as f64;
    for queue in ["InboundQueue", "InboundDeadLetterQueue"] {
        let size = number(&properties(queue)["MaximumMessageSize"])
            .unwrap_or_else(|| panic!("{queue} sets MaximumMessageSize"));
        assert!(
            size >= bound,
            "{queue}: {size} bytes < the webhook's {bound}"
        );
    }
}
