// Package e2e holds integration tests of package cluster against the test
// bed: the built objects are created in a real kube-apiserver (its
// validation and garbage collector), and the Flink clusters they describe
// run as real Flink processes through the test bed's node agent. It has no
// non-test code; the tests skip under -short.
package e2e
