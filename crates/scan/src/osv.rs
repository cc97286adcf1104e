//! Advisories in the OSV format (osv.dev's schema), the part a matcher needs.

use serde::Deserialize;

/// One OSV record.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub summary: Option<String>,
    /// Set when the record was taken back: it then matches nothing.
    #[serde(default)]
    pub withdrawn: Option<String>,
    #[serde(default)]
    pub affected: Vec<Affected>,
    #[serde(default)]
    pub severity: Vec<Severity>,
    /// The database's own fields; some give a severity word here.
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Affected {
    pub package: Option<AffectedPackage>,
    #[serde(default)]
    pub ranges: Vec<Range>,
    /// Versions affected, listed one by one.
    #[serde(default)]
    pub versions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct AffectedPackage {
    pub ecosystem: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Range {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One event of a range; exactly one field is set.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
pub struct Event {
    pub introduced: Option<String>,
    pub fixed: Option<String>,
    pub last_affected: Option<String>,
    pub limit: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Severity {
    #[serde(rename = "type")]
    pub kind: String,
    pub score: String,
}

impl Record {
    /// Parses one record from its JSON.
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(json).map_err(|e| e.to_string())
    }

    /// The name a finding shows: the CVE this record is, or is an alias of, else its own id.
    pub fn name(&self) -> &str {
        if self.id.starts_with("CVE-") {
            return &self.id;
        }
        self.aliases.iter().find(|a| a.starts_with("CVE-")).map_or(&self.id, String::as_str)
    }
}

/// The most a record may be; osv.dev's largest are well under a megabyte.
pub const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;

/// The most JSON one zip may hold in all: several times osv.dev's largest ecosystem, and what
/// an import holds in memory at once.
pub const MAX_ZIP_JSON_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// What an OSV zip (osv.dev's `all.zip` layout: one `<id>.json` per record) held.
#[derive(Debug, Default)]
pub struct ZipContents {
    /// Each record with the JSON it was read from.
    pub records: Vec<(Record, Vec<u8>)>,
    /// Members that are not records, or not valid ones, with why.
    pub skipped: Vec<(String, String)>,
}

/// Reads every `*.json` member of an OSV zip.
pub fn read_zip(archive: impl std::io::Read + std::io::Seek) -> Result<ZipContents, String> {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(archive).map_err(|e| format!("not a zip archive: {e}"))?;
    let mut contents = ZipContents::default();
    let mut total: u64 = 0;
    for index in 0..zip.len() {
        let member = zip.by_index(index).map_err(|e| format!("member {index}: {e}"))?;
        let name = member.name().map_err(|e| format!("member {index}: {e}"))?.into_owned();
        if !member.is_file() || !name.ends_with(".json") {
            continue;
        }
        if member.size() > MAX_RECORD_BYTES {
            contents.skipped.push((name, format!("larger than {MAX_RECORD_BYTES} bytes")));
            continue;
        }
        let mut json = Vec::new();
        member.take(MAX_RECORD_BYTES).read_to_end(&mut json).map_err(|e| format!("{name}: {e}"))?;
        total = total.saturating_add(json.len() as u64);
        if total > MAX_ZIP_JSON_BYTES {
            return Err(format!("its records hold more than {MAX_ZIP_JSON_BYTES} bytes of JSON; split it"));
        }
        match Record::parse(&json) {
            Ok(record) => contents.records.push((record, json)),
            Err(why) => contents.skipped.push((name, why)),
        }
    }
    Ok(contents)
}
