package lifecycle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

const testDigest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestJarName(t *testing.T) {
	t.Parallel()
	cases := []struct{ base, want string }{
		{"counter.jar", "flink-gitops-0123456789abcdef-counter.jar"},
		{"job-1.2.jar", "flink-gitops-0123456789abcdef-job-1.2.jar"},
		{"my job$.jar", "flink-gitops-0123456789abcdef-my_job_.jar"},
		{"", "flink-gitops-0123456789abcdef-job.jar"},
		{"noext", "flink-gitops-0123456789abcdef-noext.jar"},
		{strings.Repeat("x", 200) + ".jar", "flink-gitops-0123456789abcdef-" + strings.Repeat("x", maxJarBase) + ".jar"},
	}
	for _, c := range cases {
		got := jarName(testDigest, c.base)
		if got != c.want {
			t.Errorf("jarName(%q) = %q, want %q", c.base, got, c.want)
		}
		if d := jarNameDigest(got); d != testDigest[:jarDigestLen] {
			t.Errorf("jarNameDigest(%q) = %q", got, d)
		}
	}
}

func TestJarNameDigestNotOurs(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		"counter.jar",
		"flink-gitops-counter.jar",
		"flink-gitops-0123456789ABCDEF-counter.jar", // we write lower case
		"flink-gitops-0123456789abcdeg-counter.jar",
		"flink-gitops-0123456789abcdef-counter.zip",
		"flink-gitops-0123456789abcdefcounter.jar",
		"my-flink-gitops-0123456789abcdef-counter.jar",
	} {
		if d := jarNameDigest(name); d != "" {
			t.Errorf("jarNameDigest(%q) = %q, want none: not a name the daemon writes", name, d)
		}
	}
}

func TestUnneededJars(t *testing.T) {
	t.Parallel()
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	a := jarName(strings.Repeat("a", 64), "a.jar")
	b := jarName(strings.Repeat("b", 64), "b.jar")
	jars := []flinkclient.JarFile{
		{ID: "1_" + a, Name: a, Uploaded: at(1)},
		{ID: "2_" + b, Name: b, Uploaded: at(2)},
		{ID: "3_" + a, Name: a, Uploaded: at(3)}, // a second copy of a: the newest is kept
		{ID: "4_users.jar", Name: "users.jar", Uploaded: at(4)},
	}
	cases := []struct {
		name  string
		need  map[string]bool
		limit int
		want  []string
	}{
		{"a needed", map[string]bool{strings.Repeat("a", 16): true}, 10, []string{"1_" + a, "2_" + b}},
		{"both needed", map[string]bool{strings.Repeat("a", 16): true, strings.Repeat("b", 16): true}, 10, []string{"1_" + a}},
		{"none needed", map[string]bool{}, 10, []string{"1_" + a, "2_" + b, "3_" + a}},
		{"capped", map[string]bool{}, 2, []string{"1_" + a, "2_" + b}},
	}
	for _, c := range cases {
		var got []string
		for _, j := range unneededJars(jars, c.need, c.limit) {
			got = append(got, j.ID)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: delete %v, want %v", c.name, got, c.want)
		}
	}
	if j, ok := pickJar(jars, strings.Repeat("a", 16)); !ok || j.ID != "3_"+a {
		t.Errorf("pickJar = %+v, %v; want the newest copy", j, ok)
	}
	// The same bytes under another base name (another job's jarURI) are
	// the same jar: reused, and the older copy deleted.
	a2 := jarName(strings.Repeat("a", 64), "other.jar")
	more := append(jars[:3:3], flinkclient.JarFile{ID: "5_" + a2, Name: a2, Uploaded: at(5)})
	if j, ok := pickJar(more, strings.Repeat("a", 16)); !ok || j.ID != "5_"+a2 {
		t.Errorf("pickJar = %+v, %v; want the newest copy under any name", j, ok)
	}
	var got []string
	for _, j := range unneededJars(more, map[string]bool{strings.Repeat("a", 16): true, strings.Repeat("b", 16): true}, 10) {
		got = append(got, j.ID)
	}
	if want := []string{"1_" + a, "3_" + a}; !reflect.DeepEqual(got, want) {
		t.Errorf("delete %v, want %v", got, want)
	}
}

