package lifecycle

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
)

// Labels and keys of status ConfigMaps.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "flink-gitops"
	LabelKind      = "flink-gitops.io/kind"
	LabelName      = "flink-gitops.io/name"
	// LabelRole tells status ConfigMaps apart from other managed objects.
	LabelRole  = "flink-gitops.io/role"
	RoleStatus = "status"

	recordKey   = "status.json"
	recordKeyGz = "status.json.gz"
	// compressAbove keeps the ConfigMap well under the 1 MiB object limit:
	// larger records are stored gzipped.
	compressAbove = 256 << 10
	// maxRecordBytes is the largest (compressed) record we write.
	maxRecordBytes = 900 << 10
)

// ErrConflict means the status ConfigMap changed since it was read; reread
// and retry.
var ErrConflict = errors.New("status changed since it was read")

// Store keeps Records in status ConfigMaps, one per resource, next to the
// resource, with optimistic concurrency on resourceVersion.
type Store struct {
	Client kubernetes.Interface
	// Cache, when set, answers Get from the watch when it holds the
	// ConfigMap at least as new as the Store's own last write of it.
	Cache *Cache
	// Log receives warnings about status ConfigMaps that are not trusted
	// (nil: slog.Default()).
	Log *slog.Logger
}

func (s *Store) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// StatusConfigMapName is the name of a resource's status ConfigMap.
func StatusConfigMapName(kind, name string) string {
	switch kind {
	case KindSessionJob:
		return "flink-gitops-sessionjob-" + name
	case KindSnapshot:
		return "flink-gitops-snapshot-" + name
	default:
		return "flink-gitops-deployment-" + name
	}
}

// Get returns the record, or nil when there is none. A ConfigMap of the
// status name that does not check out (see trustRecord) is an error: the
// resource is left alone until a person removes it.
func (s *Store) Get(ctx context.Context, kind, namespace, name string) (*Record, error) {
	cm, ok := s.Cache.statusConfigMap(namespace, StatusConfigMapName(kind, name))
	if !ok {
		var err error
		cm, err = s.Client.CoreV1().ConfigMaps(namespace).Get(ctx, StatusConfigMapName(kind, name), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read status of %s %s/%s: %w", kind, namespace, name, err)
		}
	}
	r, err := decodeRecord(cm)
	if err != nil {
		return nil, err
	}
	if r.Kind != kind || r.Name != name {
		return nil, fmt.Errorf("status ConfigMap %s/%s records %s %s/%s instead of %s %s/%s: delete it",
			cm.Namespace, cm.Name, r.Kind, r.Namespace, r.Name, kind, namespace, name)
	}
	if err := trustRecord(cm, r); err != nil {
		return nil, fmt.Errorf("status of %s %s/%s not trusted: %w", kind, namespace, name, err)
	}
	return r, nil
}

// List returns every record in namespace ("" for all namespaces).
func (s *Store) List(ctx context.Context, namespace string) ([]*Record, error) {
	l, err := s.Client.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: LabelManagedBy + "=" + ManagedBy + "," + LabelRole + "=" + RoleStatus,
	})
	if err != nil {
		return nil, fmt.Errorf("list status ConfigMaps: %w", err)
	}
	out := make([]*Record, 0, len(l.Items))
	for i := range l.Items {
		r, err := decodeRecord(&l.Items[i])
		if err == nil {
			err = trustRecord(&l.Items[i], r)
		}
		if err != nil {
			// Skipped, not fatal: a planted ConfigMap must neither steer
			// the daemon nor keep it from reading the genuine records.
			s.log().Warn("status ConfigMap ignored", "err", err)
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// Save writes the record: it creates the ConfigMap for a new record and
// otherwise updates it only if nobody changed it since it was read
// (ErrConflict). On success the record carries the new resourceVersion.
func (s *Store) Save(ctx context.Context, r *Record) error {
	cm, err := encodeRecord(r)
	if err != nil {
		return err
	}
	cms := s.Client.CoreV1().ConfigMaps(r.Namespace)
	var out *corev1.ConfigMap
	if r.resourceVersion == "" {
		out, err = cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create status of %s %s/%s: %w", r.Kind, r.Namespace, r.Name, ErrConflict)
		}
	} else {
		cm.ResourceVersion = r.resourceVersion
		out, err = cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: FieldManager})
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return fmt.Errorf("update status of %s %s/%s: %w", r.Kind, r.Namespace, r.Name, ErrConflict)
		}
	}
	if err != nil {
		return fmt.Errorf("write status of %s %s/%s: %w", r.Kind, r.Namespace, r.Name, err)
	}
	r.resourceVersion = out.ResourceVersion
	s.Cache.wrote(out.Namespace, out.Name, out.ResourceVersion)
	return nil
}

// Delete removes the record's ConfigMap (after the resource is gone).
func (s *Store) Delete(ctx context.Context, r *Record) error {
	s.Cache.wrote(r.Namespace, StatusConfigMapName(r.Kind, r.Name), deletedVersion)
	err := s.Client.CoreV1().ConfigMaps(r.Namespace).Delete(ctx, StatusConfigMapName(r.Kind, r.Name), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete status of %s %s/%s: %w", r.Kind, r.Namespace, r.Name, err)
	}
	return nil
}

func encodeRecord(r *Record) (*corev1.ConfigMap, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode status of %s/%s: %w", r.Namespace, r.Name, err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      StatusConfigMapName(r.Kind, r.Name),
			Namespace: r.Namespace,
			Labels: map[string]string{
				LabelManagedBy: ManagedBy,
				LabelRole:      RoleStatus,
				LabelKind:      r.Kind,
				LabelName:      r.Name,
			},
			Annotations: map[string]string{cluster.AnnotationResource: r.Kind + " " + r.Namespace + "/" + r.Name},
		},
	}
	if len(b) <= compressAbove {
		cm.Data = map[string]string{recordKey: string(b)}
		return cm, nil
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if buf.Len() > maxRecordBytes {
		return nil, fmt.Errorf("status of %s/%s is %d bytes compressed, over the %d limit: lower kubernetes.operator.savepoint.history.max.count", r.Namespace, r.Name, buf.Len(), maxRecordBytes)
	}
	cm.BinaryData = map[string][]byte{recordKeyGz: buf.Bytes()}
	return cm, nil
}

func decodeRecord(cm *corev1.ConfigMap) (*Record, error) {
	var b []byte
	if s, ok := cm.Data[recordKey]; ok {
		b = []byte(s)
	} else if z, ok := cm.BinaryData[recordKeyGz]; ok {
		zr, err := gzip.NewReader(bytes.NewReader(z))
		if err != nil {
			return nil, fmt.Errorf("status ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
		if b, err = io.ReadAll(io.LimitReader(zr, 64<<20)); err != nil {
			return nil, fmt.Errorf("status ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
	} else {
		return nil, fmt.Errorf("status ConfigMap %s/%s has no %s", cm.Namespace, cm.Name, recordKey)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("status ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	r.resourceVersion = cm.ResourceVersion
	return &r, nil
}
