//! Config read by hand from a parsed JSON value, naming the field of every refusal.
//!
//! serde's derived readers cost one monomorphised visitor per config type, and each of them
//! carries serde_json's parser inlined: in jwt-rbac that was about 100 KiB of a 400 KiB wasm
//! budget. A plugin that must be small parses its config once into a [`Value`] with [`parse`]
//! and walks it with [`Object`] and the `as_*` functions here, which are plain functions shared
//! by every field. The serde types stay the description of the config (its JSON Schema is
//! derived from them); a plugin that reads by hand tests that its reader accepts and refuses
//! exactly what the derived `Deserialize` does.
//!
//! Conventions, the same as the derived readers' through [`crate::error::parse_json`]:
//! - an absent field takes its default; `null` is `None` for optional fields and refused for
//!   the others;
//! - an unknown field is refused, naming the field itself (`rules[1].nmae`);
//! - a missing required field is refused, naming it (`providers.a.remote_jwks.upstream`);
//! - a value of the wrong type names the field that holds it;
//! - a key given twice in one object is refused (serde_json's `Value` would keep the last).

use crate::error::{join, ConfigError, ConfigErrorKind};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::fmt;

/// Parses config bytes into a JSON value. Empty or whitespace-only input is `{}`.
///
/// A syntax error names `config` (its position is left out: the text is usually a string
/// inside YAML, whose lines do not match). A key given twice names the key's path.
pub fn parse(bytes: &[u8]) -> Result<Value, ConfigError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = Strict {
        path: String::new(),
        duplicate: &duplicate,
    };
    let parsed = seed.deserialize(&mut de).and_then(|value| {
        de.end()?;
        Ok(value)
    });
    if let Some(field) = duplicate.into_inner() {
        return Err(ConfigError::new(
            field,
            ConfigErrorKind::Schema("given twice in one object".to_owned()),
        ));
    }
    parsed.map_err(|err| {
        ConfigError::new(
            "config",
            ConfigErrorKind::Syntax(crate::error::syntax_message(bytes, &err.to_string())),
        )
    })
}

/// A [`Value`] built while refusing duplicate keys; `path` is where it sits.
struct Strict<'c> {
    path: String,
    duplicate: &'c RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a json value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let seed = Strict {
                path: index(&self.path, items.len()),
                duplicate: self.duplicate,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = join(&self.path, &key);
            if out.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some(path);
                return Err(de::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(Strict {
                path,
                duplicate: self.duplicate,
            })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// `a[3]`: the path of item `i` of the array at `path`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// What a JSON value is, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.as_i64().is_some_and(|i| i < 0) => "a negative number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `path: expected <expected>, found <what value is>`.
/// A number or boolean given as a string gets a hint: `found a string (write 10 without quotes)`.
pub fn wrong_type(path: &str, value: &Value, expected: &str) -> ConfigError {
    let hint = match value {
        Value::String(text)
            if (expected.starts_with("a whole number") && crate::error::looks_numeric(text))
                || (expected == "a boolean" && (text == "true" || text == "false")) =>
        {
            format!(" (write {text} without quotes)")
        }
        _ => String::new(),
    };
    ConfigError::new(
        path,
        ConfigErrorKind::Schema(format!("expected {expected}, found {}{hint}", kind(value))),
    )
}

/// A string.
pub fn as_string(value: &Value, path: &str) -> Result<String, ConfigError> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| wrong_type(path, value, "a string"))
}

/// An array of strings; an item of another type names its index.
pub fn as_strings(value: &Value, path: &str) -> Result<Vec<String>, ConfigError> {
    as_array(value, path)?
        .iter()
        .enumerate()
        .map(|(i, item)| as_string(item, &index(path, i)))
        .collect()
}

/// An array.
pub fn as_array<'a>(value: &'a Value, path: &str) -> Result<&'a [Value], ConfigError> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| wrong_type(path, value, "an array"))
}

/// A whole number from 0 to 2^64-1.
pub fn as_u64(value: &Value, path: &str) -> Result<u64, ConfigError> {
    value
        .as_u64()
        .ok_or_else(|| wrong_type(path, value, "a whole number"))
}

