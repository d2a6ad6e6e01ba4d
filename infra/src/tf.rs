//! A small model of a Terraform JSON configuration (the `cdk.tf.json` CDK for Terraform writes).
//!
//! Blocks live in ordered maps so the output is byte-for-byte stable (snapshot tests rely on it),
//! and every block added returns a typed address so other constructs reference it through
//! [`Ref::attr`] instead of hand-writing `${...}` strings.

use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt;

/// A Terraform expression such as `aws_dynamodb_table.users.arn`. It renders as an
/// interpolation (`${...}`) both in JSON and when formatted into a larger string, so
/// `format!("{}/index/*", table.arn())` yields a valid template.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Expr(String);

impl Expr {
    /// An expression from raw HCL expression syntax; constructs use it for functions such as
    /// `jsonencode(...)` that have no typed counterpart here.
    pub fn raw(inner: impl Into<String>) -> Self {
        Expr(inner.into())
    }

    /// The expression without the `${}` wrapper, for composing function calls.
    pub fn inner(&self) -> &str {
        &self.0
    }

    /// Indexes a list attribute (`names[0]`).
    pub fn index(&self, i: usize) -> Expr {
        Expr(format!("{}[{i}]", self.0))
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${{{}}}", self.0)
    }
}

impl Serialize for Expr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl From<Expr> for Value {
    fn from(e: Expr) -> Value {
        Value::String(e.to_string())
    }
}

impl From<&Expr> for Value {
    fn from(e: &Expr) -> Value {
        Value::String(e.to_string())
    }
}

/// The address of a resource, data source, variable or local. Only the model creates these,
/// so holding one proves the block exists in the stack.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ref {
    addr: String,
}

impl Ref {
    /// An attribute of the block (`aws_s3_bucket.artifacts.arn`).
    pub fn attr(&self, name: &str) -> Expr {
        Expr(format!("{}.{name}", self.addr))
    }

    /// The block itself as an expression (for variables and locals, whose value is the block).
    pub fn expr(&self) -> Expr {
        Expr(self.addr.clone())
    }

    /// The address used in `depends_on` and `lifecycle` lists.
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

/// A Terraform input variable. Typed so `sensitive` and `type` are never forgotten strings.
#[derive(Clone, Debug, Serialize)]
pub struct Variable {
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub validation: Vec<Validation>,
}

/// A variable validation rule; Terraform reports `error_message` when `condition` is false.
#[derive(Clone, Debug, Serialize)]
pub struct Validation {
    pub condition: String,
    pub error_message: String,
}

/// A stack output. `sensitive` keeps secrets such as the API key out of plan output.
#[derive(Clone, Debug, Serialize)]
pub struct Output {
    pub value: Value,
    pub description: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

/// One Terraform configuration: what becomes `stacks/<name>/cdk.tf.json`.
#[derive(Clone, Debug, Default)]
pub struct Stack {
    pub name: String,
    required_providers: BTreeMap<String, Value>,
    backend: Option<(String, Value)>,
    providers: BTreeMap<String, Vec<Value>>,
    resources: BTreeMap<String, BTreeMap<String, Value>>,
    data: BTreeMap<String, BTreeMap<String, Value>>,
    variables: BTreeMap<String, Variable>,
    outputs: BTreeMap<String, Output>,
    locals: BTreeMap<String, Value>,
    moved: Vec<Value>,
}

impl Stack {
    pub fn new(name: impl Into<String>) -> Self {
        Stack {
            name: name.into(),
            ..Default::default()
        }
    }

    /// Pins a provider; the constraint is what `terraform init` resolves against the registry
    /// or a filesystem mirror. (No `required_version`: CDKTF does not write one, and checkov's
    /// JSON parser rejects a plain string inside the `terraform` block.)
    pub fn require(&mut self, local_name: &str, source: &str, version: &str) {
        self.required_providers.insert(
            local_name.to_owned(),
            json!({ "source": source, "version": version }),
        );
    }

    pub fn backend(&mut self, kind: &str, settings: Value) {
        self.backend = Some((kind.to_owned(), settings));
    }

    /// The backend's kind and settings, if [`Stack::backend`] set one.
    pub fn backend_settings(&self) -> Option<(&str, &Value)> {
        self.backend
            .as_ref()
            .map(|(kind, settings)| (kind.as_str(), settings))
    }

    pub fn provider(&mut self, name: &str, settings: Value) {
        self.providers
            .entry(name.to_owned())
            .or_default()
            .push(settings);
    }

