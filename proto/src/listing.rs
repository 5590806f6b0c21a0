//! Which listed tools, prompts and resources a caller is shown: decided by ext_authz (it
//! knows the policy and who the caller is), applied by the filter to `*/list` results as
//! they stream back (it sees the response; ext_authz does not).
//!
//! ext_authz evaluates every rule that could hide an item for this caller on this service,
//! leaving only the name match, and sends the result as [`VISIBILITY_HEADER`]: on the
//! response (per-request mode: `response_headers_to_add`, which the filter reads and removes
//! before the client sees it) or in the `Decide` answer (fast mode). No header: nothing is
//! hidden, and the filter leaves the response alone.

use serde::{Deserialize, Serialize};

use crate::mcp::glob_match;

/// Carries a [`Visibility`] (compact JSON) from ext_authz to the filter.
pub const VISIBILITY_HEADER: &str = "x-mcp-auth-visibility";

/// The kinds of listed things, each with the result array that holds them, the field that
/// names an item, and the operation policy rules name for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ListKind {
    /// `tools/list` → `result.tools[].name`, used by `tools/call`.
    #[serde(rename = "tools")]
    Tools,
    /// `prompts/list` → `result.prompts[].name`, used by `prompts/get`.
    #[serde(rename = "prompts")]
    Prompts,
    /// `resources/list` → `result.resources[].uri`, used by `resources/read`.
    #[serde(rename = "resources")]
    Resources,
    /// `resources/templates/list` → `result.resourceTemplates[].uriTemplate`, matched as a
    /// URI against `resources/read` rules.
    #[serde(rename = "resourceTemplates")]
    ResourceTemplates,
}

impl ListKind {
    pub const ALL: [ListKind; 4] = [
        ListKind::Tools,
        ListKind::Prompts,
        ListKind::Resources,
        ListKind::ResourceTemplates,
    ];

    /// The kind a list method returns (`tools/list` → tools).
    pub fn for_method(method: &str) -> Option<ListKind> {
        match method {
            "tools/list" => Some(ListKind::Tools),
            "prompts/list" => Some(ListKind::Prompts),
            "resources/list" => Some(ListKind::Resources),
            "resources/templates/list" => Some(ListKind::ResourceTemplates),
            _ => None,
        }
    }

    /// The member of a list result that holds the items.
    pub fn array(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::ResourceTemplates => "resourceTemplates",
        }
    }

    /// The member of an item that names it.
    pub fn name_field(self) -> &'static str {
        match self {
            ListKind::Tools | ListKind::Prompts => "name",
            ListKind::Resources => "uri",
            ListKind::ResourceTemplates => "uriTemplate",
        }
    }

    /// The operation that uses a listed item.
    pub fn operation(self) -> &'static str {
        match self {
            ListKind::Tools => crate::mcp::TOOLS_CALL,
            ListKind::Prompts => crate::mcp::PROMPTS_GET,
            ListKind::Resources | ListKind::ResourceTemplates => crate::mcp::RESOURCES_READ,
        }
    }
}

/// What one caller is shown of one kind: the first rule whose pattern matches an item's
/// name decides; an item no rule matches is shown when `default` is true.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindVisibility {
    pub kind: ListKind,
    #[serde(rename = "d")]
    pub default: bool,
    /// `(pattern, shown)` in rule order.
    #[serde(rename = "r", default)]
    pub rules: Vec<(String, bool)>,
}

/// What one caller is shown, for every kind that hides something from them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Visibility {
    #[serde(rename = "k")]
    pub kinds: Vec<KindVisibility>,
}

impl Visibility {
    /// Is the item named `name` of `kind` shown? Kinds without an entry show everything.
    pub fn shows(&self, kind: ListKind, name: &str) -> bool {
        let Some(entry) = self.kinds.iter().find(|k| k.kind == kind) else {
            return true;
        };
        entry
            .rules
            .iter()
            .find(|(pattern, _)| glob_match(pattern, name))
            .map_or(entry.default, |(_, shown)| *shown)
    }

    /// True when nothing is hidden from anyone of any kind (then no header is sent).
    pub fn shows_everything(&self) -> bool {
        self.kinds
            .iter()
            .all(|k| k.default && k.rules.iter().all(|(_, shown)| *shown))
    }

    /// The header value.
    pub fn encode(&self) -> String {
        // Serialising plain strings, bools and a vector cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a header value; `None` when it is not one (the filter then hides every item of
    /// every kind rather than guess).
    pub fn decode(value: &[u8]) -> Option<Self> {
        serde_json::from_slice(value).ok()
    }

    /// Hides everything: what the filter applies when the value it was given is unreadable.
    pub fn nothing() -> Self {
        Self {
            kinds: ListKind::ALL
                .iter()
                .map(|kind| KindVisibility {
                    kind: *kind,
                    default: false,
                    rules: Vec::new(),
                })
                .collect(),
        }
    }
}
