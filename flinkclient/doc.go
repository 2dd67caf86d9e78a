// Package flinkclient is a typed client for the Flink JobManager REST API of
// Flink 1.20 and 2.x. Version differences stay inside the package; errors are
// typed so callers can tell "retry later" from "a human must look".
package flinkclient
