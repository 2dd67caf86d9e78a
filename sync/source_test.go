package sync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flink-gitops/flink-gitops/tests/testbed/gitserver"
	"github.com/google/go-cmp/cmp"
)

func TestPollDetectsChangesAndNoopPollDoesNotFetch(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := context.Background()
	srv, w := specRepo(t)
	c1 := mustCommitPush(t, w, map[string]string{
		"apps/a/kustomization.yaml": "resources: [a.yaml]\n",
		"apps/a/a.yaml":             "kind: FlinkDeployment\n",
		"README.md":                 "hello\n",
	}, "first")

	src := newTestSource(t, srv, "specs", nil)
	snap, changed, err := src.Poll(ctx)
	if err != nil || !changed {
		t.Fatalf("first poll: changed=%v err=%v", changed, err)
	}
	if snap.Commit != c1 || snap.Previous != "" || strings.TrimSpace(snap.Message) != "first" || snap.Author.Email != "author@example.com" {
		t.Fatalf("snapshot metadata = %+v", snap)
	}
	if diff := cmp.Diff([]string{"README.md", "apps/a/a.yaml", "apps/a/kustomization.yaml"}, snap.ChangedPaths); diff != "" {
		t.Fatalf("first ChangedPaths (-want +got):\n%s", diff)
	}
	if err := fstest.TestFS(snap.FS(), "README.md", "apps/a/a.yaml", "apps/a/kustomization.yaml"); err != nil {
		t.Fatalf("snapshot FS: %v", err)
	}
	b, err := fs.ReadFile(snap.FS(), "apps/a/a.yaml")
	if err != nil || string(b) != "kind: FlinkDeployment\n" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
	hash, ok := snap.BlobHash("README.md")
	if !ok || hash != "ce013625030ba8dba906f756967f9e9ca394464a" { // git hash-object of "hello\n"
		t.Fatalf("BlobHash(README.md) = %q, %v", hash, ok)
	}

	// No new commit: one ls-remote, no upload-pack.
	before := srv.Counts()
	for range 3 {
		again, changed, err := src.Poll(ctx)
		if err != nil || changed || again != snap {
			t.Fatalf("no-op poll: changed=%v err=%v same=%v", changed, err, again == snap)
		}
	}
	after := srv.Counts()
	if after.UploadPack != before.UploadPack {
		t.Fatalf("no-op polls fetched: upload-pack requests %d → %d", before.UploadPack, after.UploadPack)
	}
	if after.Advertise-before.Advertise != 3 {
		t.Fatalf("no-op polls made %d ref advertisements, want 3", after.Advertise-before.Advertise)
	}

	// A new commit: modified, added and deleted files are the changed paths.
	if err := w.Remove("README.md"); err != nil {
		t.Fatal(err)
	}
	c2 := mustCommitPush(t, w, map[string]string{
		"apps/a/a.yaml": "kind: FlinkDeployment\nspec: {}\n",
		"apps/b/b.yaml": "kind: FlinkSessionJob\n",
	}, "second")
	before = srv.Counts()
	snap2, changed, err := src.Poll(ctx)
	if err != nil || !changed || snap2.Commit != c2 || snap2.Previous != c1 {
		t.Fatalf("second poll: changed=%v err=%v snap=%+v", changed, err, snap2)
	}
	if n := srv.Counts().UploadPack - before.UploadPack; n != 1 {
		t.Fatalf("new commit took %d upload-pack requests, want 1", n)
	}
	if diff := cmp.Diff([]string{"README.md", "apps/a/a.yaml", "apps/b/b.yaml"}, snap2.ChangedPaths); diff != "" {
		t.Fatalf("ChangedPaths (-want +got):\n%s", diff)
	}
	if _, err := snap2.ReadFile("README.md"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("deleted file still readable: %v", err)
	}
	// The old snapshot is immutable.
	if b, _ := snap.ReadFile("apps/a/a.yaml"); string(b) != "kind: FlinkDeployment\n" {
		t.Fatalf("old snapshot changed: %q", b)
	}
	if src.Last() != snap2 {
		t.Fatal("Last() is not the newest snapshot")
	}
}