    /// Adds a managed resource and returns its address.
    ///
    /// # Panics
    /// On a duplicate address: two constructs claiming one name is a programming error that
    /// Terraform would also reject, and failing at synth names the culprit.
    pub fn resource(&mut self, ty: &str, name: &str, body: Value) -> Ref {
        let previous = self
            .resources
            .entry(ty.to_owned())
            .or_default()
            .insert(name.to_owned(), body);
        assert!(previous.is_none(), "duplicate resource {ty}.{name}");
        Ref {
            addr: format!("{ty}.{name}"),
        }
    }

    /// The address of a resource the stack already has, if any.
    pub fn find_resource(&self, ty: &str, name: &str) -> Option<Ref> {
        self.resources
            .get(ty)
            .is_some_and(|by_name| by_name.contains_key(name))
            .then(|| Ref {
                addr: format!("{ty}.{name}"),
            })
    }

    /// Puts every resource named `logical` (a construct's sub-resources share the name) on
    /// the provider configuration `provider` (e.g. `aws.replica`).
    pub fn assign_provider(&mut self, logical: &str, provider: &str) {
        for by_name in self.resources.values_mut() {
            if let Some(Value::Object(body)) = by_name.get_mut(logical) {
                body.insert("provider".into(), Value::String(provider.to_owned()));
            }
        }
    }

    /// Adds a data source (idempotent: constructs may ask for the same lookup twice).
    pub fn data(&mut self, ty: &str, name: &str, body: Value) -> Ref {
        self.data
            .entry(ty.to_owned())
            .or_default()
            .entry(name.to_owned())
            .or_insert(body);
        Ref {
            addr: format!("data.{ty}.{name}"),
        }
    }

    pub fn variable(&mut self, name: &str, variable: Variable) -> Ref {
        self.variables.insert(name.to_owned(), variable);
        Ref {
            addr: format!("var.{name}"),
        }
    }

    pub fn local(&mut self, name: &str, value: Value) -> Ref {
        self.locals.insert(name.to_owned(), value);
        Ref {
            addr: format!("local.{name}"),
        }
    }

    pub fn output(
        &mut self,
        name: &str,
        value: impl Into<Value>,
        description: &str,
        sensitive: bool,
    ) {
        let output = Output {
            value: value.into(),
            description: description.to_owned(),
            sensitive,
        };
        self.outputs.insert(name.to_owned(), output);
    }

    /// A `moved` block: the object Terraform's state holds at `from` is now `to`'s, so a
    /// renamed address is taken over in place instead of destroyed and created again. Harmless
    /// where the state has nothing at `from` (a new environment).
    pub fn moved(&mut self, from: &str, to: &Ref) {
        self.moved.push(json!({ "from": from, "to": to.addr() }));
    }

    /// Number of managed resources, for progress messages and tests.
    pub fn resource_count(&self) -> usize {
        self.resources.values().map(BTreeMap::len).sum()
    }

    /// Renders the configuration in CDK for Terraform's JSON layout.
    pub fn to_json(&self) -> Value {
        let mut root = Map::new();
        root.insert(
            "//".into(),
            json!({ "metadata": { "backend": self.backend.as_ref().map_or("local", |b| b.0.as_str()), "stackName": self.name, "version": crate::CDKTF_VERSION } }),
        );
        let mut terraform = Map::new();
        if let Some((kind, settings)) = &self.backend {
            terraform.insert("backend".into(), json!({ kind: settings }));
        }
        terraform.insert("required_providers".into(), json!(self.required_providers));
        root.insert("terraform".into(), Value::Object(terraform));
        let sections: [(&str, Value); 7] = [
            ("provider", json!(self.providers)),
            ("variable", json!(self.variables)),
            ("locals", json!(self.locals)),
            ("data", json!(self.data)),
            ("resource", json!(self.resources)),
            ("output", json!(self.outputs)),
            ("moved", json!(self.moved)),
        ];
        for (key, value) in sections {
            let empty = match &value {
                Value::Object(m) => m.is_empty(),
                Value::Array(a) => a.is_empty(),
                _ => true,
            };
            if !empty {
                root.insert(key.into(), value);
            }
        }
        Value::Object(root)
    }
}

/// `lifecycle { create_before_destroy = true }`: replacements come up before the old object
/// goes, which is how API deployments change without downtime.
pub fn create_before_destroy() -> Value {
    json!({ "create_before_destroy": true })
}

/// A list of resource addresses for `depends_on`.
pub fn depends_on(refs: &[&Ref]) -> Value {
    Value::Array(
        refs.iter()
            .map(|r| Value::String(r.addr().to_owned()))
            .collect(),
    )
}
