// Validates Istio objects against Istio's CRD schemas (npm @kubernetes-models/istio), offline.
//
//   node validate-istio.mjs NPM_PREFIX OBJECTS.json
//
// OBJECTS.json is an array of Kubernetes objects (what `cargo xtask validate-manifests` found
// in the built overlays). Every Istio object must be of a kind the package knows and pass its
// schema; the IstioOperator's schema says nothing about `spec`, so its mesh config's
// `extensionProviders` entries are checked here against Istio's MeshConfig proto
// (mesh/v1alpha1/config.proto, EnvoyExternalAuthorizationGrpcProvider). Exit 1 on any error.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [prefix, objectsFile] = process.argv.slice(2);
if (!prefix || !objectsFile) {
  console.error("usage: node validate-istio.mjs NPM_PREFIX OBJECTS.json");
  process.exit(2);
}
const istio = join(prefix, "node_modules/@kubernetes-models/istio");
const objects = JSON.parse(readFileSync(objectsFile, "utf8"));
const errors = [];
const counts = new Map();

for (const object of objects) {
  const where = `${object.kind} ${object.metadata?.namespace ?? ""}/${object.metadata?.name ?? "?"}`;
  const [group, version] = String(object.apiVersion).split("/");
  let module;
  try {
    module = await import(pathToFileURL(join(istio, group, version, `${object.kind}.js`)).href);
  } catch {
    errors.push(`${where}: ${object.apiVersion} ${object.kind} is not an Istio kind`);
    continue;
  }
  const Model = module[object.kind];
  try {
    new Model(object).validate();
  } catch (error) {
    errors.push(`${where}: ${error.message}`);
    continue;
  }
  if (object.kind === "IstioOperator") {
    for (const [i, provider] of (object.spec?.meshConfig?.extensionProviders ?? []).entries()) {
      for (const problem of checkProvider(provider)) {
        errors.push(`${where}: spec.meshConfig.extensionProviders[${i}]: ${problem}`);
      }
    }
  }
  counts.set(object.kind, (counts.get(object.kind) ?? 0) + 1);
}

if (errors.length > 0) {
  for (const error of errors) console.error(error);
  process.exit(1);
}
const summary = [...counts].map(([kind, n]) => `${n} ${kind}`).join(", ");
console.log(`@kubernetes-models/istio: ${objects.length} Istio objects valid (${summary})`);

/** MeshConfig.ExtensionProvider with an envoyExtAuthzGrpc provider (what we render). */
function checkProvider(provider) {
  const problems = [];
  const allowed = (value, fields, path) => {
    for (const key of Object.keys(value ?? {})) {
      if (!(key in fields)) problems.push(`${path}${key}: unknown field`);
    }
    for (const [key, type] of Object.entries(fields)) {
      if (value?.[key] !== undefined && !type(value[key])) problems.push(`${path}${key}: bad value ${JSON.stringify(value[key])}`);
    }
  };
  const string = (v) => typeof v === "string" && v.length > 0;
  const bool = (v) => typeof v === "boolean";
  const uint = (v) => Number.isInteger(v) && v >= 0;
  const port = (v) => Number.isInteger(v) && v > 0 && v < 65536;
  const duration = (v) => typeof v === "string" && /^\d+(\.\d{1,9})?s$/.test(v);
  const status = (v) => typeof v === "string" && /^[1-5]\d\d$/.test(v);
  allowed(provider, { name: string, envoyExtAuthzGrpc: (v) => typeof v === "object" }, "");
  if (!string(provider?.name)) problems.push("name: required");
  const grpc = provider?.envoyExtAuthzGrpc;
  if (grpc === undefined) {
    problems.push("envoyExtAuthzGrpc: required");
    return problems;
  }
  allowed(
    grpc,
    {
      service: string,
      port,
      timeout: duration,
      failOpen: bool,
      clearRouteCache: bool,
      statusOnError: status,
      includeRequestBodyInCheck: (v) => typeof v === "object",
    },
    "envoyExtAuthzGrpc.",
  );
  if (!string(grpc.service)) problems.push("envoyExtAuthzGrpc.service: required");
  if (!port(grpc.port)) problems.push("envoyExtAuthzGrpc.port: required");
  allowed(
    grpc.includeRequestBodyInCheck,
    { maxRequestBytes: uint, allowPartialMessage: bool, packAsBytes: bool },
    "envoyExtAuthzGrpc.includeRequestBodyInCheck.",
  );
  return problems;
}
