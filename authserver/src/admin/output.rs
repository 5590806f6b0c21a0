//! How the admin commands print: aligned tables and `key: value` blocks for people,
//! timestamps as RFC 3339 UTC, one JSON document for scripts (`--json`).
//!
//! Every text that came from outside (client names, logins, redirect URIs) goes through
//! [`printable`], so a stored control character cannot drive the operator's terminal.

use std::fmt::Write as _;

use serde::Serialize;

use super::backup::Backup;
use super::backup::format::RecordKind;
use super::listing::{ClientEntry, ConsentEntry, GrantDetail, GrantEntry, UserDetail, UserEntry};
use super::purge::{PurgeKind, PurgeReport};
use super::restore::RestoreReport;

/// `secs` (Unix time) as RFC 3339 UTC (`2026-01-02T03:04:05Z`).
pub fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .map_or_else(
            || secs.to_string(),
            |at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
}

/// When a key with `ttl_secs` left at `now` expires: RFC 3339, or `never`.
pub fn expiry(now: u64, ttl_secs: Option<u64>) -> String {
    ttl_secs.map_or_else(
        || "never".to_owned(),
        |ttl| rfc3339(now.saturating_add(ttl)),
    )
}

/// `text` with control and format characters replaced by `?`.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}') {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// One JSON document, pretty-printed, with a final newline.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(value).map(|mut text| {
        text.push('\n');
        text
    })
}

