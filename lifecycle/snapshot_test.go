package lifecycle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// desiredSnapshot wraps a FlinkStateSnapshot spec as the renderer would
// hand it over.
func (w *simWorld) desiredSnapshot(name string, spec v1beta1.FlinkStateSnapshotSpec) *Desired {
	w.commit++
	sum := sha256.Sum256([]byte(specJSON(spec)))
	return &Desired{
		Snapshot: &v1beta1.FlinkStateSnapshot{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.ns}, Spec: spec},
		Hash:     hex.EncodeToString(sum[:8]),
		Source:   v1beta1.SourceRef{Commit: fmt.Sprintf("%040x", w.commit), EntryPoint: "apps", Path: "apps/" + name + ".yaml"},
	}
}

func savepointOf(kind, name string, edits ...func(*v1beta1.SavepointSpec)) v1beta1.FlinkStateSnapshotSpec {
	sp := &v1beta1.SavepointSpec{}
	for _, e := range edits {
		e(sp)
	}
	return v1beta1.FlinkStateSnapshotSpec{JobReference: &v1beta1.JobReference{Kind: kind, Name: name}, Savepoint: sp}
}

func snapState(st v1beta1.SnapshotState) func(*Record) bool {
	return func(r *Record) bool { return r.Snapshot != nil && r.Operation == nil && r.Snapshot.Status.State == st }
}

func snapDeleted(r *Record) bool { return r.Common().LifecycleState == v1beta1.LifecycleDeleted }

func boolp(b bool) *bool    { return &b }
func int32p(i int32) *int32 { return &i }

// deployedApp brings up app with a running, checkpointing job.
func deployedApp(w *simWorld) *Record {
	r := w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2)), "deployed", stableRunning)
	for i := 0; i < 3; i++ {
		w.tick()
	}
	return r
}