func TestNeededJars(t *testing.T) {
	t.Parallel()
	on := func(cluster string) string {
		return specJSON(v1beta1.FlinkSessionJobSpec{DeploymentName: cluster, Job: &v1beta1.JobSpec{}})
	}
	job := func(name, cluster, deployed, inFlight string) *Record {
		r := &Record{Kind: KindSessionJob, Name: name, SessionJob: &v1beta1.FlinkSessionJobStatus{}}
		r.SessionJob.ReconciliationStatus.LastReconciledSpec = on(cluster)
		if deployed != "" {
			r.Deployed = &Deployed{JarDigest: deployed}
		}
		if inFlight != "" {
			r.Operation = &Operation{Kind: OpUpgrade, TargetSpec: on(cluster), JarDigest: inFlight}
		}
		return r
	}
	unknown := &Record{Kind: KindSessionJob, Name: "u", Operation: &Operation{Kind: OpDelete, JarDigest: strings.Repeat("e", 64)}}
	recs := []*Record{
		job("a", "s1", strings.Repeat("a", 64), ""),
		job("b", "s1", strings.Repeat("b", 64), strings.Repeat("c", 64)),
		job("d", "s2", strings.Repeat("d", 64), ""),
		unknown,
		{Kind: KindDeployment, Name: "s1", Deployed: &Deployed{JarDigest: strings.Repeat("f", 64)}},
	}
	got := neededJars(recs, "s1")
	want := map[string]bool{strings.Repeat("a", 16): true, strings.Repeat("b", 16): true, strings.Repeat("c", 16): true, strings.Repeat("e", 16): true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("neededJars = %v, want %v", got, want)
	}
}