/// A table whose columns are as wide as their widest cell, separated by two spaces.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (made printable).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| printable(c)).collect());
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                match widths.get_mut(i) {
                    Some(width) => *width = (*width).max(cell.chars().count()),
                    None => widths.push(cell.chars().count()),
                }
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let pad = widths
                    .get(i)
                    .map_or(0, |w| w.saturating_sub(cell.chars().count()));
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `label: value` lines, labels aligned.
fn block(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (label, value) in pairs {
        let value = if value.is_empty() { "-" } else { value };
        let _ = writeln!(out, "{label:<width$}  {}", printable(value));
    }
    out
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

/// `admin clients list`.
pub fn clients_table(clients: &[ClientEntry], now: u64) -> String {
    let mut table = Table::new(&["CLIENT_ID", "NAME", "AUTH", "USED", "ISSUED", "EXPIRES"]);
    for client in clients {
        let record = &client.record;
        table.row(vec![
            record.client_id.clone(),
            or_dash(record.metadata.client_name.as_deref()),
            or_dash(record.metadata.token_endpoint_auth_method.as_deref()),
            if record.used { "yes" } else { "no" }.to_owned(),
            rfc3339(record.issued_at),
            expiry(now, client.ttl_secs),
        ]);
    }
    table.render()
}

/// `admin clients show`: no digest is printed, only whether the client has a secret.
pub fn client_block(client: &ClientEntry, now: u64) -> String {
    let record = &client.record;
    let m = &record.metadata;
    let list = |values: Option<&Vec<String>>| values.map_or("-".to_owned(), |v| v.join(" "));
    block(&[
        ("client_id", record.client_id.clone()),
        ("name", or_dash(m.client_name.as_deref())),
        (
            "auth method",
            or_dash(m.token_endpoint_auth_method.as_deref()),
        ),
        (
            "client secret",
            if record.secret_digest.is_some() {
                "yes (stored as a digest)"
            } else {
                "none"
            }
            .to_owned(),
        ),
        ("application type", or_dash(m.application_type.as_deref())),
        ("redirect uris", m.redirect_uris.join(" ")),
        ("grant types", list(m.grant_types.as_ref())),
        ("scope", or_dash(m.scope.as_deref())),
        ("client uri", or_dash(m.client_uri.as_deref())),
        ("used", if record.used { "yes" } else { "no" }.to_owned()),
        ("issued", rfc3339(record.issued_at)),
        (
            "expires",
            record.expires_at.map_or("never".to_owned(), rfc3339),
        ),
        ("record expires", expiry(now, client.ttl_secs)),
    ])
}

/// `admin grants list` (and a user's grants).
pub fn grants_table(grants: &[GrantEntry], now: u64) -> String {
    let mut table = Table::new(&[
        "GRANT_ID",
        "USER",
        "CLIENT_ID",
        "RESOURCE",
        "SCOPES",
        "CREATED",
        "EXPIRES",
    ]);
    for grant in grants {
        let record = &grant.record;
        table.row(vec![
            grant.grant_id.clone(),
            record.subject.clone(),
            record.client_id.clone(),
            record.resource.clone(),
            record.scopes.join(" "),
            rfc3339(record.created_at),
            expiry(now, grant.ttl_secs),
        ]);
    }
    table.render()
}

/// `admin grants show`.
pub fn grant_block(detail: &GrantDetail, now: u64) -> String {
    let grant = &detail.grant;
    block(&[
        ("grant_id", grant.grant_id.clone()),
        ("user", grant.record.subject.clone()),
        ("client_id", grant.record.client_id.clone()),
        ("resource", grant.record.resource.clone()),
        ("scopes", grant.record.scopes.join(" ")),
        ("created", rfc3339(grant.record.created_at)),
        ("expires", expiry(now, grant.ttl_secs)),
        (
            "refresh tokens",
            format!(
                "{} active, {} rotated",
                detail.refresh_tokens.active, detail.refresh_tokens.rotated
            ),
        ),
    ])
}

/// `admin users list`.
pub fn users_table(users: &[UserEntry], now: u64) -> String {
    let mut table = Table::new(&["SUBJECT", "LOGIN", "ORGS", "TEAMS", "UPDATED", "EXPIRES"]);
    for user in users {
        let record = &user.record;
        table.row(vec![
            record.subject.clone(),
            record.login.clone(),
            record.orgs.join(","),
            record.teams.join(","),
            rfc3339(record.updated_at),
            expiry(now, user.ttl_secs),
        ]);
    }
    table.render()
}

fn consents_table(consents: &[ConsentEntry], now: u64) -> String {
    let mut table = Table::new(&["CLIENT_ID", "RESOURCES", "UPDATED", "EXPIRES"]);
    for consent in consents {
        let resources: Vec<&str> = consent
            .record
            .resources
            .keys()
            .map(String::as_str)
            .collect();
        table.row(vec![
            consent.client_id.clone(),
            resources.join(" "),
            rfc3339(consent.record.updated_at),
            expiry(now, consent.ttl_secs),
        ]);
    }
    table.render()
}

/// `admin users show`: the record, then the user's grants and consents.
pub fn user_block(detail: &UserDetail, now: u64) -> String {
    let mut out = match &detail.user {
        Some(user) => {
            let record = &user.record;
            block(&[
                ("subject", record.subject.clone()),
                ("login", record.login.clone()),
                ("email", or_dash(record.email.as_deref())),
                ("orgs", record.orgs.join(" ")),
                ("teams", record.teams.join(" ")),
                ("groups", record.groups.join(" ")),
                ("updated", rfc3339(record.updated_at)),
                ("record expires", expiry(now, user.ttl_secs)),
            ])
        }
        None => block(&[
            ("subject", detail.subject.clone()),
            ("record", "none (expired)".to_owned()),
        ]),
    };
    let _ = write!(out, "\ngrants ({}):\n", detail.grants.len());
    if !detail.grants.is_empty() {
        out.push_str(&grants_table(&detail.grants, now));
    }
    let _ = write!(out, "\nconsents ({}):\n", detail.consents.len());
    if !detail.consents.is_empty() {
        out.push_str(&consents_table(&detail.consents, now));
    }
    out
}

/// `admin purge`: each record deleted (relative key, why), then the count per kind.
pub fn purge_report(report: &PurgeReport) -> String {
    let mut out = String::new();
    if !report.purged.is_empty() {
        let mut table = Table::new(&["KIND", "KEY", "REASON"]);
        for item in &report.purged {
            let kind = serde_json::to_value(item.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            table.row(vec![kind, item.key.clone(), item.reason.to_owned()]);
        }
        out.push_str(&table.render());
    }
    let counts: Vec<String> = PurgeKind::ALL
        .iter()
        .map(|kind| format!("{} {}", kind.plural(), report.count(*kind)))
        .collect();
    let verb = if report.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let _ = writeln!(out, "{verb}: {}", counts.join(", "));
    out
}

/// `admin backup`: where, when, and the count per kind.
pub fn backup_summary(backup: &Backup, out: &std::path::Path) -> String {
    let counts: Vec<String> = RecordKind::ALL
        .iter()
        .map(|kind| {
            let n = backup.counts.get(kind).copied().unwrap_or(0);
            format!("{} {n}", kind.plural())
        })
        .collect();
    format!(
        "backed up {} records under {:?} to {} at {}: {}\n",
        backup.header.records,
        backup.header.key_prefix,
        out.display(),
        backup.header.created_at,
        counts.join(", ")
    )
}

/// `admin restore`: a row per kind.
pub fn restore_summary(report: &RestoreReport) -> String {
    let mut table = Table::new(&["KIND", "RESTORED", "UNCHANGED", "KEPT", "EXPIRED"]);
    for kind in RecordKind::ALL {
        let n = report.of(kind);
        table.row(vec![
            kind.plural().to_owned(),
            n.restored.to_string(),
            n.unchanged.to_string(),
            n.kept.to_string(),
            n.expired.to_string(),
        ]);
    }
    let mut out = table.render();
    out.push_str("(kept: already there with another value, left as it is; expired: its TTL ran out since the backup)\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_drop_trailing_spaces() {
        let mut table = Table::new(&["ID", "NAME"]);
        table.row(vec!["a".into(), "long name".into()]);
        table.row(vec!["longer-id".into(), "x".into()]);
        assert_eq!(
            table.render(),
            "ID         NAME\na          long name\nlonger-id  x\n"
        );
    }

    #[test]
    fn cells_cannot_carry_terminal_escapes() {
        let mut table = Table::new(&["NAME"]);
        table.row(vec!["evil\u{1b}[2J\u{202e}name".into()]);
        assert_eq!(table.render(), "NAME\nevil?[2J?name\n");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_767_323_045), "2026-01-02T03:04:05Z");
        assert_eq!(expiry(100, None), "never");
        assert_eq!(expiry(0, Some(86_400)), "1970-01-02T00:00:00Z");
    }
}
