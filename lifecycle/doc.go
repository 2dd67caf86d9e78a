// Package lifecycle reconciles one rendered Flink resource at a time: it keeps
// the resource's status in a ConfigMap used as a write-ahead log, builds the
// Kubernetes objects of a Flink cluster, and drives deploy, upgrade, suspend,
// resume, savepoint, rollback and delete step by step.
package lifecycle