// runningSessionJob deploys session cluster "session" and its savepoint-mode
// session job "job" in w, and returns the job's record once it runs.
func runningSessionJob(t *testing.T, w *simWorld) *Record {
	t.Helper()
	jar := filepath.Join(t.TempDir(), "counter.jar")
	if err := os.WriteFile(jar, []byte("PK\x03\x04 not really a jar"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.until(KindDeployment, "session", w.desired("session", sessionSpecOf()), "session cluster", func(r *Record) bool {
		return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleStable
	})
	return w.until(KindSessionJob, "job", w.desiredJob("job", sessionJobSpecOf("session", jar, v1beta1.UpgradeModeSavepoint, "10")), "job",
		func(r *Record) bool { return r.Operation == nil && r.Common().JobStatus.State == v1beta1.JobRunning })
}

// TestSnapshotSavepoint: a committed FlinkStateSnapshot takes one savepoint
// of the referenced job into the given directory, records its path, takes
// no other on later passes, and disposes of it when it leaves Git.
func TestSnapshotSavepoint(t *testing.T) {
	w := newSimWorld(t)
	app := deployedApp(w)
	d := w.desiredSnapshot("sp1", savepointOf(KindDeployment, "app", func(s *v1beta1.SavepointSpec) {
		s.Path, s.FormatType = "file:/state/manual", v1beta1.SavepointNative
	}))
	r := w.until(KindSnapshot, "sp1", d, "snapshot completed", snapState(v1beta1.SnapshotCompleted))
	if len(w.flink.Savepoints) != 1 {
		t.Fatalf("%d savepoints, want 1", len(w.flink.Savepoints))
	}
	sp := w.flink.Savepoints[0]
	st := r.Snapshot.Status
	if st.Path != sp.Path || !strings.HasPrefix(sp.Path, "file:/state/manual/") || sp.JobID != app.Common().JobStatus.JobID {
		t.Fatalf("status path %q, savepoint %+v", st.Path, sp)
	}
	if st.TriggerID != sp.TriggerID || st.TriggerTimestamp == "" || st.ResultTimestamp == "" || st.Failures != 0 || st.Error != "" {
		t.Fatalf("status %+v", st)
	}
	if r.Common().LifecycleState != "COMPLETED" || r.Common().Source == nil || r.Common().Source.Path != "apps/sp1.yaml" {
		t.Fatalf("common %+v", r.Common())
	}
	for i := 0; i < 5; i++ { // later passes take nothing
		w.tick()
		w.pass(KindSnapshot, "sp1", d)
	}
	if len(w.flink.Savepoints) != 1 {
		t.Fatalf("%d savepoints after more passes, want 1", len(w.flink.Savepoints))
	}
	// The status branch file shows it.
	files, err := StatusFiles([]*Record{w.record(KindSnapshot, "sp1")}, nil, nil, Summary{})
	if err != nil {
		t.Fatal(err)
	}
	f := string(files[StatusPath(KindSnapshot, w.ns, "sp1")])
	for _, want := range []string{"lifecycleState: COMPLETED", "path: " + sp.Path, "state: COMPLETED", "triggerId: " + sp.TriggerID} {
		if !strings.Contains(f, want) {
			t.Errorf("status file lacks %q:\n%s", want, f)
		}
	}
	if !strings.Contains(string(files["README.md"]), sp.Path) {
		t.Errorf("README lacks the path:\n%s", files["README.md"])
	}
	// Out of Git: disposed of (disposeOnDelete defaults to true).
	if a := PlanAction(w.record(KindSnapshot, "sp1"), nil); a.Kind != ActionDelete || len(a.Warnings) != 1 || !strings.Contains(a.Warnings[0], sp.Path) {
		t.Fatalf("plan of the removal: %+v", a)
	}
	w.until(KindSnapshot, "sp1", nil, "removed", snapDeleted)
	if len(w.flink.Disposals) != 1 || w.flink.Disposals[0] != sp.Path {
		t.Fatalf("disposals %v, want %s", w.flink.Disposals, sp.Path)
	}
	if !w.hasEvent(ReasonCleanup, sp.Path) {
		t.Errorf("no cleanup event: %v", w.events())
	}
	// Added again: a new snapshot.
	w.until(KindSnapshot, "sp1", d, "snapshot again", snapState(v1beta1.SnapshotCompleted))
	if len(w.flink.Savepoints) != 2 {
		t.Fatalf("%d savepoints after re-adding, want 2", len(w.flink.Savepoints))
	}
}

// TestSnapshotKinds: the other paths of a snapshot, each against the
// simulated world.
func TestSnapshotKinds(t *testing.T) {
	t.Run("already exists", func(t *testing.T) {
		w := newSimWorld(t)
		spec := v1beta1.FlinkStateSnapshotSpec{Savepoint: &v1beta1.SavepointSpec{Path: "s3://b/sp-1", AlreadyExists: boolp(true)}}
		d := w.desiredSnapshot("old", spec)
		if a := PlanAction(nil, d); a.Kind != ActionUpdate {
			t.Fatalf("plan %+v", a)
		}
		r := w.until(KindSnapshot, "old", d, "recorded", snapState(v1beta1.SnapshotCompleted))
		if r.Snapshot.Status.Path != "s3://b/sp-1" || len(w.flink.Savepoints) != 0 {
			t.Fatalf("status %+v, %d savepoints", r.Snapshot.Status, len(w.flink.Savepoints))
		}
		w.until(KindSnapshot, "old", nil, "removed", snapDeleted)
		if len(w.flink.Disposals) != 0 {
			t.Fatalf("disposed of %v without a job to ask", w.flink.Disposals)
		}
	})
	t.Run("disposeOnDelete false", func(t *testing.T) {
		w := newSimWorld(t)
		deployedApp(w)
		d := w.desiredSnapshot("keep", savepointOf(KindDeployment, "app", func(s *v1beta1.SavepointSpec) { s.DisposeOnDelete = boolp(false) }))
		w.until(KindSnapshot, "keep", d, "completed", snapState(v1beta1.SnapshotCompleted))
		w.until(KindSnapshot, "keep", nil, "removed", snapDeleted)
		if len(w.flink.Disposals) != 0 {
			t.Fatalf("disposed of %v", w.flink.Disposals)
		}
	})
	t.Run("waits for the job to run", func(t *testing.T) {
		w := newSimWorld(t)
		d := w.desiredSnapshot("early", savepointOf(KindDeployment, "app"))
		for i := 0; i < 5; i++ {
			w.tick()
			w.pass(KindSnapshot, "early", d)
		}
		r := w.record(KindSnapshot, "early")
		if r.Snapshot.Status.State != v1beta1.SnapshotTriggerPending || r.Snapshot.Status.Failures != 0 || !strings.Contains(r.Operation.Message, "not deployed yet") {
			t.Fatalf("before the app: %s", dumpRecord(r))
		}
		deployedApp(w)
		r = w.until(KindSnapshot, "early", d, "completed", snapState(v1beta1.SnapshotCompleted))
		if len(w.flink.Savepoints) != 1 || r.Snapshot.Status.Path != w.flink.Savepoints[0].Path {
			t.Fatalf("savepoints %d, status %+v", len(w.flink.Savepoints), r.Snapshot.Status)
		}
	})
	t.Run("abandoned when the job is suspended", func(t *testing.T) {
		w := newSimWorld(t)
		deployedApp(w)
		w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, suspend)), "suspended",
			func(r *Record) bool {
				return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleSuspended
			})
		n := len(w.flink.Savepoints)
		r := w.until(KindSnapshot, "late", w.desiredSnapshot("late", savepointOf(KindDeployment, "app")), "abandoned", snapState(v1beta1.SnapshotAbandoned))
		if !strings.Contains(r.Snapshot.Status.Error, "not running") || len(w.flink.Savepoints) != n {
			t.Fatalf("status %+v, %d new savepoints", r.Snapshot.Status, len(w.flink.Savepoints)-n)
		}
		if !w.hasEvent(ReasonSnapshotAbandoned, "not running") {
			t.Errorf("no event: %v", w.events())
		}
	})
	for _, limit := range []int32{0, 2} {
		t.Run(fmt.Sprintf("fails after backoffLimit %d", limit), func(t *testing.T) {
			w := newSimWorld(t)
			deployedApp(w)
			w.flink.FailSavepoints = true
			spec := savepointOf(KindDeployment, "app")
			spec.BackoffLimit = int32p(limit)
			d := w.desiredSnapshot("bad", spec)
			var triggers []string
			var waits []time.Duration
			for i := 0; i < maxPasses; i++ {
				w.tick()
				res, _, _ := w.pass(KindSnapshot, "bad", d)
				r := w.record(KindSnapshot, "bad")
				if r.Operation != nil && (len(triggers) == 0 || triggers[len(triggers)-1] != r.Operation.TriggerID) {
					triggers = append(triggers, r.Operation.TriggerID)
				}
				if res.RequeueAfter >= 10*time.Second {
					waits = append(waits, res.RequeueAfter)
					w.clock.Advance(res.RequeueAfter)
				}
				if r.Snapshot.Status.State == v1beta1.SnapshotFailed {
					break
				}
			}
			r := w.record(KindSnapshot, "bad")
			st := r.Snapshot.Status
			if st.State != v1beta1.SnapshotFailed || st.Failures != limit+1 || !strings.Contains(st.Error, "storage is full") || r.Operation != nil {
				t.Fatalf("status %+v", st)
			}
			if len(triggers) != int(limit)+1 {
				t.Fatalf("trigger ids %v, want %d distinct", triggers, limit+1)
			}
			if limit == 2 && (len(waits) != 2 || waits[0] != 10*time.Second || waits[1] != 20*time.Second) {
				t.Fatalf("backoff %v, want [10s 20s]", waits)
			}
		})
	}
	t.Run("spec change is reported", func(t *testing.T) {
		w := newSimWorld(t)
		deployedApp(w)
		w.until(KindSnapshot, "sp", w.desiredSnapshot("sp", savepointOf(KindDeployment, "app")), "completed", snapState(v1beta1.SnapshotCompleted))
		d2 := w.desiredSnapshot("sp", savepointOf(KindDeployment, "app", func(s *v1beta1.SavepointSpec) { s.Path = "file:/other" }))
		if a := PlanAction(w.record(KindSnapshot, "sp"), d2); a.Kind != ActionNone || len(a.Warnings) != 1 {
			t.Fatalf("plan %+v", a)
		}
		r := w.until(KindSnapshot, "sp", d2, "error shown", func(r *Record) bool { return r.Common().Error == errSpecChanged })
		if len(w.flink.Savepoints) != 1 || r.Snapshot.Status.State != v1beta1.SnapshotCompleted {
			t.Fatalf("%d savepoints, %+v", len(w.flink.Savepoints), r.Snapshot.Status)
		}
	})
	t.Run("session job", func(t *testing.T) {
		w := newSimWorld(t)
		job := runningSessionJob(t, w)
		r := w.until(KindSnapshot, "sj", w.desiredSnapshot("sj", savepointOf(KindSessionJob, "job")), "completed", snapState(v1beta1.SnapshotCompleted))
		if len(w.flink.Savepoints) != 1 || w.flink.Savepoints[0].JobID != job.Common().JobStatus.JobID || r.Snapshot.Cluster != "session" {
			t.Fatalf("savepoints %+v, record %s", w.flink.Savepoints, dumpRecord(r))
		}
	})
}

