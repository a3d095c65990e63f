//! The config file: storage options per lake.
//!
//! ```toml
//! [lake."s3://warehouse/sluice"]
//! AWS_ENDPOINT_URL = "http://minio:9000"
//! AWS_ACCESS_KEY_ID = "sluice"
//! AWS_SECRET_ACCESS_KEY = "..."
//! AWS_REGION = "us-east-1"
//! AWS_ALLOW_HTTP = true
//! max_retries = 3
//! retry_timeout = "30s"
//! ```
//!
//! The section whose name is the lake URL applies to that lake; its values
//! win over the `AWS_*` environment variables. The file holds secrets, so
//! no error about it ever quotes a value.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use object_store::aws::AmazonS3ConfigKey;

use crate::error::{Error, ErrorKind, Result};

/// Options delta-rs reads that are not object_store keys.
const DELTA_KEYS: &[&str] = &[
    "max_retries",
    "retry_timeout",
    "aws_s3_locking_provider",
    "aws_force_credential_load",
    "aws_s3_pool_idle_timeout_seconds",
    "aws_sts_pool_idle_timeout_seconds",
    "aws_s3_get_internal_server_error_retries",
];

/// Options that would let two writers overwrite each other's commits.
const UNSAFE_KEYS: &[&str] = &["aws_s3_allow_unsafe_rename"];

fn bad(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidParameter,
        format!("config file {}: {what}", path.display()),
    )
}

/// The storage options for `lake` from the config file at `path` (empty
/// when the file has no section for it).
pub fn lake_options(path: &Path, lake: &str) -> Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).map_err(|e| bad(path, e))?;
    parse_lake_options(&text, lake).map_err(|what| bad(path, what))
}

fn parse_lake_options(
    text: &str,
    lake: &str,
) -> std::result::Result<HashMap<String, String>, String> {
    let doc = parse_toml(text)?;
    for (key, _) in doc.iter() {
        if key != "lake" {
            return Err(format!("unknown section [{key}] (expected [lake.\"URL\"])"));
        }
    }
    let Some(lakes) = doc.get("lake") else {
        return Ok(HashMap::new());
    };
    let lakes = lakes
        .as_table_like()
        .ok_or("`lake` must be a table of [lake.\"URL\"] sections")?;
    let want = lake.trim_end_matches('/');
    let Some((_, section)) = lakes
        .iter()
        .find(|(url, _)| url.trim_end_matches('/') == want)
    else {
        return Ok(HashMap::new());
    };
    let section = section
        .as_table_like()
        .ok_or_else(|| format!("[lake.\"{want}\"] must be a table"))?;
    let mut options = HashMap::new();
    for (key, value) in section.iter() {
        let lower = key.to_ascii_lowercase();
        if UNSAFE_KEYS.contains(&lower.as_str()) {
            return Err(format!(
                "[lake.\"{want}\"] {key}: unsafe renames can lose commits between writers; \
                 Sluice commits with conditional writes only"
            ));
        }
        let known =
            DELTA_KEYS.contains(&lower.as_str()) || AmazonS3ConfigKey::from_str(&lower).is_ok();
        if !known {
            return Err(format!("[lake.\"{want}\"] unknown option {key}"));
        }
        let value = value.as_value().and_then(|v| {
            if let Some(s) = v.as_str() {
                Some(s.to_string())
            } else if let Some(b) = v.as_bool() {
                Some(b.to_string())
            } else {
                v.as_integer().map(|i| i.to_string())
            }
        });
        let value = value.ok_or_else(|| {
            format!("[lake.\"{want}\"] {key} must be a string, integer or boolean")
        })?;
        options.insert(key.to_string(), value);
    }
    Ok(options)
}

/// Parse a TOML file that may hold secrets. toml_edit's error quotes the
/// offending line, so only the line number is kept.
pub(crate) fn parse_toml(text: &str) -> std::result::Result<toml_edit::DocumentMut, String> {
    text.parse()
        .map_err(|e: toml_edit::TomlError| match e.span() {
            Some(span) => format!(
                "not valid TOML at line {}",
                text[..span.start].matches('\n').count() + 1
            ),
            None => "not valid TOML".to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[lake."s3://warehouse/sluice"]
AWS_ENDPOINT_URL = "http://127.0.0.1:9000"
AWS_SECRET_ACCESS_KEY = "s3cr3t"
AWS_ALLOW_HTTP = true
max_retries = 2

[lake."s3://other/"]
AWS_REGION = "eu-west-1"
"#;

    #[test]
    fn the_section_of_the_lake_applies() {
        let o = parse_lake_options(FILE, "s3://warehouse/sluice/").unwrap();
        assert_eq!(o["AWS_ENDPOINT_URL"], "http://127.0.0.1:9000");
        assert_eq!(o["AWS_ALLOW_HTTP"], "true");
        assert_eq!(o["max_retries"], "2");
        let o = parse_lake_options(FILE, "s3://other").unwrap();
        assert_eq!(o.len(), 1);
        assert!(parse_lake_options(FILE, "s3://none").unwrap().is_empty());
    }

    #[test]
    fn bad_files_are_refused_without_quoting_values() {
        let e = parse_lake_options(
            "[lake.\"s3://a\"]\nAWS_SECRET_ACCESS_KEY = s3cr3t\n",
            "s3://a",
        )
        .unwrap_err();
        assert_eq!(e, "not valid TOML at line 2");
        let e = parse_lake_options("[lake.\"s3://a\"]\nAWS_SECRET_KEY_TYPO = \"x\"\n", "s3://a")
            .unwrap_err();
        assert!(e.contains("unknown option AWS_SECRET_KEY_TYPO"), "{e}");
        let e = parse_lake_options(
            "[lake.\"s3://a\"]\nAWS_S3_ALLOW_UNSAFE_RENAME = true\n",
            "s3://a",
        )
        .unwrap_err();
        assert!(e.contains("unsafe"), "{e}");
        let e = parse_lake_options("[lakes]\n", "s3://a").unwrap_err();
        assert!(e.contains("unknown section [lakes]"), "{e}");
    }
}
