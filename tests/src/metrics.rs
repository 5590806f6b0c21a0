//! Reading a Prometheus scrape in tests: the value of one sample.

use anyhow::{Context, Result};

/// The text `GET http://{address}/metrics` answers.
pub async fn scrape(address: impl std::fmt::Display) -> Result<String> {
    let response = reqwest::get(format!("http://{address}/metrics"))
        .await
        .context("scraping /metrics")?;
    anyhow::ensure!(
        response.status().is_success(),
        "/metrics answered {}",
        response.status()
    );
    Ok(response.text().await?)
}

/// The value of the sample `name` whose labels include every `label="value"` of `labels`
/// (summed over the samples that match); 0 when none does, as Prometheus counts an unseen
/// counter.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())
            .flatten()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_found_by_name_and_labels() {
        let text = "# HELP x_total x\nx_total{a=\"1\",b=\"2\"} 3\nx_total{a=\"1\",b=\"3\"} 4\ny 7\n# EOF\n";
        assert_eq!(value(text, "x_total", &[("a", "1")]), 7.0);
        assert_eq!(value(text, "x_total", &[("b", "3")]), 4.0);
        assert_eq!(value(text, "x_total", &[("b", "9")]), 0.0);
        assert_eq!(value(text, "y", &[]), 7.0);
    }
}