// fileSHA256 returns the SHA-256 (hex) of the file at p.
func fileSHA256(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// jarVariant writes a jar file whose content (and so digest) is unique to i.
func jarVariant(t *testing.T, dir string, i int) string {
	t.Helper()
	p := filepath.Join(dir, fmt.Sprintf("counter-%d.jar", i))
	if err := os.WriteFile(p, []byte(fmt.Sprintf("PK\x03\x04 not really a jar, variant %d", i)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// ourJars returns the daemon-named jars on the simulated session cluster.
func ourJars(w *simWorld, cluster string) []string {
	var out []string
	for _, n := range w.flink.jarNames(w.ns, cluster) {
		if jarNameDigest(n) != "" {
			out = append(out, n)
		}
	}
	return out
}

// wantJarOf checks that the session cluster holds exactly the jar the
// record's job runs, once, and the user's own jar when given.
func wantJarOf(t *testing.T, w *simWorld, cluster string, r *Record, jar string, users ...string) {
	t.Helper()
	digest, err := fileSHA256(jar)
	if err != nil {
		t.Fatal(err)
	}
	if r.Deployed == nil || r.Deployed.JarDigest != digest {
		t.Errorf("deployed %+v, want jar digest %s", r.Deployed, digest)
	}
	want := append([]string{jarName(digest, filepath.Base(jar))}, users...)
	sort.Strings(want)
	if got := w.flink.jarNames(w.ns, cluster); !reflect.DeepEqual(got, want) {
		t.Errorf("jars on %s: %v, want %v", cluster, got, want)
	}
}

// TestSessionJobJarsBounded: across 10 upgrades to new jars the session
// cluster holds only the jar the job runs (and the user's own upload); a
// restart with the same jar uploads nothing; deletion leaves no jar of
// ours behind.
func TestSessionJobJarsBounded(t *testing.T) {
	t.Parallel()
	w := newSimWorld(t)
	dir := t.TempDir()
	jar := jarVariant(t, dir, 0)
	w.until(KindDeployment, "session", w.desired("session", sessionSpecOf()), "session cluster", func(r *Record) bool {
		return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleStable
	})
	users := &fakeFlink{sim: w.flink, namespace: w.ns, name: "session"}
	if _, err := users.UploadJarFrom(context.Background(), "users-own.jar", strings.NewReader("PK")); err != nil {
		t.Fatal(err)
	}
	spec := sessionJobSpecOf("session", jar, v1beta1.UpgradeModeStateless, "10")
	r := w.until(KindSessionJob, "job", w.desiredJob("job", spec), "session job", stableRunning)
	wantJarOf(t, w, "session", r, jar, "users-own.jar")
	for i := 1; i <= 10; i++ {
		jar = jarVariant(t, dir, i)
		spec.Job.JarURI = "file://" + jar
		before := r.Common().JobStatus.JobID
		r = w.until(KindSessionJob, "job", w.desiredJob("job", spec), fmt.Sprintf("upgrade %d", i), func(r *Record) bool {
			return stableRunning(r) && r.Common().JobStatus.JobID != before
		})
		wantJarOf(t, w, "session", r, jar, "users-own.jar")
	}
	uploads := w.callsOf("UploadJar")
	spec.RestartNonce = ptr(int64(1))
	before := r.Common().JobStatus.JobID
	r = w.until(KindSessionJob, "job", w.desiredJob("job", spec), "restart", func(r *Record) bool {
		return stableRunning(r) && r.Common().JobStatus.JobID != before
	})
	if n := w.callsOf("UploadJar"); n != uploads {
		t.Errorf("a restart with the same jar uploaded it again (%d uploads, was %d)", n, uploads)
	}
	wantJarOf(t, w, "session", r, jar, "users-own.jar")

	w.until(KindSessionJob, "job", nil, "deleted", func(r *Record) bool {
		return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleDeleted
	})
	if got := w.flink.jarNames(w.ns, "session"); !reflect.DeepEqual(got, []string{"users-own.jar"}) {
		t.Errorf("jars left after deletion: %v, want only the user's own", got)
	}
}

// TestJarSweepAtRest: a jar of ours that no job needs (left by a daemon
// that crashed before recording, or by an older version) is deleted by
// the sweep at rest, at most once per interval; a failing deletion is an
// event and stops nothing.
func TestJarSweepAtRest(t *testing.T) {
	t.Parallel()
	w := newSimWorld(t)
	jar := jarVariant(t, t.TempDir(), 0)
	r := runningSessionJobOf(t, w, jar)
	orphan := jarName(strings.Repeat("9", 64), "old.jar")
	ff := &fakeFlink{sim: w.flink, namespace: w.ns, name: "session"}
	if _, err := ff.UploadJarFrom(context.Background(), orphan, strings.NewReader("PK")); err != nil {
		t.Fatal(err)
	}
	d := w.desiredJob("job", sessionJobSpecOf("session", jar, v1beta1.UpgradeModeSavepoint, "10"))
	w.flink.FailJarDeletes = true
	w.clock.Advance(jarSweepInterval)
	w.until(KindSessionJob, "job", d, "a failed deletion reported", func(*Record) bool {
		return w.hasEvent(ReasonCleanupFailed, "could not delete 1 unneeded jar")
	})
	if !stableRunning(w.record(KindSessionJob, "job")) {
		t.Fatalf("a failed jar deletion disturbed the job: %s", dumpRecord(w.record(KindSessionJob, "job")))
	}
	w.flink.FailJarDeletes = false
	lists := w.callsOf("ListJars")
	for i := 0; i < 5; i++ { // within the interval: no sweep
		w.tick()
		w.pass(KindSessionJob, "job", d)
	}
	if n := w.callsOf("ListJars"); n != lists {
		t.Errorf("%d jar listings within the sweep interval, want none", n-lists)
	}
	w.clock.Advance(jarSweepInterval)
	w.until(KindSessionJob, "job", d, "the orphan deleted", func(*Record) bool {
		return len(ourJars(w, "session")) == 1
	})
	wantJarOf(t, w, "session", r, jar)
}

// TestJarDeletedBeforeRun: a jar that vanishes between the listing that
// found it and the run (another resource's sweep) is uploaded again, not
// a failed submission.
func TestJarDeletedBeforeRun(t *testing.T) {
	t.Parallel()
	w := newSimWorld(t)
	jar := jarVariant(t, t.TempDir(), 0)
	r := runningSessionJobOf(t, w, jar)
	deleted := false
	vanish := func(what string) { // a sweep elsewhere deletes the jar right before the first run
		if !strings.HasPrefix(what, "flink RunJar") || deleted {
			return
		}
		deleted = true
		w.flink.mu.Lock()
		defer w.flink.mu.Unlock()
		jm := w.flink.jms[simKey(w.ns, "session")]
		for id, name := range jm.Jars {
			if jarNameDigest(name) != "" {
				delete(jm.Jars, id)
			}
		}
	}
	w.rec.Flink = func(namespace, name string) (Flink, error) {
		return &fakeFlink{sim: w.flink, namespace: namespace, name: name, hit: vanish}, nil
	}
	spec := sessionJobSpecOf("session", jar, v1beta1.UpgradeModeStateless, "10")
	spec.RestartNonce = ptr(int64(1))
	before := r.Common().JobStatus.JobID
	r = w.until(KindSessionJob, "job", w.desiredJob("job", spec), "restart", func(r *Record) bool {
		return stableRunning(r) && r.Common().JobStatus.JobID != before
	})
	if !deleted {
		t.Fatal("the jar was never deleted before a run")
	}
	wantJarOf(t, w, "session", r, jar)
}

// runningSessionJobOf deploys the session cluster and a savepoint-mode
// session job running jar.
func runningSessionJobOf(t *testing.T, w *simWorld, jar string) *Record {
	t.Helper()
	w.until(KindDeployment, "session", w.desired("session", sessionSpecOf()), "session cluster", func(r *Record) bool {
		return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleStable
	})
	r := w.until(KindSessionJob, "job", w.desiredJob("job", sessionJobSpecOf("session", jar, v1beta1.UpgradeModeSavepoint, "10")), "job", stableRunning)
	wantJarOf(t, w, "session", r, jar)
	return r
}