func TestForcePushIsJustTheNewHead(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := context.Background()
	srv, w := specRepo(t)
	mustCommitPush(t, w, map[string]string{"a.yaml": "1\n"}, "c1")
	c2 := mustCommitPush(t, w, map[string]string{"a.yaml": "2\n", "b.yaml": "b\n"}, "c2")
	src := newTestSource(t, srv, "specs", nil)
	if snap, _, err := src.Poll(ctx); err != nil || snap.Commit != c2 {
		t.Fatalf("poll: %v", err)
	}
	// Rewrite history: drop c2 and commit something else on c1.
	if _, err := w.Git(ctx, "reset", "--quiet", "--hard", "HEAD~1"); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile("c.yaml", "c\n"); err != nil {
		t.Fatal(err)
	}
	c3, err := w.Commit(ctx, "c3 rewritten")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.ForcePush(ctx); err != nil {
		t.Fatal(err)
	}
	snap, changed, err := src.Poll(ctx)
	if err != nil || !changed || snap.Commit != c3 || snap.Previous != c2 {
		t.Fatalf("poll after force push: changed=%v err=%v snap=%+v", changed, err, snap)
	}
	if diff := cmp.Diff([]string{"a.yaml", "b.yaml", "c.yaml"}, snap.ChangedPaths); diff != "" {
		t.Fatalf("ChangedPaths (-want +got):\n%s", diff)
	}
}

func TestRemoteDownKeepsLastSnapshotAndRecovers(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := context.Background()
	srv, w := specRepo(t)
	c1 := mustCommitPush(t, w, map[string]string{"a.yaml": "1\n"}, "c1")

	src := newTestSource(t, srv, "specs", func(o *Options) {
		o.Interval = 20 * time.Millisecond
		o.MaxBackoff = 100 * time.Millisecond
		o.Timeout = 2 * time.Second
	})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	changes := make(chan *Snapshot, 10)
	go func() { done <- src.Run(runCtx, func(s *Snapshot) { changes <- s }) }()
	t.Cleanup(func() { cancel(); <-done })

	if s := <-changes; s.Commit != c1 {
		t.Fatalf("first snapshot %s, want %s", s.Commit, c1)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "source reported unavailable", func() bool {
		st := src.Status()
		return !st.Available && st.Failures >= 2
	})
	st := src.Status()
	t.Logf("status while down: %+v", st)
	if !errors.Is(st.Err, ErrUnavailable) {
		t.Fatalf("status error %v is not ErrUnavailable", st.Err)
	}
	if strings.Contains(st.Err.Error(), srv.Password()) {
		t.Fatalf("error leaks the token: %v", st.Err)
	}
	if src.Last() == nil || src.Last().Commit != c1 {
		t.Fatal("last good snapshot was dropped while the remote was down")
	}
	// Back up with a new commit: the source recovers on its own.
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	c2 := mustCommitPush(t, w, map[string]string{"a.yaml": "2\n"}, "c2")
	select {
	case s := <-changes:
		if s.Commit != c2 {
			t.Fatalf("snapshot after recovery %s, want %s", s.Commit, c2)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no snapshot after the remote came back; status %+v", src.Status())
	}
	if st := src.Status(); !st.Available || st.Err != nil || st.Failures != 0 {
		t.Fatalf("status after recovery = %+v", st)
	}
}

func TestWrongCredentialsClearErrorWithoutSecret(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := context.Background()
	srv, w := specRepo(t)
	mustCommitPush(t, w, map[string]string{"a.yaml": "1\n"}, "c1")

	const wrong = "wrong-token-Zx81qPL"
	for name, auth := range map[string]Auth{
		"wrong token": {Username: srv.User(), TokenFile: tokenFile(t, wrong)},
		"anonymous":   {},
	} {
		t.Run(name, func(t *testing.T) {
			src := newTestSource(t, srv, "specs", func(o *Options) { o.Auth = auth })
			snap, changed, err := src.Poll(ctx)
			if err == nil || changed || snap != nil {
				t.Fatalf("poll with bad credentials: snap=%v changed=%v err=%v", snap, changed, err)
			}
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("error %q is not ErrAuth", err)
			}
			if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), srv.Password()) {
				t.Fatalf("error leaks a secret: %v", err)
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), "authentication") {
				t.Fatalf("error does not say what is wrong: %v", err)
			}
		})
	}
	// A token in the URL is redacted too.
	src := newTestSource(t, srv, "specs", func(o *Options) {
		o.URL = strings.Replace(srv.URL("specs"), "http://", "http://"+srv.User()+":"+wrong+"@", 1)
		o.Auth = Auth{}
	})
	_, _, err := src.Poll(ctx)
	if err == nil || strings.Contains(err.Error(), wrong) {
		t.Fatalf("URL credentials: err=%v", err)
	}
}

func TestDelay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		failures int
		r        float64
		want     time.Duration
	}{
		{0, 0.5, time.Second},
		{1, 0.5, time.Second},
		{2, 0.5, 2 * time.Second},
		{3, 0.5, 4 * time.Second},
		{10, 0.5, 5 * time.Second},
		{0, 0, 900 * time.Millisecond},
		{0, 1, 1100 * time.Millisecond},
	} {
		if got := delay(time.Second, 5*time.Second, 0.1, tc.failures, tc.r); got != tc.want {
			t.Errorf("delay(failures=%d, r=%v) = %v, want %v", tc.failures, tc.r, got, tc.want)
		}
	}
}

