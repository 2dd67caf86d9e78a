package lifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Event reasons, as the Flink Kubernetes Operator names them.
const (
	ReasonSubmit           = "Submit"
	ReasonSpecChanged      = "SpecChanged"
	ReasonSuspended        = "Suspended"
	ReasonJobStatusChanged = "JobStatusChanged"
	ReasonSavepointError   = "SavepointError"
	ReasonSavepoint        = "SavepointCompleted"
	ReasonValidationError  = "ValidationError"
	ReasonCleanup          = "Cleanup"
	ReasonRollback         = "Rollback"
	ReasonUpgradeFailed    = "UpgradeFailed"
	ReasonRestoreFailed    = "RestoreFailed"
	ReasonDeploymentReady  = "DeploymentReady"
	// ReasonDriftCorrected: one of the cluster's objects had been changed
	// by someone else and was set back (flink-gitops' own reason).
	ReasonDriftCorrected = "DriftCorrected"
)

// Events records Kubernetes Events about a managed resource, on its status
// ConfigMap (the one object every resource has). Failing to record an event
// is logged and otherwise ignored: events are a courtesy, status is the truth.
type Events struct {
	Client kubernetes.Interface
	Log    *slog.Logger
}

// Normal records a normal event.
func (e *Events) Normal(ctx context.Context, r *Record, reason, msg string) {
	e.emit(ctx, r, corev1.EventTypeNormal, reason, msg)
}

// Warn records a warning event.
func (e *Events) Warn(ctx context.Context, r *Record, reason, msg string) {
	e.emit(ctx, r, corev1.EventTypeWarning, reason, msg)
}

func (e *Events) emit(ctx context.Context, r *Record, typ, reason, msg string) {
	if e == nil || e.Client == nil {
		return
	}
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: StatusConfigMapName(r.Kind, r.Name) + ".",
			Namespace:    r.Namespace,
			Labels:       map[string]string{LabelManagedBy: ManagedBy, LabelKind: r.Kind, LabelName: r.Name},
		},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: "v1", Kind: "ConfigMap", Namespace: r.Namespace, Name: StatusConfigMapName(r.Kind, r.Name),
		},
		Reason:              reason,
		Message:             fmt.Sprintf("%s %s: %s", r.Kind, r.Name, msg),
		Type:                typ,
		Source:              corev1.EventSource{Component: ManagedBy},
		ReportingController: "flink-gitops.io/" + ManagedBy,
		ReportingInstance:   ManagedBy,
		Action:              reason,
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := e.Client.CoreV1().Events(r.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil && e.Log != nil {
		e.Log.Warn("cannot record event", "reason", reason, "err", err)
	}
}
