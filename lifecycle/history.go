package lifecycle

import (
	"context"
	"strconv"
	"time"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// Prune splits a savepoint history (oldest first) into what to keep and
// what to dispose: at most maxCount entries, none older than maxAge. The
// newest savepoint and the one a suspended job resumes from are always kept.
func Prune(history []v1beta1.Savepoint, maxCount int, maxAge time.Duration, now time.Time, keep string) (kept, pruned []v1beta1.Savepoint) {
	newest := len(history) - 1
	excess := len(history) - maxCount
	for i, sp := range history {
		tooMany := i < excess
		tooOld := maxAge > 0 && now.Sub(time.UnixMilli(sp.TimeStamp)) > maxAge
		if (tooMany || tooOld) && i != newest && sp.Location != keep {
			pruned = append(pruned, sp)
			continue
		}
		kept = append(kept, sp)
	}
	return kept, pruned
}

// pruneHistory applies the history limits of the running spec and queues
// the pruned savepoints for disposal when cleanup is enabled.
func (p *pass) pruneHistory(ctx context.Context) {
	si := p.savepointInfo()
	_, fc, suspended, _ := p.lastJob()
	maxCount := 10
	if n, err := strconv.Atoi(p.conf(fc, keyHistoryMaxCount)); err == nil && n > 0 {
		maxCount = n
	}
	maxAge := p.confDuration(fc, keyHistoryMaxAge, 24*time.Hour)
	keep := ""
	if suspended {
		keep = p.jobStatus().UpgradeSavepointPath
	}
	kept, pruned := Prune(si.SavepointHistory, maxCount, maxAge, p.now(), keep)
	if len(pruned) == 0 {
		return
	}
	si.SavepointHistory = kept
	if p.confBool(fc, keyCleanupEnabled, true) {
		for _, sp := range pruned {
			p.rec.PendingDisposal = append(p.rec.PendingDisposal, sp.Location)
		}
	}
	p.log.Info("savepoint history pruned", "pruned", len(pruned), "kept", len(kept))
	p.dirty = true
}

// disposePending asks the JobManager to dispose pruned savepoints. A path
// that cannot be disposed now stays queued.
func (p *pass) disposePending(ctx context.Context, f Flink) {
	if len(p.rec.PendingDisposal) == 0 {
		return
	}
	var left []string
	for _, path := range p.rec.PendingDisposal {
		if d := p.rec.Deployed; d != nil && d.RestorePath == path {
			// The running cluster restores from it again if its JobManager
			// restarts (it is in the container args): dispose of it later.
			left = append(left, path)
			continue
		}
		if _, err := f.DisposeSavepoint(ctx, path); err != nil {
			p.log.Warn("savepoint disposal failed; will retry", "path", path, "err", err)
			left = append(left, path)
			continue
		}
		p.log.Info("savepoint disposed", "path", path)
	}
	p.rec.PendingDisposal = left
	p.dirty = true
}