func TestHTTPSWithCustomCA(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := context.Background()
	srv := gitserver.Start(t, gitserver.WithTLS())
	srv.CreateRepo("specs")
	w := srv.Worktree(t, "specs")
	c1 := mustCommitPush(t, w, map[string]string{"a.yaml": "1\n"}, "c1")

	src := newTestSource(t, srv, "specs", func(o *Options) { o.Auth.CAFile = srv.CAFile() })
	if snap, _, err := src.Poll(ctx); err != nil || snap.Commit != c1 {
		t.Fatalf("poll over https with the CA: %v", err)
	}
	sw := newTestStatusWriter(t, srv, "specs", func(o *StatusWriterOptions) { o.Auth.CAFile = srv.CAFile() })
	if res, err := sw.Write(ctx, map[string][]byte{"README.md": []byte("ok\n")}, c1); err != nil || !res.Changed {
		t.Fatalf("status write over https: %+v, %v", res, err)
	}

	untrusting := newTestSource(t, srv, "specs", nil)
	_, _, err := untrusting.Poll(ctx)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("poll without the CA: %v", err)
	}
}

func TestSnapshotSizeLimit(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := context.Background()
	srv, w := specRepo(t)
	c1 := mustCommitPush(t, w, map[string]string{"a.yaml": "small\n"}, "c1")
	src := newTestSource(t, srv, "specs", func(o *Options) { o.MaxSnapshotBytes = 100 })
	if snap, _, err := src.Poll(ctx); err != nil || snap.Commit != c1 {
		t.Fatalf("small commit: %v", err)
	}
	big := mustCommitPush(t, w, map[string]string{"big.yaml": strings.Repeat("x", 200)}, "big")
	snap, changed, err := src.Poll(ctx)
	if !errors.Is(err, ErrSnapshotTooLarge) || changed || snap.Commit != c1 {
		t.Fatalf("big commit: changed=%v err=%v", changed, err)
	}
	if st := src.Status(); st.Rejected != big || !strings.Contains(st.Err.Error(), "big.yaml") {
		t.Fatalf("status = %+v", st)
	}
}

func TestCancelledPollIsNotAnOutage(t *testing.T) {
	integration(t)
	t.Parallel()
	srv, w := specRepo(t)
	mustCommitPush(t, w, map[string]string{"a.yaml": "1\n"}, "c1")
	src := newTestSource(t, srv, "specs", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := src.Poll(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled poll: %v", err)
	}
	if st := src.Status(); st.Failures != 0 || st.Err != nil {
		t.Fatalf("a cancelled poll was recorded as a failure: %+v", st)
	}
}

// TestFetchSizeLimit pushes a git bomb — a file of zeros far larger than
// the fetch cap that compresses to a tiny pack — and checks that the fetch
// is refused with the size named, for the watched branch and for FetchRef,
// without the blob ever being inflated into memory (allocations stay far
// below its size).
func TestFetchSizeLimit(t *testing.T) {
	integration(t)
	ctx := context.Background()
	srv, w := specRepo(t)
	c1 := mustCommitPush(t, w, map[string]string{"a.yaml": "small\n"}, "c1")
	const capBytes = 8 << 20
	src := newTestSource(t, srv, "specs", func(o *Options) { o.MaxFetchBytes = capBytes })
	if snap, _, err := src.Poll(ctx); err != nil || snap.Commit != c1 {
		t.Fatalf("small commit: %v", err)
	}
	const bombBytes = 200 << 20
	bomb := mustCommitPush(t, w, map[string]string{"zeros.bin": strings.Repeat("\x00", bombBytes)}, "bomb")

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	snap, changed, err := src.Poll(ctx)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrSnapshotTooLarge) || changed || snap.Commit != c1 {
		t.Fatalf("git bomb: changed=%v err=%v", changed, err)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(capBytes)) {
		t.Errorf("the error does not name the cap: %v", err)
	}
	if testing.Verbose() {
		t.Logf("refused: %v", err)
	}
	if st := src.Status(); st.Rejected != bomb {
		t.Errorf("status = %+v, want the bomb rejected", st)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2*capBytes {
		t.Errorf("the refused fetch allocated %d MiB; the cap is %d MiB", alloc>>20, capBytes>>20)
	}
	if _, err := src.FetchRef(ctx, "refs/heads/main"); !errors.Is(err, ErrSnapshotTooLarge) {
		t.Errorf("FetchRef of the bomb: %v", err)
	}
}
