package daemon

import (
	"context"
	"fmt"
	"os"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// runWithLeaderElection reconciles only while this process holds the
// Lease; it stops leading (and returns) when the lease is lost, so a
// restart makes it a candidate again.
func (d *Daemon) runWithLeaderElection(ctx context.Context) error {
	le := d.cfg.Current().LeaderElection
	id, _ := os.Hostname()
	id = fmt.Sprintf("%s-%d", id, os.Getpid())
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: le.LeaseName, Namespace: le.Namespace},
		Client:     d.kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	var leadErr error
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	leaderelection.RunOrDie(lctx, leaderelection.LeaderElectionConfig{
		Lock:            lock,
		ReleaseOnCancel: true,
		LeaseDuration:   le.LeaseDuration,
		RenewDeadline:   le.RenewDeadline,
		RetryPeriod:     le.RetryPeriod,
		Name:            le.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				d.log.Info("leading", "identity", id)
				d.leading.Store(true)
				leadErr = d.lead(ctx)
				cancel()
			},
			OnStoppedLeading: func() {
				d.leading.Store(false)
				d.log.Info("not leading any more", "identity", id)
			},
			OnNewLeader: func(identity string) {
				if identity != id {
					d.log.Info("standing by", "leader", identity)
				}
			},
		},
	})
	return leadErr
}
