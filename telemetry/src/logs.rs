//! Logs on stderr: text for people (the default) or one JSON object per line for log
//! pipelines (`LOG_FORMAT=json`), filtered by `RUST_LOG` (default `info`).
//!
//! A JSON line has `timestamp` (RFC 3339), `level`, `target`, the event's fields at the top
//! level (`message` among them) and `span` / `spans` with the fields of the spans it happened
//! in (the authserver's `request` span carries `request_id`, `method` and `path`). No
//! component logs a token, a secret, a code or a query string: what a line says is safe to
//! ship to a log store.

use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The variable that picks the format.
pub const LOG_FORMAT_ENV: &str = "LOG_FORMAT";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `LOG_FORMAT` holds something else than `text` or `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{LOG_FORMAT_ENV}={value:?}: expected `text` or `json`")]
pub struct LogFormatError {
    value: String,
}

impl LogFormat {
    /// The format `LOG_FORMAT` names; unset or empty is [`LogFormat::Text`].
    pub fn from_value(value: Option<&str>) -> Result<Self, LogFormatError> {
        match value.map(str::trim) {
            None | Some("") => Ok(LogFormat::Text),
            Some(v) if v.eq_ignore_ascii_case("text") => Ok(LogFormat::Text),
            Some(v) if v.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
            Some(v) => Err(LogFormatError {
                value: v.to_owned(),
            }),
        }
    }
}

/// The stderr layer in `format`, filtered by `RUST_LOG` (default `info`).
pub fn stderr_layer<S>(format: LogFormat) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    layer_to(format, std::io::stderr, ansi)
        .with_filter(filter)
        .boxed()
}

/// The formatting layer of `format` writing to `writer`, unfiltered.
pub fn layer_to<S, W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Text => layer.with_ansi(ansi).boxed(),
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    }
}

/// Installs [`stderr_layer`] as the process' only subscriber.
pub fn init(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry()
        .with(stderr_layer(format))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_named_text_or_json() {
        assert_eq!(LogFormat::from_value(None), Ok(LogFormat::Text));
        assert_eq!(LogFormat::from_value(Some("")), Ok(LogFormat::Text));
        assert_eq!(LogFormat::from_value(Some("JSON")), Ok(LogFormat::Json));
        assert_eq!(LogFormat::from_value(Some(" text ")), Ok(LogFormat::Text));
        let error = LogFormat::from_value(Some("logfmt")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "LOG_FORMAT=\"logfmt\": expected `text` or `json`"
        );
    }
}
