package render

import (
	"context"
	"fmt"
	"io"
)

// PlanDir renders a working copy on disk (what `flink-gitops plan --repo DIR`
// does): every configured entry point, no cache, no cluster access.
func PlanDir(ctx context.Context, dir string, opts Options) (*Result, error) {
	src, err := NewDirSource(dir)
	if err != nil {
		return nil, err
	}
	return NewRenderer().Render(ctx, src, opts)
}

// WriteText prints the result for people: one line per resource (kind,
// namespace/name, entry point, file, spec hash), then one line per warning
// and problem, then a summary line.
func (r *Result) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	for _, res := range r.Resources {
		k := res.Key()
		extra := ""
		if res.Deployment != nil {
			kind := "application"
			if res.Deployment.Spec.IsSession() {
				kind = "session"
			}
			extra = fmt.Sprintf(" %s %s", kind, res.Deployment.Spec.FlinkVersion)
			if m := res.Deployment.Spec.Mode; m != "" {
				extra += " " + string(m)
			}
		} else if res.SessionJob != nil {
			extra = " -> " + res.SessionJob.Spec.DeploymentName
		} else {
			extra = " " + SnapshotSummary(res.Snapshot)
		}
		ew.printf("%-16s %s/%s%s  [%s %s] hash=%s\n", k.Kind, k.Namespace, k.Name, extra, displayPath(res.EntryPoint), res.File, res.Hash)
	}
	for _, p := range r.Warnings {
		ew.printf("warning: %s\n", p)
	}
	for _, p := range r.Problems {
		ew.printf("error: %s\n", p)
	}
	failed := 0
	for _, e := range r.EntryPoints {
		if e.Failed {
			failed++
		}
	}
	ew.printf("%d entry points (%d failed), %d resources valid, %d invalid, %d problems, %d warnings\n",
		len(r.EntryPoints), failed, len(r.Resources), len(r.Invalid), len(r.Problems), len(r.Warnings))
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
