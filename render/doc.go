// Package render turns Kustomize entry points of a Git snapshot into typed,
// validated FlinkDeployment and FlinkSessionJob specs (the Flink Kubernetes
// Operator's flink.apache.org/v1beta1 schema), re-rendering only the entry
// points whose input files changed.
//
// A render (Renderer.Render) takes a Source — the sync package's snapshot,
// a DirSource over a working copy, or a MapSource — and Options, and for
// each configured entry point:
//
//  1. prechecks the kustomizations reachable from it: remote resources (URLs,
//     git specs), absolute paths, paths leaving the repository, missing
//     resources and files refused by the snapshot (symlinks leaving the
//     repository, files over the size limit) are problems before kustomize
//     runs, so a build never touches the network or the host's disk;
//  2. builds it in-process with kustomize (krusty, plugins off) over an
//     in-memory filesystem holding only the snapshot's files, one build at a
//     time, with panics recovered and kustomize's global OpenAPI schema
//     reset whenever a build set its own;
//  3. records every path the build looked at with its Git blob hash, so the
//     next render reuses the build while those files are unchanged;
//  4. decodes each object strictly (unknown fields, wrong types and
//     unparsable quantities are problems naming the field), applies the
//     default namespace, validates it like the operator's validator, runs
//     Options.Check (the daemon passes the cluster object builder, so what
//     passes render is what the reconciler can apply), and hashes its
//     normalised spec (SpecHash).
//
// Across entry points it reports resources declared twice and session jobs
// whose session cluster is missing or is an application cluster, and checks
// each session job with its cluster's configuration merged in. A broken
// entry point or an invalid resource is reported (Result.Problems,
// Result.Invalid, EntryResult.Failed) and never blocks the others.
//
// Flink versions: every version the operator supports (v1_15 … v2_4) is
// accepted; the ones the test bed does not run (DefaultTestedVersions) get a
// warning. Every field and operator key the daemon does not act on is
// classified in one table (support.go) and warned about when set.
package render
