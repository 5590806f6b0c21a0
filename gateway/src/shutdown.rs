//! The binaries' graceful-shutdown trigger, shared by the authserver and ext_authz.

/// Resolves on Ctrl-C or SIGTERM (what Kubernetes and `cargo xtask up` send). A signal whose
/// handler cannot be installed never fires, rather than stopping the server at once.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}
