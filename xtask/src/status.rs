//! `cargo xtask status`: every component of a running stack in one table — Redis, the
//! authserver (liveness and readiness), ext_authz (gRPC health and what its metrics say of
//! Redis), Envoy (admin `/ready`) and every MCP server's upstream — from the gateway config
//! `up` wrote (`.data/gateway.yaml`). Exits non-zero when anything is not up.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use mcp_auth_gateway::GatewayConfig;
use mcp_auth_gateway::env::ProcessEnv;

/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One row of the table.
struct Row {
    component: String,
    address: String,
    up: bool,
    detail: String,
}

pub async fn status(config_path: &Path) -> Result<()> {
    let config = GatewayConfig::load_with_env(config_path, &ProcessEnv).with_context(|| {
        format!(
            "reading {} (run `cargo xtask up` first)",
            config_path.display()
        )
    })?;
    let mut rows = vec![
        redis(&config).await,
        authserver(&config).await,
        ext_authz(&config).await,
        envoy(&config).await,
    ];
    for service in &config.services {
        rows.push(upstream(&service.name, &service.upstream.url).await);
    }
    print!("{}", table(&rows));
    let down = rows.iter().filter(|r| !r.up).count();
    anyhow::ensure!(down == 0, "{down} of {} components are not up", rows.len());
    Ok(())
}

fn table(rows: &[Row]) -> String {
    let header = ["COMPONENT", "ADDRESS", "STATUS", "DETAIL"];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let status = if r.up { "up" } else { "DOWN" };
            [
                r.component.clone(),
                r.address.clone(),
                status.to_owned(),
                r.detail.clone(),
            ]
        })
        .collect();
    let width = |i: usize| {
        cells
            .iter()
            .map(|c| c[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2)];
    let line = |c: [&str; 4]| {
        format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}\n",
            c[0],
            c[1],
            c[2],
            c[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )
    };
    let mut out = line(header);
    for c in &cells {
        out.push_str(&line([&c[0], &c[1], &c[2], &c[3]]));
    }
    out
}

async fn redis(config: &GatewayConfig) -> Row {
    let outcome = async {
        let client = mcp_auth_gateway::redis_client::client(&config.redis)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
        anyhow::Ok(pong)
    };
    let (up, detail) = match tokio::time::timeout(PROBE_TIMEOUT, outcome).await {
        Ok(Ok(pong)) => (true, pong),
        Ok(Err(error)) => (false, format!("{error:#}")),
        Err(_) => (false, "no answer within 2 s".to_owned()),
    };
    Row {
        component: "redis".into(),
        // Never the password a URL may carry.
        address: redacted(config.redis.url.as_str()),
        up,
        detail,
    }
}

fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "(unparsable redis.url)".to_owned(),
    }
}

async fn get(url: &str) -> Result<(u16, String)> {
    let response = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .build()?
        .get(url)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?.trim().to_owned()))
}

async fn authserver(config: &GatewayConfig) -> Row {
    let address = config.authserver_endpoint().authority();
    let (up, detail) = match (
        get(&format!("http://{address}/healthz")).await,
        get(&format!("http://{address}/readyz")).await,
    ) {
        (Ok((200, _)), Ok((200, _))) => (true, "live, ready".to_owned()),
        (Ok((200, _)), Ok((status, body))) => {
            (false, format!("live, not ready ({status}: {body})"))
        }
        (Ok((status, _)), _) => (false, format!("/healthz answered {status}")),
        (Err(error), _) => (false, format!("{error:#}")),
    };
    Row {
        component: "authserver".into(),
        address,
        up,
        detail,
    }
}

async fn ext_authz(config: &GatewayConfig) -> Row {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let address = config.ext_authz_endpoint().authority();
    let health = async {
        let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))?
            .connect()
            .await?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?;
        anyhow::Ok(answer.into_inner().status)
    };
    let serving = match tokio::time::timeout(PROBE_TIMEOUT, health).await {
        Ok(Ok(status)) => Ok(status == ServingStatus::Serving as i32),
        Ok(Err(error)) => Err(format!("{error:#}")),
        Err(_) => Err("no answer within 2 s".to_owned()),
    };
    // What the metrics add: whether it answers from memory past a Redis loss.
    let metrics = config.ext_authz.metrics_listen;
    let from_memory = match get(&format!("http://{metrics}/metrics")).await {
        Ok((200, text)) => {
            Some(mcp_auth_e2e::metrics::value(&text, "mcp_auth_answering_from_memory", &[]) > 0.0)
        }
        _ => None,
    };
    let (up, detail) = match (serving, from_memory) {
        (Ok(true), _) => (true, "SERVING".to_owned()),
        (Ok(false), Some(true)) => (
            false,
            "NOT_SERVING: Redis lost, answering from memory".to_owned(),
        ),
        (Ok(false), _) => (false, "NOT_SERVING".to_owned()),
        (Err(error), _) => (false, error),
    };
    Row {
        component: "ext_authz".into(),
        address,
        up,
        detail,
    }
}

async fn envoy(config: &GatewayConfig) -> Row {
    let address = config.admin.address.to_string();
    let (up, detail) = match get(&format!("http://{address}/ready")).await {
        Ok((200, body)) => (true, body),
        Ok((status, body)) => (false, format!("{status}: {body}")),
        Err(error) => (false, format!("{error:#}")),
    };
    Row {
        component: "envoy".into(),
        address,
        up,
        detail,
    }
}

async fn upstream(name: &str, url: &url::Url) -> Row {
    let address = match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        _ => url.to_string(),
    };
    let connect = tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(&address));
    let (up, detail) = match connect.await {
        Ok(Ok(_)) => (true, "accepts connections".to_owned()),
        Ok(Err(error)) => (false, error.to_string()),
        Err(_) => (false, "no answer within 2 s".to_owned()),
    };
    Row {
        component: format!("service {name}"),
        address,
        up,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_aligns_its_columns_and_hides_redis_passwords() {
        let rows = [
            Row {
                component: "redis".into(),
                address: redacted("redis://:hunter2@10.0.0.1:6379/0"),
                up: true,
                detail: "PONG".into(),
            },
            Row {
                component: "service everything".into(),
                address: "127.0.0.1:3001".into(),
                up: false,
                detail: "Connection refused".into(),
            },
        ];
        let text = table(&rows);
        assert!(!text.contains("hunter2"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let column = |line: &str| line.find("up").or_else(|| line.find("DOWN"));
        assert_eq!(column(lines[1]), column(lines[2]), "{text}");
        assert!(lines[2].contains("DOWN"));
    }
}
