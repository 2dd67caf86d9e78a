package daemon

import (
	"context"
	"fmt"
	gosync "sync"

	"github.com/google/go-cmp/cmp"

	"github.com/flink-gitops/flink-gitops/config"
	"github.com/flink-gitops/flink-gitops/lifecycle/artifact"
	"github.com/flink-gitops/flink-gitops/render"
)

// objectStores keeps the S3/GCS source of the current configuration and
// builds a new one when artifacts.s3 or artifacts.gcs change (live config).
type objectStores struct {
	current func() *config.Config

	mu    gosync.Mutex
	built artifact.S3Config
	src   *artifact.S3
}

// source is the Fetcher's Sources hook: object-store schemes only.
func (o *objectStores) source(_ render.ArtifactPolicy, scheme string) (artifact.Source, error) {
	if !artifact.IsObjectStoreScheme(scheme) {
		return nil, fmt.Errorf("%w: the daemon cannot fetch %s:// jars", artifact.ErrInvalid, scheme)
	}
	want := artifact.S3ConfigFrom(o.current().Artifacts)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.src == nil || !cmp.Equal(o.built, want) {
		src, err := artifact.NewS3(context.Background(), want)
		if err != nil {
			return nil, err
		}
		o.src, o.built = src, want
	}
	return o.src, nil
}
