package lifecycle

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

func TestRunningCondition(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	running := runningCondition(nil, true, v1beta1.JobRunning, v1beta1.JMReady, t0)
	for _, c := range []struct {
		name        string
		old         []metav1.Condition
		app         bool
		job         v1beta1.FlinkJobState
		jm          v1beta1.JobManagerDeploymentStatus
		status      metav1.ConditionStatus
		reason, msg string
		since       time.Time
	}{
		{"application running", nil, true, v1beta1.JobRunning, v1beta1.JMReady, metav1.ConditionTrue, "Running", "Job status RUNNING", t1},
		{"still running keeps its transition time", running, true, v1beta1.JobRunning, v1beta1.JMReady, metav1.ConditionTrue, "Running", "Job status RUNNING", t0},
		{"failed after running", running, true, v1beta1.JobFailed, v1beta1.JMReady, metav1.ConditionFalse, "Failed", "Job status FAILED", t1},
		{"no job state yet", nil, true, "", v1beta1.JMDeploying, metav1.ConditionFalse, "Unknown", "Job status UNKNOWN", t1},
		{"session ready", nil, false, "", v1beta1.JMReady, metav1.ConditionTrue, "Ready", "JobManager deployment READY", t1},
		{"session not ready", nil, false, "", v1beta1.JMDeployedNotReady, metav1.ConditionFalse, "DeployedNotReady", "JobManager deployment DEPLOYED_NOT_READY", t1},
	} {
		got := runningCondition(c.old, c.app, c.job, c.jm, t1)
		if len(got) != 1 || got[0].Type != "Running" || got[0].Status != c.status || got[0].Reason != c.reason || got[0].Message != c.msg || !got[0].LastTransitionTime.Time.Equal(c.since) {
			t.Errorf("%s: %+v", c.name, got)
		}
	}
}

func TestClusterResources(t *testing.T) {
	t.Parallel()
	cpu, mem := clusterResources(&v1beta1.FlinkDeploymentSpec{
		JobManager:  &v1beta1.JobManagerSpec{Replicas: 1, Resource: &v1beta1.Resource{Memory: "1024m", CPU: ptr(0.5)}},
		TaskManager: &v1beta1.TaskManagerSpec{Resource: &v1beta1.Resource{Memory: "2g", CPU: ptr(1.5)}},
	}, 2)
	if cpu != "3.5" || mem != "5368709120" {
		t.Errorf("total cpu %s memory %s, want 3.5 and 5 GiB", cpu, mem)
	}
}

func TestExceptionSummary(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ex := flinkclient.Exceptions{}
	for i := 0; i < 5; i++ {
		ex.Entries = append(ex.Entries, flinkclient.Exception{Name: "java.lang.RuntimeException", Message: "boom " + strings.Repeat("x", 1000), Time: at, TaskName: "Source"})
	}
	s := exceptionSummary(ex)
	if len(s) > maxExceptionSummary || !strings.HasPrefix(s, "2026-01-01T00:00:00Z boom x") {
		t.Errorf("summary of %d bytes: %.80q", len(s), s)
	}
	one := exceptionSummary(flinkclient.Exceptions{Entries: []flinkclient.Exception{{Name: "java.lang.IllegalStateException"}, {Message: "b"}}})
	if one != "java.lang.IllegalStateException; b" {
		t.Errorf("summary %q", one)
	}
}

func ptr[T any](v T) *T { return &v }

func TestTasksRunning(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		statuses []string
		want     bool
	}{
		{nil, true},
		{[]string{"RUNNING", "RUNNING"}, true},
		{[]string{"RUNNING", "FINISHED"}, true},
		{[]string{"RUNNING", "DEPLOYING"}, false},
		{[]string{"INITIALIZING"}, false},
	} {
		job := &flinkclient.JobDetails{State: flinkclient.JobRunning}
		for _, s := range c.statuses {
			job.Vertices = append(job.Vertices, flinkclient.Vertex{Status: s})
		}
		if got := tasksRunning(job); got != c.want {
			t.Errorf("%v: %v, want %v", c.statuses, got, c.want)
		}
	}
}
