//! Creates, in the local emulator, the resources `template.yaml` declares, so the local stack
//! and the tests run against the same tables, indexes, queues and keys as the cloud
//! (DESIGN.md principle 3: the template is the single source of truth).
//!
//! What is created, per CloudFormation type:
//! - `AWS::DynamoDB::Table`: keys, attribute definitions, GSIs, TTL (UpdateTimeToLive).
//!   Always on-demand locally; the emulator does not meter throughput.
//! - `AWS::SQS::Queue`: attributes incl. `RedrivePolicy` (dead-letter queues first).
//! - `AWS::KMS::Key`: a key of the declared spec (symmetric by default).
//! - `AWS::S3::Bucket`: in the SDK's region, versioned when the template says so. Its CORS
//!   rules (the web app's presigned PUT) and lifecycle rules are not reproduced: they name the
//!   deploy's `SpaOrigin` and act on days, and the emulator neither checks the one nor runs the
//!   other; tests of template.yaml prove them.
//! - `AWS::SecretsManager::Secret`: the value comes from the caller (the template holds only
//!   placeholders).
//!
//! Every other type (IAM roles, functions, alarms, Cognito, the HTTP API...) has no local
//! counterpart and is skipped. Encryption-at-rest settings are not reproduced: the emulator
//! does not enforce them, and tests of template.yaml prove them instead.
//!
//! Every physical name is `<prefix>-<LogicalId>` (lowercase for buckets), so many tests can
//! provision side by side in one emulator. Resources that do not depend on each other are
//! created concurrently, in waves ordered by their references (`!Ref`, `!GetAtt`, `!Sub`).

use crate::error::LocalError;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml::{Mapping, Value};
use tokio::task::JoinSet;

/// The account id the emulator answers with; used for `AWS::AccountId`.
const LOCAL_ACCOUNT_ID: &str = "123456789012";

/// What was created, by the names the code needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub table: String,
    pub inbound_queue_url: String,
    pub inbound_dlq_url: String,
    pub replies_queue_url: String,
    pub replies_dlq_url: String,
    pub order_sync_queue_url: String,
    pub order_sync_dlq_url: String,
    pub solicitation_plan_queue_url: String,
    pub solicitation_plan_dlq_url: String,
    pub solicitations_queue_url: String,
    pub solicitations_dlq_url: String,
    pub settlement_import_queue_url: String,
    pub settlement_import_dlq_url: String,
    pub exports_queue_url: String,
    pub exports_dlq_url: String,
    pub deletions_queue_url: String,
    pub deletions_dlq_url: String,
    pub token_key_id: String,
    pub data_key_id: String,
    pub bucket: String,
    pub meta_secret_id: String,
    pub amazon_secret_id: String,
    pub deletion_form_secret_id: String,
    /// The SES identity the deletion form's e-mails are sent from.
    pub mail_from: String,
    /// Every created resource: logical id → what `!Ref` gives (name, key id, queue URL, ARN).
    pub all: BTreeMap<String, String>,
}

impl Resources {
    /// The environment variables a function reads to find its resources (the same names
    /// template.yaml sets in `Globals.Function.Environment` and, for the Amazon queues and
    /// secret, in the environment of the functions that use them). Locally every function
    /// gets all of them.
    pub fn function_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TABLE_NAME", self.table.clone()),
            ("INBOUND_QUEUE_URL", self.inbound_queue_url.clone()),
            ("REPLIES_QUEUE_URL", self.replies_queue_url.clone()),
            ("TOKEN_KEY_ID", self.token_key_id.clone()),
            ("DATA_BUCKET", self.bucket.clone()),
            ("META_SECRET_ID", self.meta_secret_id.clone()),
            ("ORDER_SYNC_QUEUE_URL", self.order_sync_queue_url.clone()),
            (
                "SOLICITATION_PLAN_QUEUE_URL",
                self.solicitation_plan_queue_url.clone(),
            ),
            (
                "SOLICITATIONS_QUEUE_URL",
                self.solicitations_queue_url.clone(),
            ),
            (
                "SETTLEMENT_IMPORT_QUEUE_URL",
                self.settlement_import_queue_url.clone(),
            ),
            ("EXPORTS_QUEUE_URL", self.exports_queue_url.clone()),
            ("DELETIONS_QUEUE_URL", self.deletions_queue_url.clone()),
            ("FORM_SECRET_ID", self.deletion_form_secret_id.clone()),
            ("MAIL_FROM", self.mail_from.clone()),
            ("AMAZON_SECRET_ID", self.amazon_secret_id.clone()),
        ]
    }

    fn from_created(all: BTreeMap<String, String>) -> Result<Resources, LocalError> {
        let get = |logical_id: &'static str| {
            all.get(logical_id)
                .cloned()
                .ok_or(LocalError::MissingResource(logical_id))
        };
        Ok(Resources {
            table: get("Table")?,
            inbound_queue_url: get("InboundQueue")?,
            inbound_dlq_url: get("InboundDeadLetterQueue")?,
            replies_queue_url: get("RepliesQueue")?,
            replies_dlq_url: get("RepliesDeadLetterQueue")?,
            order_sync_queue_url: get("OrderSyncQueue")?,
            order_sync_dlq_url: get("OrderSyncDeadLetterQueue")?,
            solicitation_plan_queue_url: get("SolicitationPlanQueue")?,
            solicitation_plan_dlq_url: get("SolicitationPlanDeadLetterQueue")?,
            solicitations_queue_url: get("SolicitationsQueue")?,
            solicitations_dlq_url: get("SolicitationsDeadLetterQueue")?,
            settlement_import_queue_url: get("SettlementImportQueue")?,
            settlement_import_dlq_url: get("SettlementImportDeadLetterQueue")?,
            exports_queue_url: get("ExportsQueue")?,
            exports_dlq_url: get("ExportsDeadLetterQueue")?,
            deletions_queue_url: get("DeletionsQueue")?,
            deletions_dlq_url: get("DeletionsDeadLetterQueue")?,
            token_key_id: get("TokenKey")?,
            data_key_id: get("DataKey")?,
            bucket: get("DataBucket")?,
            meta_secret_id: get("MetaAppSecret")?,
            amazon_secret_id: get("AmazonAppSecret")?,
            deletion_form_secret_id: get("DeletionFormSecret")?,
            mail_from: get("DeletionMailIdentity")?,
            all,
        })
    }
}

