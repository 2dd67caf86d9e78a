package daemon

import gosync "sync"

// limiter is a semaphore whose size can change while it is in use, so
// reconcile.concurrency applies live.
type limiter struct {
	mu     gosync.Mutex
	cond   *gosync.Cond
	limit  int
	active int
}

func newLimiter(n int) *limiter {
	l := &limiter{limit: max(n, 1)}
	l.cond = gosync.NewCond(&l.mu)
	return l
}

// SetLimit changes the number of holders allowed at once.
func (l *limiter) SetLimit(n int) {
	l.mu.Lock()
	l.limit = max(n, 1)
	l.mu.Unlock()
	l.cond.Broadcast()
}

// Acquire waits for a free place.
func (l *limiter) Acquire() {
	l.mu.Lock()
	for l.active >= l.limit {
		l.cond.Wait()
	}
	l.active++
	l.mu.Unlock()
}

// Release frees a place.
func (l *limiter) Release() {
	l.mu.Lock()
	l.active--
	l.mu.Unlock()
	l.cond.Signal()
}