// TestSnapshotCrashAtEveryStep: a daemon killed right after any external
// call of a snapshot, or of its disposal, resumes from the ConfigMap alone:
// one savepoint is taken and recorded, one disposal is made.
func TestSnapshotCrashAtEveryStep(t *testing.T) {
	take := crashCase{
		name: "snapshot savepoint", kind: KindSnapshot, res: "sp",
		setup:  func(w *simWorld) { deployedApp(w) },
		change: func(w *simWorld) *Desired { return w.desiredSnapshot("sp", savepointOf(KindDeployment, "app")) },
		done:   func(crashBefore) func(*Record) bool { return snapState(v1beta1.SnapshotCompleted) },
		check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
			app := w.record(KindDeployment, "app")
			b.jobID = app.Common().JobStatus.JobID
			sp := oneSavepointOf(t, w, b)
			if r.Snapshot.Status.Path != sp.Path || r.Snapshot.Status.TriggerID != sp.TriggerID {
				t.Errorf("status %+v, savepoint %+v", r.Snapshot.Status, sp)
			}
		},
	}
	dispose := crashCase{
		name: "snapshot disposal", kind: KindSnapshot, res: "sp",
		setup: func(w *simWorld) {
			deployedApp(w)
			w.until(KindSnapshot, "sp", w.desiredSnapshot("sp", savepointOf(KindDeployment, "app")), "completed", snapState(v1beta1.SnapshotCompleted))
		},
		change: func(w *simWorld) *Desired { return nil },
		done:   func(crashBefore) func(*Record) bool { return snapDeleted },
		check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
			if len(w.flink.Savepoints) != 1 {
				t.Fatalf("%d savepoints", len(w.flink.Savepoints))
			}
			if p := w.flink.Savepoints[0].Path; len(w.flink.Disposals) != 1 || w.flink.Disposals[0] != p || r.Snapshot.Status.Path != p {
				t.Errorf("disposals %v of %s; status %+v", w.flink.Disposals, p, r.Snapshot.Status)
			}
		},
	}
	for _, c := range []crashCase{take, dispose} {
		for _, out := range []time.Duration{0, 10 * time.Minute} {
			t.Run(fmt.Sprintf("%s/down %s", c.name, out), func(t *testing.T) {
				t.Parallel()
				crashAtEveryStep(t, c, 1, out)
			})
		}
	}
}
