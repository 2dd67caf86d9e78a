package lifecycle

import (
	"context"
	"time"
)

// Gate bounds how many disruptive operations run at once across the
// resources one daemon reconciles (reconcile.maxConcurrentUpgrades): a
// change to a base shared by many overlays must not stop every job at the
// same time.
type Gate interface {
	// Admit reports whether the resource may start op now; when not,
	// reason says what it waits for. A resource admitted holds its place
	// until its record shows no gated operation any more (Gated).
	Admit(kind, namespace, name string, op OpKind) (ok bool, reason string)
}

// Gated reports whether an operation of kind op waits for the Gate: the
// operations that stop a running job to start it again with a new spec.
// Rollbacks (recovery), suspends and deletes (what the push asked for,
// ending work rather than starting it), savepoints and in-place rescales
// are never held back.
func Gated(op OpKind) bool { return op == OpUpgrade || op == OpRestart }

// admit asks the reconciler's gate whether op may begin. When it may not,
// the record says what the resource waits for (shown on the status
// branch) and the pass ends without starting anything.
func (p *pass) admit(ctx context.Context, op *Operation) bool {
	waiting := ""
	if p.r.Gate != nil && Gated(op.Kind) {
		if ok, reason := p.r.Gate.Admit(p.rec.Kind, p.rec.Namespace, p.rec.Name, op.Kind); !ok {
			waiting = reason
		}
	}
	if p.rec.Waiting != waiting {
		p.rec.Waiting = waiting
		p.dirty = true
		if waiting != "" {
			p.log.Info("operation waits", "op", op.Kind, "reason", waiting)
		}
	}
	return waiting == ""
}

// notWaiting clears what the resource waited for: the spec no longer asks
// for an operation.
func (p *pass) notWaiting() {
	if p.rec.Waiting != "" {
		p.rec.Waiting = ""
		p.dirty = true
	}
}

// gateRetry is how soon a resource the gate held back asks again.
const gateRetry = 5 * time.Second
