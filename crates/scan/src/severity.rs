//! How severe an advisory is, on ECR's scale (`CRITICAL`, `HIGH`, `MEDIUM`, `LOW`,
//! `INFORMATIONAL`, `UNDEFINED`): from the record's CVSS vector (v3.x first, then v4.0), scored
//! by the `cvss` crate, else from the severity word its database gives.

use std::str::FromStr;

use crate::osv::Record;

/// A record's severity, with the CVSS score and vector it came from, when it did.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Rating {
    pub level: String,
    /// The base score, as `9.8`.
    pub score: Option<String>,
    pub vector: Option<String>,
}

fn level_of_score(score: f64) -> &'static str {
    match score {
        s if s >= 9.0 => "CRITICAL",
        s if s >= 7.0 => "HIGH",
        s if s >= 4.0 => "MEDIUM",
        s if s > 0.0 => "LOW",
        _ => "INFORMATIONAL",
    }
}

/// A database's own word for severity (GHSA's `MODERATE`, distributions' `negligible`, ...).
fn level_of_word(word: &str) -> Option<&'static str> {
    Some(match word.to_ascii_uppercase().as_str() {
        "CRITICAL" => "CRITICAL",
        "HIGH" | "IMPORTANT" => "HIGH",
        "MODERATE" | "MEDIUM" => "MEDIUM",
        "LOW" => "LOW",
        "NEGLIGIBLE" | "UNIMPORTANT" | "NONE" | "INFORMATIONAL" => "INFORMATIONAL",
        _ => return None,
    })
}

/// The rating of a record.
pub fn rate(record: &Record) -> Rating {
    for kind in ["CVSS_V3", "CVSS_V4"] {
        for severity in record.severity.iter().filter(|s| s.kind == kind) {
            if let Ok(cvss) = cvss::Cvss::from_str(&severity.score) {
                let score = cvss.score();
                return Rating {
                    level: level_of_score(score).to_owned(),
                    score: Some(format!("{score:.1}")),
                    vector: Some(severity.score.clone()),
                };
            }
        }
    }
    let word = record.database_specific.as_ref().and_then(|d| d.get("severity")).and_then(|s| s.as_str());
    let level = word.and_then(level_of_word).unwrap_or("UNDEFINED");
    Rating { level: level.to_owned(), score: None, vector: None }
}
