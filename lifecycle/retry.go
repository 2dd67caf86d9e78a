package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// keyRestoreOnApplyFailure turns off redeploying the last stable spec when
// an upgrade's new spec cannot be applied once the old cluster is gone.
const keyRestoreOnApplyFailure = "flink-gitops.upgrade.restore-on-apply-failure" // true

// permanentError marks an error retrying cannot fix: the spec or the
// cluster's policy must change first.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// permanent marks err as one that retrying cannot fix (a builder error).
func permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// isPermanent classifies an error of a step: a builder error, or an
// apiserver answer of 4xx other than 409 Conflict and 429 Too Many Requests
// (invalid, forbidden, rejected by admission, exceeded quota), is permanent;
// timeouts, 5xx, 429, conflicts, connection errors and anything unknown
// are transient, so they are retried.
func isPermanent(err error) bool {
	if err == nil {
		return false
	}
	var pe *permanentError
	if errors.As(err, &pe) {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return false
	}
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		return false
	}
	code := se.Status().Code
	switch {
	case apierrors.IsConflict(err), apierrors.IsTooManyRequests(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err):
		return false
	case code >= 400 && code < 500:
		return true
	}
	return false
}

// retryDelay is the wait before attempt n+1 after n failed attempts:
// exponential from base, capped, with up to 20% jitter either way so that
// resources failing together do not retry in lockstep.
func retryDelay(n int, base, limit time.Duration) time.Duration {
	if base <= 0 {
		base = time.Second
	}
	d := base << min(max(n-1, 0), 20)
	if d <= 0 || d > limit {
		d = limit
	}
	jitter := time.Duration(float64(d) * (rand.Float64()*0.4 - 0.2))
	return max(d+jitter, base/2)
}

// Op retry timing: the first retry after FastPoll, doubling up to a minute.
const opRetryLimit = time.Minute

// waiting reports whether the operation's failed step must not be retried
// yet, and for how long.
func (p *pass) waiting() (time.Duration, bool) {
	op := p.rec.Operation
	if op == nil || op.NextAttempt.IsZero() {
		return 0, false
	}
	d := op.NextAttempt.Sub(p.now())
	return d, d > 0
}

// stepFailed handles an error of the current step: a transient one is
// retried from the same step after a backoff recorded in the operation; a
// permanent one ends the operation (stepFailedForGood).
func (p *pass) stepFailed(ctx context.Context, err error) Result {
	if isPermanent(err) {
		p.stepFailedForGood(ctx, err)
		if p.rec.Operation != nil {
			return p.fast()
		}
		return p.rest()
	}
	p.retry(err)
	op := p.rec.Operation
	d := retryDelay(op.Attempts, p.set.FastPoll, opRetryLimit)
	op.NextAttempt = p.now().Add(d)
	return Result{RequeueAfter: d}
}

// stepFailedForGood ends an operation whose step failed permanently. An
// upgrade or restart that failed to apply its new spec after the old
// cluster was deleted redeploys the last stable spec from the state this
// operation just took (its savepoint or checkpoint), so the job runs again,
// unless flink-gitops.upgrade.restore-on-apply-failure is false. Otherwise
// the operation fails, and the same spec is not tried again before the
// pre-flight retry time (no stop/delete/apply loop).
func (p *pass) stepFailedForGood(ctx context.Context, err error) {
	op := p.rec.Operation
	rs := p.rec.Reconciliation()
	tgt, _ := deploymentSpec(op.TargetSpec)
	restore := p.rec.Kind == KindDeployment && op.Phase == PhaseApply && (op.Kind == OpUpgrade || op.Kind == OpRestart) &&
		rs.LastStableSpec != "" && rs.LastStableSpec != op.TargetSpec
	if restore && tgt != nil {
		restore = p.confBool(tgt.FlinkConfiguration, keyRestoreOnApplyFailure, true)
	}
	what := "upgrade"
	if op.Kind == OpRestart {
		what = "restart"
	}
	if !restore {
		msg := fmt.Sprintf("%s failed at step %s: %v; fix the spec (or the cluster's policy) and push again", what, op.Phase, err)
		if op.Kind == OpRollback {
			msg = fmt.Sprintf("redeploying the last stable spec failed at step %s: %v; the job is not running. Fix the cause, then push a spec that can start", op.Phase, err)
		}
		hash := op.TargetHash
		if op.Kind == OpRollback && p.desired != nil && !p.desired.observeOnly() {
			hash = p.desired.Hash // what would start the failed upgrade again
		}
		p.holdOff(hash, op.Source, msg)
		p.fail(ctx, ReasonUpgradeFailed, msg)
		return
	}
	msg := fmt.Sprintf("%s failed: %v; the new spec could not be applied after the old cluster was stopped, "+
		"so the last stable spec was redeployed from %s. Fix the spec and push again", what, err, orNone(op.RestorePath))
	p.r.Events.Warn(ctx, p.rec, ReasonRollback, msg)
	p.log.Error("step failed permanently; redeploying the last stable spec", "phase", op.Phase, "err", err, "restore", op.RestorePath)
	rb := &Operation{Kind: OpRollback, Phase: PhaseApply, TargetSpec: rs.LastStableSpec, UpgradeMode: op.UpgradeMode,
		RestorePath: op.RestorePath, Source: op.Source, Message: msg}
	if p.rec.Deployed != nil {
		rb.TargetHash = p.rec.Deployed.SpecHash
	}
	if op.RestoreFromHA {
		rb.RestoreFromHA, rb.JobID = true, op.JobID
	}
	now := p.now()
	rb.Started, rb.PhaseStarted = now, now
	p.rec.Operation = rb
	p.rec.Common().Error = msg
	p.failed = true
	p.dirty = true
}

// holdOff records that the spec with render hash hash must not be started
// again before a backoff has passed (or it changes): the reason is kept
// as the refusal, so decide does not loop on it.
func (p *pass) holdOff(hash string, src *v1beta1.SourceRef, reason string) {
	rf := p.rec.Refused
	if rf == nil || rf.TargetHash != hash {
		rf = &Refusal{TargetHash: hash}
	}
	if src != nil {
		rf.Commit = src.Commit
	}
	rf.Attempts++
	rf.Reason = reason
	rf.NextAttempt = p.now().Add(retryDelay(rf.Attempts, refusalRetryBase, refusalRetryLimit))
	p.rec.Refused = rf
	p.dirty = true
}
