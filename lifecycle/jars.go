package lifecycle

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/lifecycle/artifact"
)

// Session job jars on the JobManager. A jar is uploaded under a name the
// daemon owns and that encodes its digest (jarName), once per digest and
// session cluster: before uploading, the JobManager's jars are listed and
// a daemon-named jar with that digest (under any base name) is run
// instead. The digest is persisted in the operation before the upload and
// in Deployed once the job is submitted, so the records say which jars
// their jobs need. After a session job's operation ends, and at rest every
// jarSweepInterval, the cluster's daemon-named jars that no record needs
// are deleted. A jar whose name is not daemon-named (a user's own upload)
// is never touched.

const (
	// jarNamePrefix starts every jar name the daemon uploads under.
	jarNamePrefix = "flink-gitops-"
	// jarDigestLen is how many hex digits of the SHA-256 a name carries.
	jarDigestLen = 16
	// maxJarBase caps the original base name kept in an upload name.
	maxJarBase = 80
	// maxJarDeletes caps the jars one sweep deletes; the next sweep
	// deletes the rest.
	maxJarDeletes = 20
	// jarSweepInterval is the least time between two sweeps of one
	// session cluster at rest.
	jarSweepInterval = 5 * time.Minute
)

// jarName is the upload name of a jar with SHA-256 digest (hex) and base
// name base: flink-gitops-<16 hex>-<base>.jar, base reduced to characters
// safe in a file name.
func jarName(digest, base string) string {
	b := artifact.SafeName(strings.TrimSuffix(base, ".jar"))
	if len(b) > maxJarBase {
		b = b[:maxJarBase]
	}
	if b == "" {
		b = "job"
	}
	return jarNamePrefix + digestKey(digest) + "-" + b + ".jar"
}

// jarNameDigest returns the digest prefix a daemon-owned jar name carries,
// "" for any other name.
func jarNameDigest(name string) string {
	rest, ok := strings.CutPrefix(name, jarNamePrefix)
	if !ok || len(rest) < jarDigestLen+1 || rest[jarDigestLen] != '-' || !strings.HasSuffix(rest, ".jar") {
		return ""
	}
	d := rest[:jarDigestLen]
	if _, err := hex.DecodeString(d); err != nil || strings.ToLower(d) != d {
		return ""
	}
	return d
}

// digestKey is the part of a digest a jar name carries.
func digestKey(digest string) string {
	return strings.ToLower(digest[:min(len(digest), jarDigestLen)])
}

// pickJar returns the daemon-named jar with digest key key (whatever
// base name it was uploaded under) that uploads reuse and sweeps keep: the
// newest, then the greatest id, so both choose the same one; and whether
// there is one.
func pickJar(jars []flinkclient.JarFile, key string) (flinkclient.JarFile, bool) {
	var best flinkclient.JarFile
	found := false
	for _, j := range jars {
		if jarNameDigest(j.Name) != key {
			continue
		}
		if !found || j.Uploaded.After(best.Uploaded) || (j.Uploaded.Equal(best.Uploaded) && j.ID > best.ID) {
			best, found = j, true
		}
	}
	return best, found
}

// recordCluster is the session cluster a session job record runs on, and
// whether the record says.
func recordCluster(r *Record) (string, bool) {
	var specs []string
	if r.Operation != nil {
		specs = append(specs, r.Operation.TargetSpec)
	}
	if r.SessionJob != nil {
		specs = append(specs, r.SessionJob.ReconciliationStatus.LastReconciledSpec)
	}
	for _, js := range specs {
		if s, _ := sessionJobSpec(js); s != nil && s.DeploymentName != "" {
			return s.DeploymentName, true
		}
	}
	return "", false
}

// neededJars returns the digest keys of the jars the session job records
// on cluster need: the one each deployed job runs and the one each
// operation in flight is about to run. A record that does not say which
// cluster it runs on counts for every cluster.
func neededJars(recs []*Record, cluster string) map[string]bool {
	need := map[string]bool{}
	for _, r := range recs {
		if r == nil || r.Kind != KindSessionJob {
			continue
		}
		if c, ok := recordCluster(r); ok && c != cluster {
			continue
		}
		if r.Deployed != nil && r.Deployed.JarDigest != "" {
			need[digestKey(r.Deployed.JarDigest)] = true
		}
		if r.Operation != nil && r.Operation.JarDigest != "" {
			need[digestKey(r.Operation.JarDigest)] = true
		}
	}
	return need
}

// unneededJars returns the daemon-named jars to delete: those whose digest
// is not needed, and the extra copies of a needed one (all but the one
// pickJar chooses, also copies under another base name), at most limit of
// them.
func unneededJars(jars []flinkclient.JarFile, need map[string]bool, limit int) []flinkclient.JarFile {
	var out []flinkclient.JarFile
	for _, j := range jars {
		if len(out) == limit {
			break
		}
		d := jarNameDigest(j.Name)
		if d == "" {
			continue // not ours
		}
		if need[d] {
			if keep, _ := pickJar(jars, d); keep.ID == j.ID {
				continue
			}
		}
		out = append(out, j)
	}
	return out
}