/// The repository root, known at compile time (this crate lives in `infra/local-stack`).
pub fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .nth(2)
        .unwrap_or(manifest_dir)
        .to_path_buf()
}

/// Where template.yaml is in a checkout.
pub fn template_path(repo_root: &Path) -> PathBuf {
    repo_root.join("template.yaml")
}

/// Creates every supported resource of `template` in the emulator (or account) `sdk` points
/// at, named `<prefix>-<LogicalId>`. `secrets` maps a secret's logical id to its value.
pub async fn provision(
    sdk: &SdkConfig,
    template: &Path,
    prefix: &str,
    secrets: &BTreeMap<String, serde_json::Value>,
) -> Result<Resources, LocalError> {
    check_prefix(prefix)?;
    let text = std::fs::read_to_string(template).map_err(|source| LocalError::ReadTemplate {
        path: template.to_path_buf(),
        source,
    })?;
    let plan = Plan::read(&text)?;
    let region = sdk
        .region()
        .map(|region| region.to_string())
        .unwrap_or_else(|| crate::emulator::REGION.to_string());
    let clients = Clients {
        dynamodb: aws_sdk_dynamodb::Client::new(sdk),
        sqs: aws_sdk_sqs::Client::new(sdk),
        kms: aws_sdk_kms::Client::new(sdk),
        s3: crate::emulator::s3_client(sdk),
        secrets: aws_sdk_secretsmanager::Client::new(sdk),
        ses: aws_sdk_sesv2::Client::new(sdk),
        region: region.clone(),
    };
    let pseudo = Pseudo {
        region,
        stack_name: prefix.to_string(),
    };

    let mut created: BTreeMap<String, Created> = BTreeMap::new();
    let mut waiting = plan.resources;
    while !waiting.is_empty() {
        let (ready, rest): (Vec<Declared>, Vec<Declared>) = waiting
            .into_iter()
            .partition(|declared| declared.depends_on.iter().all(|d| created.contains_key(d)));
        if ready.is_empty() {
            return Err(LocalError::DependencyCycle(
                rest.into_iter()
                    .map(|declared| declared.logical_id)
                    .collect(),
            ));
        }
        let mut wave = JoinSet::new();
        for declared in ready {
            let resolver = Resolver {
                resource: &declared.logical_id,
                created: &created,
                parameters: &plan.parameters,
                pseudo: &pseudo,
            };
            let name = physical_name(prefix, &declared.logical_id, declared.kind);
            let spec = Spec::read(&declared, name, &resolver, secrets)?;
            wave.spawn(create(clients.clone(), declared.logical_id, spec));
        }
        while let Some(joined) = wave.join_next().await {
            let (logical_id, made) = joined.map_err(|e| LocalError::Task(e.to_string()))??;
            created.insert(logical_id, made);
        }
        waiting = rest;
    }

    let all = created
        .into_iter()
        .map(|(logical_id, made)| (logical_id, made.reference))
        .collect();
    Resources::from_created(all)
}

fn check_prefix(prefix: &str) -> Result<(), LocalError> {
    let mut chars = prefix.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if starts_with_letter && rest_ok && prefix.len() <= 30 && !prefix.ends_with('-') {
        Ok(())
    } else {
        Err(LocalError::InvalidPrefix(prefix.to_string()))
    }
}

// ------------------------------------------------------------------ reading the template

/// The resource types that have a local counterpart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Table,
    Queue,
    Key,
    Bucket,
    Secret,
    EmailIdentity,
}

impl Kind {
    fn from_type(cloudformation_type: &str) -> Option<Kind> {
        match cloudformation_type {
            "AWS::DynamoDB::Table" => Some(Kind::Table),
            "AWS::SQS::Queue" => Some(Kind::Queue),
            "AWS::KMS::Key" => Some(Kind::Key),
            "AWS::S3::Bucket" => Some(Kind::Bucket),
            "AWS::SecretsManager::Secret" => Some(Kind::Secret),
            "AWS::SES::EmailIdentity" => Some(Kind::EmailIdentity),
            _ => None,
        }
    }
}

/// One resource of the template that will be created locally.
#[derive(Debug)]
struct Declared {
    logical_id: String,
    kind: Kind,
    properties: Mapping,
    /// Other locally created resources this one refers to.
    depends_on: BTreeSet<String>,
}

#[derive(Debug)]
struct Plan {
    resources: Vec<Declared>,
    /// Template parameters with a default, for `!Ref Parameter`.
    parameters: BTreeMap<String, Value>,
}