/// A whole number that fits this platform's `usize` (32 bits in wasm).
pub fn as_usize(value: &Value, path: &str) -> Result<usize, ConfigError> {
    as_u64(value, path).and_then(|v| {
        usize::try_from(v).map_err(|_| {
            ConfigError::new(
                path,
                ConfigErrorKind::Schema(format!("{v} is too large (at most {})", usize::MAX)),
            )
        })
    })
}

/// A boolean.
pub fn as_bool(value: &Value, path: &str) -> Result<bool, ConfigError> {
    value
        .as_bool()
        .ok_or_else(|| wrong_type(path, value, "true or false"))
}

/// One of `names`, given as a string: its index.
pub fn as_name(value: &Value, path: &str, names: &[&str]) -> Result<usize, ConfigError> {
    let Some(text) = value.as_str() else {
        return Err(wrong_type(path, value, &one_of(names)));
    };
    names
        .iter()
        .position(|n| *n == text)
        .ok_or_else(|| unknown_name(path, text, names))
}

fn unknown_name(path: &str, text: &str, names: &[&str]) -> ConfigError {
    ConfigError::new(
        path,
        ConfigErrorKind::Schema(format!(
            "unknown value {text:?}, expected {}",
            one_of(names)
        )),
    )
}

fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    match quoted.as_slice() {
        [one] => one.clone(),
        [first, second] => format!("{first} or {second}"),
        [rest @ .., last] => format!("one of {} or {last}", rest.join(", ")),
        [] => "nothing".to_owned(),
    }
}

/// A choice written as serde writes an externally tagged enum: `"name"` for a choice without
/// content, `{"name": <content>}` for one with. The index of the choice, and its content
/// (`None` for the bare string; a unit choice may also be written `{"name": null}`).
pub fn as_choice<'a>(
    value: &'a Value,
    path: &str,
    names: &[&str],
) -> Result<(usize, Option<&'a Value>), ConfigError> {
    match value {
        Value::String(_) => as_name(value, path, names).map(|at| (at, None)),
        Value::Object(map) if map.len() == 1 => {
            let Some((name, content)) = map.iter().next() else {
                return Err(wrong_type(path, value, &one_of(names)));
            };
            let at = names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| unknown_name(path, name, names))?;
            Ok((at, Some(content)))
        }
        _ => Err(ConfigError::new(
            path,
            ConfigErrorKind::Schema(format!(
                "expected a string or an object with one key ({}), found {}",
                one_of(names),
                kind(value)
            )),
        )),
    }
}

/// The content a choice must have; its absence (the bare string form) is refused.
pub fn content<'a>(
    content: Option<&'a Value>,
    path: &str,
    name: &str,
) -> Result<&'a Value, ConfigError> {
    content.ok_or_else(|| {
        ConfigError::new(
            path,
            ConfigErrorKind::Schema(format!("\"{name}\" needs a value: {{\"{name}\": ...}}")),
        )
    })
}

/// A choice without content: only `"name"` or `{"name": null}`.
pub fn no_content(content: Option<&Value>, path: &str, name: &str) -> Result<(), ConfigError> {
    match content {
        None | Some(Value::Null) => Ok(()),
        Some(_) => Err(ConfigError::new(
            join(path, name),
            ConfigErrorKind::Schema(format!("\"{name}\" takes no value: write \"{name}\"")),
        )),
    }
}

