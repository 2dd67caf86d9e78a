package lifecycle

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
)

// Flink's Kubernetes HA services keep their metadata in ConfigMaps of the
// cluster's namespace: <cluster-id>-cluster-config-map (leader addresses and
// the submitted job graphs — "jobGraph-<job id>" keys in Flink 1.x,
// "executionPlan-<job id>" in 2.x) and one <cluster-id>-<job id>-config-map
// per job (the checkpoint counter and "checkpointID-<n>" pointers to the
// completed checkpoints). They are not owned by the JobManager Deployment,
// so they outlive it: that is what a last-state upgrade restores from.
const (
	keyKeepHAOnDeletion = "flink-gitops.ha.keep-on-deletion" // false
	haCheckpointPrefix  = "checkpointID-"
)

// haJobGraphPrefixes are the key prefixes of submitted job graphs in the
// cluster HA ConfigMap (Flink 1.x, 2.x).
var haJobGraphPrefixes = []string{"jobGraph-", "executionPlan-"}

// kubernetesHA reports whether an high-availability.type value selects
// Flink's Kubernetes HA services.
func kubernetesHA(haType string) bool {
	v := strings.TrimSpace(haType)
	return strings.EqualFold(v, "kubernetes") || v == "org.apache.flink.kubernetes.highavailability.KubernetesHaServicesFactory"
}

func clusterHAConfigMap(cluster string) string { return cluster + "-cluster-config-map" }

func jobHAConfigMap(cluster, jobID string) string {
	return cluster + "-" + strings.ToLower(jobID) + "-config-map"
}

// haCheckpoint returns the newest checkpoint id the HA metadata of job
// records (0 when it records none) and whether the job's HA ConfigMap exists.
func haCheckpoint(ctx context.Context, kc kubernetes.Interface, namespace, cluster, jobID string) (int64, bool, error) {
	cm, err := kc.CoreV1().ConfigMaps(namespace).Get(ctx, jobHAConfigMap(cluster, jobID), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read HA ConfigMap %s/%s: %w", namespace, jobHAConfigMap(cluster, jobID), err)
	}
	var newest int64
	for k := range cm.Data {
		if s, ok := strings.CutPrefix(k, haCheckpointPrefix); ok {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > newest {
				newest = n
			}
		}
	}
	return newest, true, nil
}

// stripJobGraphs removes the submitted job graphs from the cluster's HA
// ConfigMap, as the operator does before a last-state redeploy: the new
// JobManager then runs the new spec's job (with the same job id) and
// recovers only its checkpoints, instead of recovering the old job graph.
func stripJobGraphs(ctx context.Context, kc kubernetes.Interface, namespace, cluster string) error {
	name := clusterHAConfigMap(cluster)
	for attempt := 0; ; attempt++ {
		cm, err := kc.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read HA ConfigMap %s/%s: %w", namespace, name, err)
		}
		var drop []string
		for k := range cm.Data {
			for _, p := range haJobGraphPrefixes {
				if strings.HasPrefix(k, p) {
					drop = append(drop, k)
				}
			}
		}
		if len(drop) == 0 {
			return nil
		}
		for _, k := range drop {
			delete(cm.Data, k)
		}
		_, err = kc.CoreV1().ConfigMaps(namespace).Update(ctx, cm, metav1.UpdateOptions{FieldManager: FieldManager})
		if apierrors.IsConflict(err) && attempt < 5 {
			continue
		}
		if err != nil {
			return fmt.Errorf("remove job graphs %v from HA ConfigMap %s/%s: %w", drop, namespace, name, err)
		}
		return nil
	}
}

// haConfigMapNames lists the HA ConfigMaps of a cluster (see above): the
// ConfigMaps of those names that Flink made. kept are ConfigMaps of those
// names that do not look like Flink's, which are never deleted.
func haConfigMapNames(ctx context.Context, kc kubernetes.Interface, namespace, cluster string) (names, kept []string, err error) {
	l, err := kc.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list ConfigMaps of %s: %w", namespace, err)
	}
	job := regexp.MustCompile("^" + regexp.QuoteMeta(cluster) + "-[0-9a-f]{32}-config-map$")
	for i := range l.Items {
		cm := &l.Items[i]
		if cm.Name != clusterHAConfigMap(cluster) && !job.MatchString(cm.Name) {
			continue
		}
		if flinkHAConfigMap(cm, cluster) {
			names = append(names, cm.Name)
		} else {
			kept = append(kept, cm.Name)
		}
	}
	sort.Strings(names)
	sort.Strings(kept)
	return names, kept, nil
}

// flinkHAConfigMap reports whether cm (of an HA ConfigMap's name) is one
// Flink's Kubernetes HA services made: it carries their labels (app=<cluster
// id>, configmap-type=high-availability), the leader-election annotation,
// or their data (checkpoint pointers, the checkpoint counter, job graphs).
// An empty ConfigMap of such a name holds no state worth deleting; one with
// other data is someone else's.
func flinkHAConfigMap(cm *corev1.ConfigMap, cluster string) bool {
	if cm.Labels["configmap-type"] == "high-availability" && cm.Labels["app"] == cluster {
		return true
	}
	if _, ok := cm.Annotations["control-plane.alpha.kubernetes.io/leader"]; ok {
		return true
	}
	for k := range cm.Data {
		if k == "counter" || strings.HasPrefix(k, haCheckpointPrefix) {
			return true
		}
		for _, p := range haJobGraphPrefixes {
			if strings.HasPrefix(k, p) {
				return true
			}
		}
	}
	return false
}

// deleteHAData deletes the cluster's HA ConfigMaps (the checkpoints and
// savepoints they point to stay on the storage).
// ConfigMaps of those names that Flink did not make are left alone and
// returned as kept.
func deleteHAData(ctx context.Context, kc kubernetes.Interface, namespace, cluster string) (names, kept []string, err error) {
	names, kept, err = haConfigMapNames(ctx, kc, namespace, cluster)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range names {
		err := kc.CoreV1().ConfigMaps(namespace).Delete(ctx, n, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("delete HA ConfigMap %s/%s: %w", namespace, n, err)
		}
	}
	return names, kept, nil
}

// taskManagerPodSelector selects the TaskManager pods a native JobManager
// created (Flink labels them so).
func taskManagerPodSelector(name string) string {
	return labels.SelectorFromSet(cluster.Selector(cluster.TypeNative, name, cluster.ComponentTaskManager)).String()
}

// deleteTaskManagerPods deletes a native cluster's TaskManager pods. They
// are owned by the JobManager Deployment, but the reconciler does not rely
// on the garbage collector for what it must see gone.
func deleteTaskManagerPods(ctx context.Context, kc kubernetes.Interface, namespace, cluster string) error {
	err := kc.CoreV1().Pods(namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: taskManagerPodSelector(cluster)})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete TaskManager pods of %s/%s: %w", namespace, cluster, err)
	}
	return nil
}

// taskManagerPods lists a native cluster's TaskManager pods.
func taskManagerPods(ctx context.Context, kc kubernetes.Interface, namespace, cluster string) ([]corev1.Pod, error) {
	l, err := kc.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: taskManagerPodSelector(cluster)})
	if err != nil {
		return nil, fmt.Errorf("list TaskManager pods of %s/%s: %w", namespace, cluster, err)
	}
	return l.Items, nil
}