impl Plan {
    fn read(text: &str) -> Result<Plan, LocalError> {
        let template: Value = serde_yaml::from_str(text)?;
        let resources = template
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| template_error("Resources", "missing or not a mapping"))?;

        let mut supported = Vec::new();
        for (logical_id, resource) in resources {
            let logical_id = logical_id
                .as_str()
                .ok_or_else(|| template_error("Resources", "a logical id is not a string"))?;
            let Some(kind) = resource
                .get("Type")
                .and_then(Value::as_str)
                .and_then(Kind::from_type)
            else {
                continue;
            };
            if resource.get("Condition").is_some() {
                return Err(LocalError::ConditionalResource(logical_id.to_string()));
            }
            let properties = match resource.get("Properties") {
                None => Mapping::new(),
                Some(Value::Mapping(properties)) => properties.clone(),
                Some(_) => {
                    return Err(template_error(
                        &format!("Resources.{logical_id}.Properties"),
                        "not a mapping",
                    ));
                }
            };
            let mut references = BTreeSet::new();
            collect_references(&Value::Mapping(properties.clone()), &mut references);
            match resource.get("DependsOn") {
                Some(Value::String(one)) => {
                    references.insert(one.clone());
                }
                Some(Value::Sequence(many)) => {
                    references.extend(many.iter().filter_map(Value::as_str).map(str::to_string));
                }
                _ => {}
            }
            supported.push((logical_id.to_string(), kind, properties, references));
        }

        let local_ids: BTreeSet<String> = supported.iter().map(|(id, ..)| id.clone()).collect();
        let resources = supported
            .into_iter()
            .map(|(logical_id, kind, properties, references)| Declared {
                depends_on: references
                    .into_iter()
                    .filter(|target| local_ids.contains(target) && *target != logical_id)
                    .collect(),
                logical_id,
                kind,
                properties,
            })
            .collect();

        let parameters = template
            .get("Parameters")
            .and_then(Value::as_mapping)
            .map(|parameters| {
                parameters
                    .iter()
                    .filter_map(|(name, parameter)| {
                        Some((
                            name.as_str()?.to_string(),
                            parameter.get("Default")?.clone(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();

        Ok(Plan {
            resources,
            parameters,
        })
    }
}

fn template_error(at: &str, problem: &str) -> LocalError {
    LocalError::Template {
        at: at.to_string(),
        problem: problem.to_string(),
    }
}

/// An intrinsic function call, in short (`!Ref X`) or long (`{Ref: X}`, `{Fn::GetAtt: ...}`)
/// form: its full name (`Ref`, `Fn::GetAtt`, `Fn::Sub`...) and argument.
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let short = tag.trim_start_matches('!');
            let name = match short {
                "Ref" | "Condition" => short.to_string(),
                other => format!("Fn::{other}"),
            };
            Some((name, &tagged.value))
        }
        Value::Mapping(mapping) if mapping.len() == 1 => {
            let (key, argument) = mapping.iter().next()?;
            let key = key.as_str()?;
            (key == "Ref" || key.starts_with("Fn::")).then(|| (key.to_string(), argument))
        }
        _ => None,
    }
}

/// The target of a `GetAtt`: `X.Arn` or `[X, Arn]`.
fn get_att_target(argument: &Value) -> Option<(String, String)> {
    match argument {
        Value::String(dotted) => {
            let (resource, attribute) = dotted.split_once('.')?;
            Some((resource.to_string(), attribute.to_string()))
        }
        Value::Sequence(parts) if parts.len() == 2 => Some((
            parts[0].as_str()?.to_string(),
            parts[1].as_str()?.to_string(),
        )),
        _ => None,
    }
}

/// One piece of a `Fn::Sub` string.
#[derive(Debug, PartialEq, Eq)]
enum SubPart<'a> {
    Text(&'a str),
    /// `${Name}`, `${Name.Attribute}`; `${!Literal}` is text.
    Variable(&'a str),
}

fn parse_sub(template: &str) -> Vec<SubPart<'_>> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            break;
        };
        if start > 0 {
            parts.push(SubPart::Text(&rest[..start]));
        }
        let inside = &after[..end];
        if let Some(literal) = inside.strip_prefix('!') {
            // `${!Literal}` stands for the text `${Literal}`.
            parts.push(SubPart::Text("${"));
            parts.push(SubPart::Text(literal));
            parts.push(SubPart::Text("}"));
        } else {
            parts.push(SubPart::Variable(inside.trim()));
        }
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(SubPart::Text(rest));
    }
    parts
}

/// Adds to `out` every logical id (or parameter) `value` refers to.
fn collect_references(value: &Value, out: &mut BTreeSet<String>) {
    if let Some((function, argument)) = intrinsic(value) {
        match function.as_str() {
            "Ref" => {
                if let Some(name) = argument.as_str() {
                    out.insert(name.to_string());
                }
            }
            "Fn::GetAtt" => {
                if let Some((resource, _)) = get_att_target(argument) {
                    out.insert(resource);
                }
            }
            "Fn::Sub" => {
                let (text, variables) = match argument {
                    Value::Sequence(parts) if parts.len() == 2 => {
                        (parts[0].as_str(), parts[1].as_mapping())
                    }
                    other => (other.as_str(), None),
                };
                for part in parse_sub(text.unwrap_or_default()) {
                    if let SubPart::Variable(variable) = part {
                        let resource = variable.split('.').next().unwrap_or(variable);
                        let local = variables.is_some_and(|v| v.contains_key(resource));
                        if !local {
                            out.insert(resource.to_string());
                        }
                    }
                }
                if let Some(variables) = variables {
                    for nested in variables.values() {
                        collect_references(nested, out);
                    }
                }
            }
            _ => collect_references(argument, out),
        }
        return;
    }
    match value {
        Value::Sequence(items) => items.iter().for_each(|item| collect_references(item, out)),
        Value::Mapping(mapping) => mapping
            .values()
            .for_each(|item| collect_references(item, out)),
        Value::Tagged(tagged) => collect_references(&tagged.value, out),
        _ => {}
    }
}

// ------------------------------------------------------------------ resolving intrinsics

/// What a created resource gives to `!Ref` and `!GetAtt`.
#[derive(Debug, Clone)]
struct Created {
    reference: String,
    attributes: BTreeMap<&'static str, String>,
}

struct Pseudo {
    region: String,
    stack_name: String,
}

/// Resolves the intrinsics of one resource's properties against what is already created.
struct Resolver<'a> {
    resource: &'a str,
    created: &'a BTreeMap<String, Created>,
    parameters: &'a BTreeMap<String, Value>,
    pseudo: &'a Pseudo,
}

