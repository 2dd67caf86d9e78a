// Package render turns Kustomize entry points of a Git snapshot into typed,
// validated FlinkDeployment and FlinkSessionJob specs (the Flink Kubernetes
// Operator's flink.apache.org/v1beta1 schema), re-rendering only the entry
// points whose input files changed.
package render
