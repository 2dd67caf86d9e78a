package lifecycle_test

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/lifecycle"
)

// jarVariant copies the jar with zip comment i: the same classes under
// another digest, as a rebuilt jar would be.
func jarVariant(t *testing.T, jar string, i int) string {
	t.Helper()
	zr, err := zip.OpenReader(jar)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	p := filepath.Join(t.TempDir(), fmt.Sprintf("testjob-v%d.jar", i))
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(out)
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") { // a directory: no data to copy
			h := f.FileHeader
			h.Method, h.CompressedSize64, h.UncompressedSize64, h.CRC32 = zip.Store, 0, 0, 0
			if _, err := zw.CreateHeader(&h); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := zw.Copy(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.SetComment(fmt.Sprintf("variant %d", i)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// jarKey is the part of the jar's SHA-256 the daemon's upload name carries.
func jarKey(t *testing.T, jar string) string {
	t.Helper()
	f, err := os.Open(jar)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// jarsOn lists the cluster's jars: the digest keys of the daemon-named
// ones (flink-gitops-<16 hex>-<name>.jar), sorted, with duplicates, and
// the ids of all others.
func (b *bed) jarsOn(cl string) (ours, others []string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jars, err := b.flinkOf(cl).ListJars(ctx)
	if err != nil {
		b.t.Fatalf("list jars of %s: %v", cl, err)
	}
	for _, j := range jars {
		if rest, ok := strings.CutPrefix(j.Name, "flink-gitops-"); ok && len(rest) > 17 && rest[16] == '-' {
			ours = append(ours, rest[:16])
		} else {
			others = append(others, j.ID)
		}
	}
	sort.Strings(ours)
	return ours, others
}

// wantJars checks that the cluster holds exactly one daemon-named jar per
// needed jar, and the user's own upload userJar.
func (b *bed) wantJars(t *testing.T, cl, userJar string, needed ...string) {
	t.Helper()
	keys := map[string]bool{}
	for _, j := range needed {
		keys[jarKey(t, j)] = true
	}
	want := make([]string, 0, len(keys))
	for k := range keys {
		want = append(want, k)
	}
	sort.Strings(want)
	ours, others := b.jarsOn(cl)
	if strings.Join(ours, ",") != strings.Join(want, ",") {
		t.Errorf("daemon-named jars on %s: %v, want %v", cl, ours, want)
	}
	if len(others) != 1 || others[0] != userJar {
		t.Errorf("other jars on %s: %v, want only the user's own %s", cl, others, userJar)
	}
}

// jarUpgrades uploads a jar of the user's own to session cluster cl, then
// upgrades session job name (running job id jobID) 10 times, each time to
// a rebuilt jar, statelessly (update commits the job's spec for a jar and
// returns its desired state). After each upgrade the cluster holds exactly
// the jars the jobs need (this one's and keep's) and the user's jar. It
// returns the user's jar id and the job's last job id.
func (b *bed) jarUpgrades(t *testing.T, cl, name, jobID, jar string, keep []string, update func(jar string) *lifecycle.Desired) (string, string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	userJar, err := b.flinkOf(cl).UploadJar(ctx, jar)
	if err != nil {
		t.Fatalf("upload the user's own jar: %v", err)
	}
	start := time.Now()
	for i := 1; i <= 10; i++ {
		v := jarVariant(t, jar, i)
		r := b.until(lifecycle.KindSessionJob, name, update(v), fmt.Sprintf("%s upgrade %d to a new jar", name, i), 2*time.Minute, newJob(jobID))
		jobID = r.Common().JobStatus.JobID
		if job, err := b.flinkOf(cl).Job(ctx, jobID); err != nil || job.State != flinkclient.JobRunning {
			t.Fatalf("upgrade %d: job %s is %s (%v)", i, jobID, job.State, err)
		}
		b.wantJars(t, cl, userJar, append([]string{v}, keep...)...)
		if t.Failed() {
			return userJar, jobID
		}
	}
	t.Logf("10 stateless upgrades to new jars took %s; the session cluster kept one jar per job", time.Since(start).Round(time.Millisecond))
	b.logOverhead("session job stateless upgrade to a new jar (2.2)", name, cl, jobID)
	return userJar, jobID
}
