// A process that is PID 1 in a container gets no default action for SIGTERM, so a server
// that installs no handler would only stop at the engine's SIGKILL, seconds later.
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}
