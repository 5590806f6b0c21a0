//! Child processes of a local stack: started in their own process groups, their output
//! streamed line by line with a prefix per component, stopped together (SIGTERM, then SIGKILL
//! after a deadline) so nothing outlives `cargo xtask up`.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// How long children get to exit after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
const COLOURS: &[&str] = &["36", "33", "35", "32", "34", "31", "96", "93"];

/// A running child.
struct Running {
    name: String,
    child: Child,
}

/// The children of one stack.
pub struct Supervisor {
    children: Vec<Running>,
    exited: mpsc::UnboundedSender<String>,
    exits: mpsc::UnboundedReceiver<String>,
}

impl Supervisor {
    pub fn new() -> Self {
        let (exited, exits) = mpsc::unbounded_channel();
        Self {
            children: Vec::new(),
            exited,
            exits,
        }
    }

    /// Starts `command` as component `name`, streaming its output with a `[name]` prefix.
    pub fn spawn(&mut self, name: &str, mut command: Command) -> Result<()> {
        let shown = format!("{:?}", command.as_std());
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {name}: {shown}"))?;
        let colour = COLOURS[self.children.len() % COLOURS.len()];
        let prefix = format!("\x1b[{colour}m{name:>12} |\x1b[0m");
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(stream_lines(stdout, prefix.clone(), None));
        }
        if let Some(stderr) = child.stderr.take() {
            // The stderr reader ends when the child has exited: report it then.
            tokio::spawn(stream_lines(
                stderr,
                prefix,
                Some((self.exited.clone(), name.to_owned())),
            ));
        }
        self.children.push(Running {
            name: name.to_owned(),
            child,
        });
        Ok(())
    }

    /// Resolves with the name of the first child that exits.
    pub async fn first_exit(&mut self) -> String {
        self.exits.recv().await.unwrap_or_else(|| "?".to_owned())
    }

    /// SIGTERM to every child's process group, SIGKILL to those still running at the deadline.
    pub async fn stop_all(&mut self) {
        for running in self.children.iter().rev() {
            if let Some(pid) = running.child.id().and_then(|id| i32::try_from(id).ok()) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        for running in self.children.iter_mut().rev() {
            match tokio::time::timeout(STOP_DEADLINE, running.child.wait()).await {
                Ok(_) => println!("stopped {}", running.name),
                Err(_) => {
                    if let Some(pid) = running.child.id().and_then(|id| i32::try_from(id).ok()) {
                        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                    let _ = running.child.wait().await;
                    println!(
                        "killed {} (did not stop within {STOP_DEADLINE:?})",
                        running.name
                    );
                }
            }
        }
    }
}

async fn stream_lines(
    output: impl AsyncRead + Unpin,
    prefix: String,
    on_end: Option<(mpsc::UnboundedSender<String>, String)>,
) {
    let mut lines = BufReader::new(output).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        println!("{prefix} {line}");
    }
    if let Some((exited, name)) = on_end {
        let _ = exited.send(name);
    }
}