impl Resolver<'_> {
    /// The resolved property `key` of `properties`, if present (and not `AWS::NoValue`).
    fn property(&self, properties: &Mapping, key: &str) -> Result<Option<Value>, LocalError> {
        match properties.get(key) {
            None => Ok(None),
            Some(value) => self.resolve(value),
        }
    }

    fn string(&self, properties: &Mapping, key: &str) -> Result<Option<String>, LocalError> {
        self.property(properties, key)?
            .map(|value| scalar_text(&value).ok_or_else(|| self.shape_error(key, "a scalar")))
            .transpose()
    }

    fn list(&self, properties: &Mapping, key: &str) -> Result<Vec<Value>, LocalError> {
        match self.property(properties, key)? {
            None => Ok(Vec::new()),
            Some(Value::Sequence(items)) => Ok(items),
            Some(_) => Err(self.shape_error(key, "a list")),
        }
    }

    fn shape_error(&self, key: &str, expected: &str) -> LocalError {
        template_error(
            &format!("Resources.{}.Properties.{key}", self.resource),
            &format!("expected {expected}"),
        )
    }

    /// `Ok(None)` stands for `AWS::NoValue` (the property is left out).
    fn resolve(&self, value: &Value) -> Result<Option<Value>, LocalError> {
        if let Some((function, argument)) = intrinsic(value) {
            return match function.as_str() {
                "Ref" => {
                    let name = argument
                        .as_str()
                        .ok_or_else(|| self.unsupported("Ref with a non-string argument"))?;
                    if name == "AWS::NoValue" {
                        return Ok(None);
                    }
                    self.reference(name).map(|text| Some(Value::String(text)))
                }
                "Fn::GetAtt" => {
                    let (resource, attribute) = get_att_target(argument)
                        .ok_or_else(|| self.unsupported("Fn::GetAtt of an unexpected shape"))?;
                    self.attribute(&resource, &attribute)
                        .map(|text| Some(Value::String(text)))
                }
                "Fn::Sub" => self
                    .substitute(argument)
                    .map(|text| Some(Value::String(text))),
                other => Err(self.unsupported(other)),
            };
        }
        match value {
            Value::Sequence(items) => {
                let mut resolved = Vec::with_capacity(items.len());
                for item in items {
                    resolved.extend(self.resolve(item)?);
                }
                Ok(Some(Value::Sequence(resolved)))
            }
            Value::Mapping(mapping) => {
                let mut resolved = Mapping::new();
                for (key, item) in mapping {
                    if let Some(item) = self.resolve(item)? {
                        resolved.insert(key.clone(), item);
                    }
                }
                Ok(Some(Value::Mapping(resolved)))
            }
            Value::Tagged(tagged) => Err(self.unsupported(&tagged.tag.to_string())),
            scalar => Ok(Some(scalar.clone())),
        }
    }

    fn unsupported(&self, function: &str) -> LocalError {
        LocalError::UnsupportedIntrinsic {
            resource: self.resource.to_string(),
            function: function.to_string(),
        }
    }

    fn unresolved(&self, target: &str) -> LocalError {
        LocalError::UnresolvedReference {
            resource: self.resource.to_string(),
            target: target.to_string(),
        }
    }

    fn reference(&self, name: &str) -> Result<String, LocalError> {
        if let Some(made) = self.created.get(name) {
            return Ok(made.reference.clone());
        }
        let pseudo = match name {
            "AWS::Region" => Some(self.pseudo.region.clone()),
            "AWS::AccountId" => Some(LOCAL_ACCOUNT_ID.to_string()),
            "AWS::Partition" => Some("aws".to_string()),
            "AWS::URLSuffix" => Some("amazonaws.com".to_string()),
            "AWS::StackName" => Some(self.pseudo.stack_name.clone()),
            "AWS::StackId" => Some(format!(
                "arn:aws:cloudformation:{}:{LOCAL_ACCOUNT_ID}:stack/{}/local",
                self.pseudo.region, self.pseudo.stack_name
            )),
            _ => None,
        };
        if let Some(value) = pseudo {
            return Ok(value);
        }
        self.parameters
            .get(name)
            .and_then(scalar_text)
            .ok_or_else(|| self.unresolved(name))
    }

    fn attribute(&self, resource: &str, attribute: &str) -> Result<String, LocalError> {
        self.created
            .get(resource)
            .and_then(|made| made.attributes.get(attribute))
            .cloned()
            .ok_or_else(|| self.unresolved(&format!("{resource}.{attribute}")))
    }

    fn substitute(&self, argument: &Value) -> Result<String, LocalError> {
        let (text, variables) = match argument {
            Value::Sequence(parts) if parts.len() == 2 => {
                (parts[0].as_str(), parts[1].as_mapping())
            }
            other => (other.as_str(), None),
        };
        let text = text.ok_or_else(|| self.unsupported("Fn::Sub of an unexpected shape"))?;
        let mut out = String::with_capacity(text.len());
        for part in parse_sub(text) {
            match part {
                SubPart::Text(text) => out.push_str(text),
                SubPart::Variable(variable) => {
                    if let Some(local) = variables.and_then(|v| v.get(variable)) {
                        let resolved = self
                            .resolve(local)?
                            .as_ref()
                            .and_then(scalar_text)
                            .ok_or_else(|| self.unresolved(variable))?;
                        out.push_str(&resolved);
                    } else if let Some((resource, attribute)) = variable.split_once('.') {
                        out.push_str(&self.attribute(resource, attribute)?);
                    } else {
                        out.push_str(&self.reference(variable)?);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// A scalar as CloudFormation passes it on: text.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn text_at(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(scalar_text)
}

// ------------------------------------------------------------------ what to create

fn physical_name(prefix: &str, logical_id: &str, kind: Kind) -> String {
    let name = format!("{prefix}-{logical_id}");
    match kind {
        // S3 bucket names are lowercase only.
        Kind::Bucket => name.to_ascii_lowercase(),
        _ => name,
    }
}

#[derive(Debug)]
struct TableSpec {
    name: String,
    attributes: Vec<AttributeDefinition>,
    keys: Vec<KeySchemaElement>,
    indexes: Vec<GlobalSecondaryIndex>,
    ttl_attribute: Option<String>,
}

#[derive(Debug)]
struct QueueSpec {
    name: String,
    attributes: Vec<(QueueAttributeName, String)>,
}

#[derive(Debug)]
enum Spec {
    Table(TableSpec),
    Queue(QueueSpec),
    Key {
        description: String,
        key_spec: String,
        key_usage: String,
    },
    Bucket {
        name: String,
        versioned: bool,
    },
    Secret {
        name: String,
        description: Option<String>,
        value: String,
    },
    /// An SES sender: the address itself, shared by every local stack of the emulator.
    EmailIdentity {
        address: String,
    },
}

impl Spec {
    fn read(
        declared: &Declared,
        name: String,
        resolver: &Resolver<'_>,
        secrets: &BTreeMap<String, serde_json::Value>,
    ) -> Result<Spec, LocalError> {
        let properties = &declared.properties;
        match declared.kind {
            Kind::Table => read_table(name, properties, resolver).map(Spec::Table),
            Kind::Queue => read_queue(name, properties, resolver).map(Spec::Queue),
            Kind::Key => Ok(Spec::Key {
                description: format!(
                    "{name}: {}",
                    resolver
                        .string(properties, "Description")?
                        .unwrap_or_default()
                ),
                key_spec: resolver
                    .string(properties, "KeySpec")?
                    .unwrap_or_else(|| "SYMMETRIC_DEFAULT".to_string()),
                key_usage: resolver
                    .string(properties, "KeyUsage")?
                    .unwrap_or_else(|| "ENCRYPT_DECRYPT".to_string()),
            }),
            Kind::Bucket => {
                let versioning = resolver.property(properties, "VersioningConfiguration")?;
                Ok(Spec::Bucket {
                    name,
                    versioned: versioning
                        .as_ref()
                        .and_then(|v| text_at(v, "Status"))
                        .is_some_and(|status| status == "Enabled"),
                })
            }
            Kind::EmailIdentity => Ok(Spec::EmailIdentity {
                address: resolver
                    .string(properties, "EmailIdentity")?
                    .ok_or_else(|| resolver.shape_error("EmailIdentity", "an address"))?,
            }),
            Kind::Secret => {
                let value = match secrets.get(&declared.logical_id) {
                    Some(serde_json::Value::String(text)) => text.clone(),
                    Some(json) => json.to_string(),
                    None => {
                        return Err(LocalError::MissingSecretValue(declared.logical_id.clone()));
                    }
                };
                Ok(Spec::Secret {
                    name,
                    description: resolver.string(properties, "Description")?,
                    value,
                })
            }
        }
    }
}

fn read_table(
    name: String,
    properties: &Mapping,
    resolver: &Resolver<'_>,
) -> Result<TableSpec, LocalError> {
    let at = |what: &str| format!("Resources.{}.Properties.{what}", resolver.resource);
    let build_error =
        |what: &str, error: &dyn std::fmt::Display| template_error(&at(what), &error.to_string());

    if properties.contains_key("LocalSecondaryIndexes") {
        return Err(template_error(
            &at("LocalSecondaryIndexes"),
            "local secondary indexes are not created locally yet: add them to provision.rs",
        ));
    }

    let key_schema = |elements: &[Value],
                      what: &str|
     -> Result<Vec<KeySchemaElement>, LocalError> {
        elements
            .iter()
            .map(|element| {
                KeySchemaElement::builder()
                    .set_attribute_name(text_at(element, "AttributeName"))
                    .set_key_type(text_at(element, "KeyType").map(|t| KeyType::from(t.as_str())))
                    .build()
                    .map_err(|e| build_error(what, &e))
            })
            .collect()
    };

    let attributes = resolver
        .list(properties, "AttributeDefinitions")?
        .iter()
        .map(|definition| {
            AttributeDefinition::builder()
                .set_attribute_name(text_at(definition, "AttributeName"))
                .set_attribute_type(
                    text_at(definition, "AttributeType")
                        .map(|t| ScalarAttributeType::from(t.as_str())),
                )
                .build()
                .map_err(|e| build_error("AttributeDefinitions", &e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let keys = key_schema(&resolver.list(properties, "KeySchema")?, "KeySchema")?;

    let mut indexes = Vec::new();
    for index in resolver.list(properties, "GlobalSecondaryIndexes")? {
        let index_keys = index
            .get("KeySchema")
            .and_then(Value::as_sequence)
            .ok_or_else(|| {
                template_error(&at("GlobalSecondaryIndexes"), "an index has no KeySchema")
            })?;
        let projection = index.get("Projection");
        let non_key_attributes = projection
            .and_then(|p| p.get("NonKeyAttributes"))
            .and_then(Value::as_sequence)
            .map(|names| names.iter().filter_map(scalar_text).collect());
        let projection = Projection::builder()
            .set_projection_type(
                projection
                    .and_then(|p| text_at(p, "ProjectionType"))
                    .map(|t| ProjectionType::from(t.as_str())),
            )
            .set_non_key_attributes(non_key_attributes)
            .build();
        indexes.push(
            GlobalSecondaryIndex::builder()
                .set_index_name(text_at(&index, "IndexName"))
                .set_key_schema(Some(key_schema(index_keys, "GlobalSecondaryIndexes")?))
                .projection(projection)
                .build()
                .map_err(|e| build_error("GlobalSecondaryIndexes", &e))?,
        );
    }

    let ttl = resolver.property(properties, "TimeToLiveSpecification")?;
    let ttl_enabled = ttl
        .as_ref()
        .and_then(|t| t.get("Enabled"))
        .is_some_and(|enabled| enabled.as_bool() == Some(true) || enabled.as_str() == Some("true"));
    let ttl_attribute = ttl
        .as_ref()
        .and_then(|t| text_at(t, "AttributeName"))
        .filter(|_| ttl_enabled);

    Ok(TableSpec {
        name,
        attributes,
        keys,
        indexes,
        ttl_attribute,
    })
}

fn read_queue(
    name: String,
    properties: &Mapping,
    resolver: &Resolver<'_>,
) -> Result<QueueSpec, LocalError> {
    // Template property → SQS attribute, for the attributes that change behaviour.
    const PLAIN: [(&str, QueueAttributeName); 11] = [
        ("DelaySeconds", QueueAttributeName::DelaySeconds),
        ("MaximumMessageSize", QueueAttributeName::MaximumMessageSize),
        (
            "MessageRetentionPeriod",
            QueueAttributeName::MessageRetentionPeriod,
        ),
        (
            "ReceiveMessageWaitTimeSeconds",
            QueueAttributeName::ReceiveMessageWaitTimeSeconds,
        ),
        ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
        ("FifoQueue", QueueAttributeName::FifoQueue),
        (
            "ContentBasedDeduplication",
            QueueAttributeName::ContentBasedDeduplication,
        ),
        ("DeduplicationScope", QueueAttributeName::DeduplicationScope),
        (
            "FifoThroughputLimit",
            QueueAttributeName::FifoThroughputLimit,
        ),
        ("KmsMasterKeyId", QueueAttributeName::KmsMasterKeyId),
        (
            "KmsDataKeyReusePeriodSeconds",
            QueueAttributeName::KmsDataKeyReusePeriodSeconds,
        ),
    ];
    let mut attributes = Vec::new();
    let mut fifo = false;
    for (property, attribute) in PLAIN {
        if let Some(text) = resolver.string(properties, property)? {
            fifo |= property == "FifoQueue" && text == "true";
            attributes.push((attribute, text));
        }
    }
    // The policies are JSON documents; the template may write them as YAML or as a string.
    for (property, attribute) in [
        ("RedrivePolicy", QueueAttributeName::RedrivePolicy),
        ("RedriveAllowPolicy", QueueAttributeName::RedriveAllowPolicy),
    ] {
        let text = match resolver.property(properties, property)? {
            None => continue,
            Some(Value::String(json)) => json,
            Some(document) => serde_json::to_string(&document).map_err(|e| {
                template_error(
                    &format!("Resources.{}.Properties.{property}", resolver.resource),
                    &e.to_string(),
                )
            })?,
        };
        attributes.push((attribute, text));
    }
    let name = if fifo { format!("{name}.fifo") } else { name };
    Ok(QueueSpec { name, attributes })
}

// ------------------------------------------------------------------ creating

#[derive(Clone)]
struct Clients {
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    kms: aws_sdk_kms::Client,
    s3: aws_sdk_s3::Client,
    secrets: aws_sdk_secretsmanager::Client,
    ses: aws_sdk_sesv2::Client,
    region: String,
}

async fn create(
    clients: Clients,
    logical_id: String,
    spec: Spec,
) -> Result<(String, Created), LocalError> {
    let failed = |operation: &'static str| {
        let resource = logical_id.clone();
        move |error: &dyn std::error::Error| LocalError::Aws {
            resource,
            operation,
            message: DisplayErrorContext(error).to_string(),
        }
    };
    let made = match spec {
        Spec::Table(table) => {
            let created = clients
                .dynamodb
                .create_table()
                .table_name(&table.name)
                .billing_mode(BillingMode::PayPerRequest)
                .set_attribute_definitions(Some(table.attributes))
                .set_key_schema(Some(table.keys))
                .set_global_secondary_indexes((!table.indexes.is_empty()).then_some(table.indexes))
                .send()
                .await
                .map_err(|e| failed("CreateTable")(&e))?;
            if let Some(attribute) = table.ttl_attribute {
                let ttl = TimeToLiveSpecification::builder()
                    .attribute_name(attribute)
                    .enabled(true)
                    .build()
                    .map_err(|e| failed("UpdateTimeToLive")(&e))?;
                clients
                    .dynamodb
                    .update_time_to_live()
                    .table_name(&table.name)
                    .time_to_live_specification(ttl)
                    .send()
                    .await
                    .map_err(|e| failed("UpdateTimeToLive")(&e))?;
            }
            let arn = created
                .table_description()
                .and_then(|description| description.table_arn())
                .map(str::to_string)
                .unwrap_or_else(|| {
                    format!(
                        "arn:aws:dynamodb:{}:{LOCAL_ACCOUNT_ID}:table/{}",
                        clients.region, table.name
                    )
                });
            Created {
                reference: table.name,
                attributes: BTreeMap::from([("Arn", arn)]),
            }
        }
        Spec::Queue(queue) => {
            let created = clients
                .sqs
                .create_queue()
                .queue_name(&queue.name)
                .set_attributes(Some(queue.attributes.into_iter().collect()))
                .send()
                .await
                .map_err(|e| failed("CreateQueue")(&e))?;
            let url = created.queue_url().unwrap_or_default().to_string();
            let described = clients
                .sqs
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(|e| failed("GetQueueAttributes")(&e))?;
            let arn = described
                .attributes()
                .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn))
                .cloned()
                .unwrap_or_default();
            Created {
                reference: url.clone(),
                attributes: BTreeMap::from([
                    ("Arn", arn),
                    ("QueueName", queue.name),
                    ("QueueUrl", url),
                ]),
            }
        }
        Spec::Key {
            description,
            key_spec,
            key_usage,
        } => {
            let created = clients
                .kms
                .create_key()
                .description(description)
                .key_spec(aws_sdk_kms::types::KeySpec::from(key_spec.as_str()))
                .key_usage(aws_sdk_kms::types::KeyUsageType::from(key_usage.as_str()))
                .send()
                .await
                .map_err(|e| failed("CreateKey")(&e))?;
            let metadata = created.key_metadata();
            let key_id = metadata.map(|m| m.key_id().to_string()).unwrap_or_default();
            let arn = metadata
                .and_then(|m| m.arn())
                .unwrap_or_default()
                .to_string();
            Created {
                reference: key_id.clone(),
                attributes: BTreeMap::from([("Arn", arn), ("KeyId", key_id)]),
            }
        }
        Spec::Bucket { name, versioned } => {
            let mut request = clients.s3.create_bucket().bucket(&name);
            // us-east-1 is the one region that takes no LocationConstraint.
            if clients.region != "us-east-1" {
                request = request.create_bucket_configuration(
                    aws_sdk_s3::types::CreateBucketConfiguration::builder()
                        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                            clients.region.as_str(),
                        ))
                        .build(),
                );
            }
            request
                .send()
                .await
                .map_err(|e| failed("CreateBucket")(&e))?;
            if versioned {
                clients
                    .s3
                    .put_bucket_versioning()
                    .bucket(&name)
                    .versioning_configuration(
                        aws_sdk_s3::types::VersioningConfiguration::builder()
                            .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| failed("PutBucketVersioning")(&e))?;
            }
            Created {
                attributes: BTreeMap::from([("Arn", format!("arn:aws:s3:::{name}"))]),
                reference: name,
            }
        }
        Spec::Secret {
            name,
            description,
            value,
        } => {
            let created = clients
                .secrets
                .create_secret()
                .name(&name)
                .set_description(description)
                .secret_string(value)
                .send()
                .await
                .map_err(|e| failed("CreateSecret")(&e))?;
            let arn = created.arn().unwrap_or(&name).to_string();
            Created {
                reference: arn.clone(),
                attributes: BTreeMap::from([("Id", arn)]),
            }
        }
        Spec::EmailIdentity { address } => {
            // One identity serves every stack on the emulator: an existing one is fine.
            let res = clients
                .ses
                .create_email_identity()
                .email_identity(&address)
                .send()
                .await;
            if let Err(e) = res {
                let exists = e
                    .as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception());
                if !exists {
                    return Err(failed("CreateEmailIdentity")(&e));
                }
            }
            Created {
                reference: address,
                attributes: BTreeMap::new(),
            }
        }
    };
    Ok((logical_id, made))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Retention:
    Type: Number
    Default: 1209600
Resources:
  Dlq:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: !Ref Retention
  Work:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 180
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt Dlq.Arn
        maxReceiveCount: 5
  Role:
    Type: AWS::IAM::Role
    Properties:
      Policies: !Ref AWS::NoValue
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          QUEUE: !Ref Work
"#;

    #[test]
    fn only_types_with_a_local_counterpart_are_planned_with_their_dependencies() {
        let plan = Plan::read(TEMPLATE).expect("template reads");
        let planned: Vec<(&str, Vec<&str>)> = plan
            .resources
            .iter()
            .map(|d| {
                (
                    d.logical_id.as_str(),
                    d.depends_on.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(planned, vec![("Dlq", vec![]), ("Work", vec!["Dlq"])]);
        assert_eq!(
            plan.parameters.get("Retention"),
            Some(&Value::from(1209600))
        );
    }

    #[test]
    fn sub_strings_split_into_text_and_variables() {
        assert_eq!(
            parse_sub("arn:${AWS::Partition}:x:${Table.Arn}/index/*${!Literal}"),
            vec![
                SubPart::Text("arn:"),
                SubPart::Variable("AWS::Partition"),
                SubPart::Text(":x:"),
                SubPart::Variable("Table.Arn"),
                SubPart::Text("/index/*"),
                SubPart::Text("${"),
                SubPart::Text("Literal"),
                SubPart::Text("}"),
            ]
        );
    }

    #[test]
    fn intrinsics_resolve_against_created_resources_and_refuse_unknown_targets() {
        let created = BTreeMap::from([(
            "Dlq".to_string(),
            Created {
                reference: "http://q/p-Dlq".to_string(),
                attributes: BTreeMap::from([("Arn", "arn:aws:sqs:ap-south-1:1:p-Dlq".to_string())]),
            },
        )]);
        let parameters = BTreeMap::new();
        let pseudo = Pseudo {
            region: "ap-south-1".to_string(),
            stack_name: "p".to_string(),
        };
        let resolver = Resolver {
            resource: "Work",
            created: &created,
            parameters: &parameters,
            pseudo: &pseudo,
        };
        let value: Value =
            serde_yaml::from_str("!Sub '${Dlq.Arn}|${AWS::Region}|${Name}|${AWS::StackName}'")
                .expect("yaml");
        let named: Value = serde_yaml::from_str("[x, {Name: !Ref Dlq}]").expect("yaml");
        let with_local = Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
            tag: serde_yaml::value::Tag::new("Sub"),
            value: Value::Sequence(vec![
                Value::from("${Dlq.Arn}|${AWS::Region}|${Name}|${AWS::StackName}"),
                named.as_sequence().expect("seq")[1].clone(),
            ]),
        }));
        assert_eq!(
            resolver.resolve(&with_local).expect("resolves"),
            Some(Value::from(
                "arn:aws:sqs:ap-south-1:1:p-Dlq|ap-south-1|http://q/p-Dlq|p"
            ))
        );
        assert!(matches!(
            resolver.resolve(&value),
            Err(LocalError::UnresolvedReference { target, .. }) if target == "Name"
        ));
        let long_form: Value = serde_yaml::from_str("{Fn::GetAtt: [Dlq, Arn]}").expect("yaml");
        assert_eq!(
            resolver.resolve(&long_form).expect("resolves"),
            Some(Value::from("arn:aws:sqs:ap-south-1:1:p-Dlq"))
        );
        let join: Value = serde_yaml::from_str("!Join ['', [a, b]]").expect("yaml");
        assert!(matches!(
            resolver.resolve(&join),
            Err(LocalError::UnsupportedIntrinsic { function, .. }) if function == "Fn::Join"
        ));
    }

    #[test]
    fn prefixes_must_be_usable_in_every_resource_name() {
        assert!(check_prefix("t01hzy").is_ok());
        for bad in ["", "T1", "1t", "t_1", "t-", &"t".repeat(31)] {
            assert!(
                matches!(check_prefix(bad), Err(LocalError::InvalidPrefix(_))),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn secrets_take_the_callers_value_and_a_missing_one_is_refused_by_name() {
        // The template's SecretString is a placeholder; it is never used locally.
        let template = "Resources:\n  AppSecret:\n    Type: AWS::SecretsManager::Secret\n    Properties:\n      SecretString: '{\"client_secret\":\"REPLACE_ME\"}'\n";
        let plan = Plan::read(template).expect("template reads");
        let declared = &plan.resources[0];
        let created = BTreeMap::new();
        let parameters = BTreeMap::new();
        let pseudo = Pseudo {
            region: "ap-south-1".to_string(),
            stack_name: "p".to_string(),
        };
        let resolver = Resolver {
            resource: &declared.logical_id,
            created: &created,
            parameters: &parameters,
            pseudo: &pseudo,
        };
        let refused = Spec::read(declared, "p-AppSecret".into(), &resolver, &BTreeMap::new());
        assert!(matches!(
            refused,
            Err(LocalError::MissingSecretValue(id)) if id == "AppSecret"
        ));
        let given = BTreeMap::from([(
            "AppSecret".to_string(),
            serde_json::json!({"client_secret": "local-fake"}),
        )]);
        let spec = Spec::read(declared, "p-AppSecret".into(), &resolver, &given).expect("reads");
        assert!(matches!(
            spec,
            Spec::Secret { value, .. } if value == r#"{"client_secret":"local-fake"}"#
        ));
    }

    #[test]
    fn conditional_resources_are_refused_rather_than_guessed() {
        let template = "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Condition: Maybe\n";
        assert!(matches!(
            Plan::read(template),
            Err(LocalError::ConditionalResource(id)) if id == "Q"
        ));
    }
}
