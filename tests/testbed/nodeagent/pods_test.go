package nodeagent

import (
	"os/exec"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// A process exit becomes the container state a kubelet reports: the exit
// code, or 128+signal for a killed process (137 for SIGKILL).
func TestTerminated(t *testing.T) {
	t.Parallel()
	run := func(script string) error { return exec.Command("sh", "-c", script).Run() }
	tests := []struct {
		name     string
		err      error
		code     int32
		reason   string
		withText bool
	}{
		{name: "clean exit", err: nil, code: 0, reason: "Completed"},
		{name: "exit 3", err: run("exit 3"), code: 3, reason: "Error"},
		{name: "SIGKILL", err: run("kill -9 $$"), code: 137, reason: "Error"},
		{name: "SIGTERM", err: run("kill -15 $$"), code: 143, reason: "Error"},
		{name: "no exit status", err: exec.ErrNotFound, code: 128, reason: "Error", withText: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := terminated(tt.err, time.Now())
			if got.ExitCode != tt.code || got.Reason != tt.reason || (got.Message != "") != tt.withText {
				t.Errorf("terminated(%v) = code %d reason %q message %q, want %d %q (message: %v)",
					tt.err, got.ExitCode, got.Reason, got.Message, tt.code, tt.reason, tt.withText)
			}
		})
	}
}

// Status writes are skipped only when nothing a reader acts on changed.
func TestPodStatusEqual(t *testing.T) {
	t.Parallel()
	base := func() corev1.PodStatus {
		return corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "127.0.0.1",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", Ready: true,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}},
		}
	}
	if !podStatusEqual(base(), base()) {
		t.Fatal("identical statuses differ")
	}
	changes := map[string]func(*corev1.PodStatus){
		"phase":    func(s *corev1.PodStatus) { s.Phase = corev1.PodFailed },
		"ready":    func(s *corev1.PodStatus) { s.Conditions[0].Status = corev1.ConditionFalse },
		"restarts": func(s *corev1.PodStatus) { s.ContainerStatuses[0].RestartCount = 1 },
		"state": func(s *corev1.PodStatus) {
			s.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}
		},
		"waiting": func(s *corev1.PodStatus) {
			s.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "x"}}
		},
		"ip":        func(s *corev1.PodStatus) { s.PodIP = "" },
		"container": func(s *corev1.PodStatus) { s.ContainerStatuses[0].Ready = false },
	}
	for name, change := range changes {
		s := base()
		change(&s)
		if podStatusEqual(base(), s) {
			t.Errorf("a change of %s is not seen", name)
		}
	}
}
