package flinkclient

import "testing"

func TestFailureKind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, trace string
		want        Kind
	}{
		{"job gone", "org.apache.flink.runtime.messages.FlinkJobNotFoundException: Could not find Flink job (abc)\n\tat x", KindNotFound},
		// Flink 2.0.2, stop-with-savepoint of a job that had just finished.
		{"job ended, scheduler still there", "java.util.concurrent.CompletionException: java.lang.IllegalStateException: Job a3c8610b83720a4973a8b12ac01ade09 is not a streaming job.\n\tat x", KindNotFound},
		{"savepoint already disposed", "java.io.FileNotFoundException: Cannot find checkpoint or savepoint file/directory 'file:/sp' on file system 'file'.", KindNotFound},
		{"savepoint failed", "org.apache.flink.runtime.checkpoint.CheckpointException: Checkpoint expired before completing.", KindOperationFailed},
		{"no cause", "", KindOperationFailed},
	} {
		if got := failureKind(tc.trace); got != tc.want {
			t.Errorf("%s: failureKind = %v, want %v", tc.name, got, tc.want)
		}
	}
}