// uploadJarOnce makes the fetched jar available on the JobManager and
// returns its jar id: its digest is persisted in the operation first, then
// a jar already uploaded under its daemon-owned name is reused, else it is
// uploaded under that name.
func (p *pass) uploadJarOnce(ctx context.Context, f Flink, jar artifact.Jar) (string, error) {
	op := p.rec.Operation
	if op.JarDigest != jar.SHA256 {
		op.JarDigest = jar.SHA256
		if err := p.persist(ctx); err != nil {
			return "", err
		}
	}
	name := jarName(jar.SHA256, jar.Name)
	jars, err := f.ListJars(ctx)
	if err != nil {
		return "", err
	}
	if j, ok := pickJar(jars, digestKey(jar.SHA256)); ok {
		p.log.Info("jar already on the JobManager", "jar", j.ID)
		return j.ID, nil
	}
	r, err := os.Open(jar.Path)
	if err != nil {
		return "", fmt.Errorf("read jar: %w", err)
	}
	defer r.Close()
	id, err := f.UploadJarFrom(ctx, name, r)
	if err != nil {
		return "", err
	}
	p.log.Info("jar uploaded", "jar", id)
	return id, nil
}

// jarVanished reports whether jarID is no longer on the JobManager (a
// sweep of another resource deleted it between listing and running): the
// submission is then retried, uploading it again.
func (p *pass) jarVanished(ctx context.Context, f Flink, jarID string) bool {
	jars, err := f.ListJars(ctx)
	if err != nil {
		return false
	}
	for _, j := range jars {
		if j.ID == jarID {
			return false
		}
	}
	return true
}

// jarSweeps remembers when each session cluster's jars were last swept at
// rest. The zero value is ready to use.
type jarSweeps struct {
	mu   gosync.Mutex
	last map[string]time.Time
}

// due reports whether key was last swept at least jarSweepInterval before
// now, and if so counts this as its sweep.
func (s *jarSweeps) due(key string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.last[key]; ok && now.Sub(t) < jarSweepInterval && !now.Before(t) {
		return false
	}
	if s.last == nil {
		s.last = map[string]time.Time{}
	}
	s.last[key] = now
	return true
}

// sweepJarsAfter sweeps the jars of session cluster cl once an operation
// that submitted or stopped a job (op, now ended) is over. cl is read
// before the operation ran: a deletion forgets it.
func (p *pass) sweepJarsAfter(ctx context.Context, op *Operation, cl string) {
	if op == nil || p.rec.Operation != nil || (op.TargetSpec == "" && op.Kind != OpDelete) {
		return
	}
	p.sweepJars(ctx, cl)
}

// sweepJarsAtRest sweeps the session cluster's jars at most every
// jarSweepInterval.
func (p *pass) sweepJarsAtRest(ctx context.Context) {
	cl := p.clusterName()
	if cl == "" || !p.r.jarSweeps.due(p.rec.Namespace+"/"+cl, p.now()) {
		return
	}
	p.sweepJars(ctx, cl)
}

// sweepJars deletes session cluster cl's daemon-named jars no session job
// record needs. It lists the jars first and the records second: an upload
// is recorded before it happens, so a jar uploaded after the listing is
// not seen, and one uploaded before it is needed by a record read after
// it. Failures are logged and reported as events; they never fail the
// operation.
func (p *pass) sweepJars(ctx context.Context, cl string) {
	if cl == "" {
		return
	}
	f, err := p.r.Flink(p.rec.Namespace, cl)
	if err != nil {
		return
	}
	log := p.log.With("step", "jar cleanup", "cluster", cl)
	jars, err := f.ListJars(ctx)
	if err != nil {
		log.Debug("jars not listed", "err", err)
		return
	}
	recs, err := p.r.Store.List(ctx, p.rec.Namespace)
	if err != nil {
		log.Warn("records not listed; no jar deleted", "err", err)
		return
	}
	// This pass's record is newer than its stored copy (saved after the
	// pass): a job deleted or upgraded just now needs its old jar no more.
	recs = slices.DeleteFunc(recs, func(r *Record) bool { return r.Kind == p.rec.Kind && r.Name == p.rec.Name })
	need := neededJars(append(recs, p.rec), cl)
	var failed []string
	for _, j := range unneededJars(jars, need, maxJarDeletes) {
		if err := f.DeleteJar(ctx, j.ID); err != nil && !errors.Is(err, flinkclient.ErrNotFound) {
			log.Warn("jar not deleted", "jar", j.ID, "err", err)
			failed = append(failed, j.ID)
			continue
		}
		log.Info("jar deleted", "jar", j.ID)
	}
	if len(failed) > 0 {
		p.r.Events.Warn(ctx, p.rec, ReasonCleanupFailed, fmt.Sprintf("could not delete %d unneeded jar(s) from session cluster %s (%s); tried again later",
			len(failed), cl, strings.Join(failed, ", ")))
	}
}