/// A JSON object being read, with its path for messages.
pub struct Object<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Object<'a> {
    /// `value` as an object at `path` (`""` for the root, named `config` in messages).
    pub fn new(value: &'a Value, path: &str) -> Result<Self, ConfigError> {
        match value {
            Value::Object(map) => Ok(Self {
                map,
                path: path.to_owned(),
            }),
            _ => Err(wrong_type(
                if path.is_empty() { "config" } else { path },
                value,
                "an object",
            )),
        }
    }

    /// The path of `key` in this object.
    pub fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Refuses the first key (in key order) that is not one of `known`.
    pub fn known(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(key) => {
                let names: Vec<String> = known.iter().map(|n| format!("`{n}`")).collect();
                Err(ConfigError::new(
                    self.at(key),
                    ConfigErrorKind::Schema(format!(
                        "unknown field `{key}`, expected one of {}",
                        names.join(", ")
                    )),
                ))
            }
        }
    }

    /// The keys and values, in key order.
    pub fn entries(&self) -> impl Iterator<Item = (&'a String, &'a Value)> {
        self.map.iter()
    }

    /// The value of `key` if present, `null` included.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    /// The value of `key` if present and not `null` (an optional field).
    pub fn optional(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The value of a required field.
    pub fn required(&self, key: &str) -> Result<&'a Value, ConfigError> {
        self.map.get(key).ok_or_else(|| {
            ConfigError::new(
                self.at(key),
                ConfigErrorKind::Schema(format!("missing field `{key}`")),
            )
        })
    }

    /// A string field with a default (`null` is refused).
    pub fn string_or(&self, key: &str, default: &str) -> Result<String, ConfigError> {
        match self.get(key) {
            None => Ok(default.to_owned()),
            Some(v) => as_string(v, &self.at(key)),
        }
    }

    /// An optional string field.
    pub fn opt_string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        self.optional(key)
            .map(|v| as_string(v, &self.at(key)))
            .transpose()
    }

    /// A required string field.
    pub fn req_string(&self, key: &str) -> Result<String, ConfigError> {
        as_string(self.required(key)?, &self.at(key))
    }

    /// A list of strings, empty when absent (`null` is refused).
    pub fn strings(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(v) => as_strings(v, &self.at(key)),
        }
    }

    /// A boolean field with a default.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => as_bool(v, &self.at(key)),
        }
    }

    /// A `u64` field with a default.
    pub fn u64_or(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => as_u64(v, &self.at(key)),
        }
    }

    /// An optional `u64` field.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        self.optional(key)
            .map(|v| as_u64(v, &self.at(key)))
            .transpose()
    }

    /// A `usize` field with a default.
    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => as_usize(v, &self.at(key)),
        }
    }

    /// An object field that may be absent (`null` is refused: the field has a default).
    pub fn object(&self, key: &str) -> Result<Option<Object<'a>>, ConfigError> {
        self.get(key)
            .map(|v| Object::new(v, &self.at(key)))
            .transpose()
    }

    /// An optional object field (`null` is `None`).
    pub fn opt_object(&self, key: &str) -> Result<Option<Object<'a>>, ConfigError> {
        self.optional(key)
            .map(|v| Object::new(v, &self.at(key)))
            .transpose()
    }

    /// An array field, empty when absent (`null` is refused).
    pub fn array(&self, key: &str) -> Result<&'a [Value], ConfigError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(v) => as_array(v, &self.at(key)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(result: Result<impl fmt::Debug, ConfigError>) -> String {
        match result {
            Ok(v) => panic!("accepted: {v:?}"),
            Err(err) => err.field,
        }
    }

    #[test]
    fn parse_refuses_duplicate_keys_naming_them() {
        assert_eq!(
            field(parse(
                br#"{"rules": [{"a": 1}, {"a": 1, "b": {"c": 1, "c": 2}}]}"#
            )),
            "rules[1].b.c"
        );
        assert_eq!(field(parse(br#"{"a": 1, "a": 1}"#)), "a");
        let v = parse(br#"{"a": [1, -2, 2.5, "x", null, true, {}], "b": {"a": 1}}"#).unwrap();
        assert_eq!(
            v,
            json!({"a": [1, -2, 2.5, "x", null, true, {}], "b": {"a": 1}})
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        // serde_json's recursion limit holds for this reader's visitor too: a config nested
        // 100,000 deep is a syntax error at load, not a trap.
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse(text.as_bytes()).unwrap_err();
        assert_eq!(err.field, "config");
        assert!(err.to_string().contains("recursion limit"), "{err}");
        let text = format!("{}1{}", "{\"a\": ".repeat(100_000), "}".repeat(100_000));
        assert!(parse(text.as_bytes()).is_err());
    }

    #[test]
    fn parse_syntax_errors_name_config_and_the_position() {
        for text in [&b"{"[..], b"{} x", br#"{"a": 1,}"#, b"\xff"] {
            let err = parse(text).unwrap_err();
            assert!(matches!(err.kind, ConfigErrorKind::Syntax(_)), "{err}");
            assert_eq!(err.field, "config");
            assert!(err.to_string().contains(" at line 1 column "), "{err}");
        }
        let err = parse(b"providers:\n  sso: {}\n").unwrap_err();
        assert!(err.to_string().contains("looks like YAML"), "{err}");
        let err = as_u64(&json!("10"), "capacity").unwrap_err();
        assert_eq!(
            err.to_string(),
            "capacity: expected a whole number, found a string (write 10 without quotes)"
        );
        assert_eq!(parse(b"").unwrap(), json!({}));
        assert_eq!(parse(b" \n\t").unwrap(), json!({}));
    }

    #[test]
    fn object_fields_name_their_path() {
        let v = json!({"s": "x", "n": 5, "b": true, "l": ["a", 1], "o": {"k": null}, "z": null});
        let o = Object::new(&v, "top").unwrap();
        assert_eq!(field(o.known(&["s", "n"])), "top.b");
        assert_eq!(o.string_or("s", "d").unwrap(), "x");
        assert_eq!(o.string_or("absent", "d").unwrap(), "d");
        assert_eq!(field(o.string_or("n", "d")), "top.n");
        assert_eq!(field(o.string_or("z", "d")), "top.z");
        assert_eq!(o.opt_string("z").unwrap(), None);
        assert_eq!(field(o.req_string("absent")), "top.absent");
        assert_eq!(o.u64_or("n", 1).unwrap(), 5);
        assert_eq!(field(o.u64_or("s", 1)), "top.s");
        assert_eq!(o.opt_u64("z").unwrap(), None);
        assert!(o.bool_or("b", false).unwrap());
        assert_eq!(field(o.strings("l")), "top.l[1]");
        assert_eq!(field(o.object("z").map(|o| o.is_some())), "top.z");
        assert!(o.opt_object("z").unwrap().is_none());
        let inner = o.object("o").unwrap().unwrap();
        assert_eq!(field(inner.req_string("k")), "top.o.k");
        assert_eq!(field(Object::new(&json!([]), "").map(|_| ())), "config");
    }

    #[test]
    fn numbers_must_be_whole_and_in_range() {
        assert_eq!(as_u64(&json!(0), "n").unwrap(), 0);
        for bad in [json!(-1), json!(1.5), json!(1.0), json!("1")] {
            assert_eq!(field(as_u64(&bad, "n")), "n", "{bad}");
        }
        assert_eq!(as_u64(&json!(u64::MAX), "n").unwrap(), u64::MAX);
        if usize::BITS == 32 {
            assert_eq!(field(as_usize(&json!(1u64 << 32), "n")), "n");
        }
    }

    #[test]
    fn choices_are_externally_tagged() {
        let names = ["anonymous", "provider"];
        assert_eq!(
            as_choice(&json!("anonymous"), "r", &names).unwrap(),
            (0, None)
        );
        let v = json!({"provider": "a"});
        assert_eq!(as_choice(&v, "r", &names).unwrap(), (1, Some(&json!("a"))));
        assert_eq!(field(as_choice(&json!("nobody"), "r", &names)), "r");
        assert_eq!(field(as_choice(&json!({"nobody": 1}), "r", &names)), "r");
        assert_eq!(
            field(as_choice(
                &json!({"provider": "a", "anonymous": null}),
                "r",
                &names
            )),
            "r"
        );
        assert_eq!(field(as_choice(&json!(3), "r", &names)), "r");
        assert!(no_content(Some(&Value::Null), "r", "anonymous").is_ok());
        assert_eq!(
            field(no_content(Some(&json!(1)), "r", "anonymous")),
            "r.anonymous"
        );
        assert_eq!(field(content(None, "r", "provider")), "r");
        let err = as_name(&json!("maybe"), "no_rule", &["deny", "allow"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no_rule: unknown value \"maybe\", expected \"deny\" or \"allow\""
        );
    }
}
