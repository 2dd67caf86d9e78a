package render

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	gosync "sync"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// Renderer renders snapshots and remembers, per entry point, the files the
// last build read (by Git blob hash), so that the next render rebuilds only
// the entry points whose inputs changed. It is safe for concurrent use;
// renders run one at a time.
type Renderer struct {
	mu    gosync.Mutex
	cache map[string]*cacheEntry
}

// cacheEntry is the outcome of one entry point's build and what it read.
type cacheEntry struct {
	deps     map[string]string // repository path -> fingerprint
	objs     []rawObject
	problems []Problem
	warnings []Problem // from the precheck (deprecated kustomization fields)
	failed   bool

	// decoded holds objs decoded and validated under the options whose
	// fingerprint is decodedFor, so an unchanged entry point is not decoded
	// again while the options stay the same.
	decoded    []decodedObject
	decodedFor string
}

// decodedObject is decodeObject's result for one object.
type decodedObject struct {
	key      Key
	file     string
	resource *Resource
	problems []Problem
	warnings []Problem
}

// NewRenderer returns a Renderer with an empty cache.
func NewRenderer() *Renderer { return &Renderer{cache: map[string]*cacheEntry{}} }

// Render renders every entry point of the snapshot, reusing the previous
// build of an entry point when none of the files it read has changed.
// A broken entry point or an invalid resource is reported in the Result and
// never stops the others; the error is only for a cancelled context.
func (r *Renderer) Render(ctx context.Context, src Source, opts Options) (*Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	opts = opts.withDefaults()
	t := newTree(src, opts.MaxFileSize)
	res := &Result{}
	entries, problems := expandEntryPoints(t, opts.EntryPoints)
	res.Problems = append(res.Problems, problems...)

	var mem filesys.FileSystem
	built := map[string]*cacheEntry{}
	reused := map[string]bool{}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("render: %w", err)
		}
		if c, ok := r.cache[e]; ok && c.valid(t) {
			built[e] = c
			reused[e] = true
			res.Reused++
			continue
		}
		ps, ws, customSchema := precheck(t, e, opts)
		if len(ps) > 0 {
			built[e] = &cacheEntry{problems: ps, warnings: ws, failed: true}
			res.Built++
			continue
		}
		if mem == nil {
			var err error
			if mem, err = loadFS(t, opts.MaxFileSize); err != nil {
				return nil, fmt.Errorf("render: %w", err)
			}
		}
		built[e] = buildEntry(ctx, mem, t, e, customSchema, opts)
		built[e].warnings = ws
		res.Built++
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	// Keep only the entry points of this render; cache only complete builds
	// (a precheck failure has no recorded reads).
	r.cache = map[string]*cacheEntry{}
	for e, c := range built {
		if c.deps != nil {
			r.cache[e] = c
		}
	}
	assemble(res, entries, built, reused, opts)
	return res, nil
}

func (c *cacheEntry) valid(t *tree) bool {
	for p, fp := range c.deps {
		if t.fingerprint(p) != fp {
			return false
		}
	}
	return true
}

// buildEntry runs one build and records what it read. The build runs in
// its own goroutine: when it overruns opts.BuildTimeout or ctx ends, it is
// abandoned (its filesystem refuses every further read, so it stops at its
// next file access, and it releases the gate when it returns) and reported
// as a problem on the entry point; nothing waits for it.
func buildEntry(ctx context.Context, mem filesys.FileSystem, t *tree, entry string, customSchema bool, opts Options) *cacheEntry {
	ctx, cancel := context.WithTimeout(ctx, opts.BuildTimeout)
	defer cancel()
	fsys := newRecordingFS(mem, t)
	reset, release, err := gate.acquire(ctx, customSchema)
	if err != nil {
		return &cacheEntry{failed: true, problems: []Problem{timeoutProblem(t, entry, opts, "while waiting for another build that changes Kustomize's OpenAPI schema")}}
	}
	type outcome struct {
		objs []rawObject
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		objs, dirty, err := build(fsys, entry, reset, customSchema, opts.MaxObjects)
		release(dirty)
		done <- outcome{objs, err}
	}()
	var out outcome
	select {
	case out = <-done:
	case <-ctx.Done():
	}
	if ctx.Err() != nil {
		// Also when the build and the deadline were both ready: a build that
		// overran its limit is refused whichever select picked first.
		fsys.abandon()
		return &cacheEntry{failed: true, problems: []Problem{timeoutProblem(t, entry, opts, "")}}
	}
	objs, err := out.objs, out.err
	c := &cacheEntry{deps: map[string]string{}, objs: objs}
	for p := range fsys.seen {
		c.deps[p] = t.fingerprint(p)
	}
	if err != nil {
		c.failed = true
		c.objs = nil
		c.problems = []Problem{buildProblem(t, entry, err)}
	}
	return c
}

// timeoutProblem reports a build stopped by its time limit or by shutdown.
func timeoutProblem(t *tree, entry string, opts Options, while string) Problem {
	p := Problem{EntryPoint: entry, Message: fmt.Sprintf("kustomize build stopped after its time limit of %s", opts.BuildTimeout),
		Fix: "make the entry point smaller or simpler, or raise render.buildTimeout in the daemon config"}
	if while != "" {
		p.Message += " " + while
		p.Fix = "retry: the next sync renders it again"
	}
	if kf, ok := t.kustomizationFile(entry); ok {
		p.File = kf
	}
	return p
}

// buildProblem turns a kustomize error into a Problem, naming the file
// when the error names one.
func buildProblem(t *tree, entry string, err error) Problem {
	var le *limitError
	if errors.As(err, &le) {
		p := Problem{EntryPoint: entry, Message: le.msg, Fix: le.fix}
		if kf, ok := t.kustomizationFile(entry); ok {
			p.File = kf
		}
		return p
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	p := Problem{EntryPoint: entry, Message: "kustomize build failed: " + msg,
		Fix: "fix the kustomization or the file it names; `kustomize build " + displayPath(entry) + "` shows the same error"}
	if isPoisoned(err) {
		p.Message = "kustomize build failed: " + strings.TrimSuffix(strings.TrimSpace(firstPoisoned(t, msg)), ":")
		p.Fix = "keep every file an entry point reads inside the repository and under the size limit"
	}
	if kf, ok := t.kustomizationFile(entry); ok {
		p.File = kf
	}
	if f := fileInError(t, entry, msg); f != "" {
		p.File = f
	}
	return p
}

var (
	quotedPath = regexp.MustCompile(`'([^' ]+)'`)
	inFile     = regexp.MustCompile(`in File: (\S+)`)
)

// fileInError finds the repository file a kustomize error names: the last
// quoted path or "in File:" that is a file of the snapshot, taken as
// absolute (kustomize's in-memory root) or relative to the entry point.
func fileInError(t *tree, entry, msg string) string {
	var candidates []string
	for _, m := range quotedPath.FindAllStringSubmatch(msg, -1) {
		candidates = append(candidates, m[1])
	}
	for _, m := range inFile.FindAllStringSubmatch(msg, -1) {
		candidates = append(candidates, m[1])
	}
	found := ""
	for _, c := range candidates {
		var p string
		if strings.HasPrefix(c, "/") {
			p = strings.TrimPrefix(path.Clean(c), "/")
		} else {
			p = path.Join(entry, c)
		}
		if t.isFile(p) {
			found = p
		}
	}
	return found
}
func firstPoisoned(t *tree, msg string) string {
	for _, why := range t.bad {
		if strings.Contains(msg, why) {
			return why
		}
	}
	return msg
}

func displayPath(entry string) string {
	if entry == "" {
		return "."
	}
	return entry
}

// expandEntryPoints resolves the configured paths and globs to entry point
// directories, sorted and unique.
func expandEntryPoints(t *tree, patterns []string) ([]string, []Problem) {
	var problems []Problem
	set := map[string]bool{}
	if len(patterns) == 0 {
		problems = append(problems, Problem{Field: "entryPoints", Message: "no entry points are configured", Fix: "list the kustomization directories to render in the daemon config"})
	}
	for _, pat := range patterns {
		pat = strings.TrimSuffix(pat, "/")
		if pat == "" || pat == "." {
			set[""] = true
			continue
		}
		clean, err := cleanRepoPath(pat)
		if err != nil {
			problems = append(problems, Problem{EntryPoint: pat, Field: "entryPoints", Message: "invalid entry point: " + err.Error(),
				Fix: "give entry points as directories relative to the repository root"})
			continue
		}
		if !strings.ContainsAny(clean, "*?[") {
			if !t.isDir(clean) {
				problems = append(problems, Problem{EntryPoint: clean, Field: "entryPoints", Message: fmt.Sprintf("entry point %s does not exist in the repository", clean),
					Fix: "create the directory with a kustomization.yaml, or fix the configured path"})
				continue
			}
			set[clean] = true
			continue
		}
		n := 0
		for d := range t.dirs {
			if _, ok := t.kustomizationFile(d); ok && matchGlob(clean, d) {
				set[d] = true
				n++
			}
		}
		if n == 0 {
			problems = append(problems, Problem{EntryPoint: clean, Field: "entryPoints", Message: fmt.Sprintf("entry point pattern %s matches no directory with a kustomization", clean),
				Fix: "fix the pattern, or remove it from the configured entry points"})
		}
	}
	out := make([]string, 0, len(set))
	for e := range set {
		out = append(out, e)
	}
	sort.Strings(out)
	return out, problems
}

// matchGlob matches a slash-separated path against a pattern of
// path.Match segments where "**" matches any number of segments.
func matchGlob(pattern, p string) bool {
	ps := strings.Split(pattern, "/")
	var ss []string
	if p != "" {
		ss = strings.Split(p, "/")
	}
	return matchSegs(ps, ss)
}

func matchSegs(ps, ss []string) bool {
	for len(ps) > 0 {
		if ps[0] == "**" {
			for i := 0; i <= len(ss); i++ {
				if matchSegs(ps[1:], ss[i:]) {
					return true
				}
			}
			return false
		}
		if len(ss) == 0 {
			return false
		}
		if ok, err := path.Match(ps[0], ss[0]); err != nil || !ok {
			return false
		}
		ps, ss = ps[1:], ss[1:]
	}
	return len(ss) == 0
}

// assemble decodes and validates every entry point's objects and fills res.
func assemble(res *Result, entries []string, built map[string]*cacheEntry, reused map[string]bool, opts Options) {
	type decl struct {
		entry, file string
		valid       *Resource
	}
	declared := map[Key][]decl{}
	optsKey := optionsFingerprint(opts)
	for _, e := range entries {
		c := built[e]
		er := EntryResult{EntryPoint: e, Failed: c.failed, Cached: reused[e]}
		res.Problems = append(res.Problems, c.problems...)
		res.Warnings = append(res.Warnings, c.warnings...)
		if c.decoded == nil || c.decodedFor != optsKey {
			c.decoded = make([]decodedObject, 0, len(c.objs))
			for _, o := range c.objs {
				key, resource, ps, ws := decodeObject(e, o, opts)
				c.decoded = append(c.decoded, decodedObject{key: key, file: o.File, resource: resource, problems: ps, warnings: ws})
			}
			c.decodedFor = optsKey
		}
		for _, d := range c.decoded {
			res.Problems = append(res.Problems, d.problems...)
			res.Warnings = append(res.Warnings, d.warnings...)
			if d.key.Kind == "" {
				continue
			}
			er.Keys = append(er.Keys, d.key)
			declared[d.key] = append(declared[d.key], decl{entry: e, file: d.file, valid: d.resource})
		}
		res.EntryPoints = append(res.EntryPoints, er)
	}
	keys := make([]Key, 0, len(declared))
	for k := range declared {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })
	valid := map[Key]Resource{}
	for _, k := range keys {
		ds := declared[k]
		if len(ds) > 1 {
			for _, d := range ds[1:] {
				res.Problems = append(res.Problems, Problem{EntryPoint: d.entry, File: d.file, Resource: k.String(),
					Message: fmt.Sprintf("%s is also declared by entry point %s (%s)", k, displayPath(ds[0].entry), ds[0].file),
					Fix:     "rename one of them (metadata.name or a kustomize namePrefix/nameSuffix), or declare the resource in one entry point only"})
			}
			res.Invalid = append(res.Invalid, k)
			continue
		}
		if ds[0].valid == nil {
			res.Invalid = append(res.Invalid, k)
			continue
		}
		valid[k] = *ds[0].valid
	}
	// Session jobs must target a session cluster declared in the repository.
	for _, k := range keys {
		r, ok := valid[k]
		if !ok || r.SessionJob == nil {
			continue
		}
		target := Key{v1beta1.KindFlinkDeployment, k.Namespace, r.SessionJob.Spec.DeploymentName}
		p := Problem{EntryPoint: r.EntryPoint, File: r.File, Resource: k.String(), Field: "spec.deploymentName"}
		if _, ok := declared[target]; !ok {
			p.Message = fmt.Sprintf("session cluster %s is not declared in the repository", target)
			p.Fix = "declare the FlinkDeployment (without spec.job) in the same namespace, or fix spec.deploymentName"
		} else if d, ok := valid[target]; ok && d.Deployment.Spec.Job != nil {
			p.Message = fmt.Sprintf("%s is an application cluster; session jobs need a session cluster", target)
			p.Fix = "point spec.deploymentName at a FlinkDeployment without spec.job"
		} else if ok {
			conf := SessionJobConfig(opts.DefaultConfiguration, d.Deployment.Spec.FlinkConfiguration, r.SessionJob.Spec.FlinkConfiguration)
			errs := jobConfig(r.SessionJob.Spec.Job, conf)
			if len(errs) == 0 {
				continue
			}
			last := len(errs) - 1
			for _, e := range errs[:last] {
				res.Problems = append(res.Problems, Problem{EntryPoint: r.EntryPoint, File: r.File, Resource: k.String(), Field: e.Field, Message: e.Message,
					Fix: e.Fix + " of the session job or of its session cluster " + target.Name})
			}
			p.Field, p.Message, p.Fix = errs[last].Field, errs[last].Message, errs[last].Fix+" of the session job or of its session cluster "+target.Name
		} else {
			continue // the cluster is invalid: its problems say why
		}
		res.Problems = append(res.Problems, p)
		delete(valid, k)
		res.Invalid = append(res.Invalid, k)
	}
	checkSnapshotReferences(res, keys, valid, func(k Key) bool { return len(declared[k]) > 0 })
	for _, k := range keys {
		if r, ok := valid[k]; ok {
			res.Resources = append(res.Resources, r)
		}
	}
	sort.Slice(res.Invalid, func(i, j int) bool { return keyLess(res.Invalid[i], res.Invalid[j]) })
	sortProblems(res.Problems)
	sortProblems(res.Warnings)
}

// optionsFingerprint identifies the options that decoding and validation
// depend on (everything but the entry points); fmt prints maps sorted.
func optionsFingerprint(o Options) string {
	o.EntryPoints = nil
	return fmt.Sprintf("%#v", o)
}

func keyLess(a, b Key) bool {
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	return a.Name < b.Name
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.EntryPoint != b.EntryPoint {
			return a.EntryPoint < b.EntryPoint
		}
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Resource != b.Resource {
			return a.Resource < b.Resource
		}
		return a.Field < b.Field
	})
}

// decodeObject turns one built object into a valid Resource, or problems.
// key is empty for objects that are not Flink resources.
func decodeObject(entry string, o rawObject, opts Options) (key Key, r *Resource, problems, warnings []Problem) {
	ns := o.Namespace
	if ns == "" {
		ns = opts.DefaultNamespace
	}
	id := fmt.Sprintf("%s %s/%s", o.Kind, ns, o.Name)
	mk := func(fe fieldError) Problem {
		return Problem{EntryPoint: entry, File: o.File, Resource: id, Field: fe.Field, Message: fe.Message, Fix: fe.Fix}
	}
	if o.Kind != v1beta1.KindFlinkDeployment && o.Kind != v1beta1.KindFlinkSessionJob && o.Kind != v1beta1.KindFlinkStateSnapshot {
		p := Problem{EntryPoint: entry, File: o.File, Resource: id, Message: fmt.Sprintf("%s (%s) is not a FlinkDeployment or FlinkSessionJob", o.Kind, o.APIVersion)}
		if opts.OtherKinds == OtherKindsError {
			p.Fix = "remove it from the entry point; flink-gitops applies only Flink resources"
			return Key{}, nil, []Problem{p}, nil
		}
		p.Message += "; ignored"
		p.Fix = "remove it from the entry point, or manage it with another tool"
		return Key{}, nil, nil, []Problem{p}
	}
	key = Key{Kind: o.Kind, Namespace: ns, Name: o.Name}
	if o.Err != "" {
		return key, nil, []Problem{mk(fieldError{Message: "invalid YAML: " + o.Err, Fix: "fix the YAML (duplicate keys are not allowed)"})}, nil
	}
	if o.APIVersion != v1beta1.APIVersion {
		return key, nil, []Problem{mk(fieldError{Field: "apiVersion", Message: fmt.Sprintf("unsupported apiVersion %q for %s", o.APIVersion, o.Kind), Fix: "use apiVersion " + v1beta1.APIVersion})}, nil
	}
	v := &validator{opts: opts}
	var errs []fieldError
	if ps := setFields(o.JSON, opts.UnsupportedFields); len(ps) > 0 {
		for _, f := range ps {
			problems = append(problems, mk(fieldError{Field: f, Message: fmt.Sprintf("field %s is not supported by flink-gitops yet", f),
				Fix: "remove the field; flink-gitops would not act on it"}))
		}
		return key, nil, problems, nil
	}
	for _, f := range setFields(o.JSON, warnedFields()) {
		if r, ok := ruleIndex[f]; ok {
			v.warn(f, fmt.Sprintf("%s has no effect in flink-gitops: %s", f, r.Note), "remove the field, or keep it knowing it does nothing here")
		}
	}
	o.JSON = withoutReadOnly(o.JSON)
	r = &Resource{EntryPoint: entry, File: o.File}
	var spec any
	if o.Kind == v1beta1.KindFlinkDeployment {
		d := &v1beta1.FlinkDeployment{}
		if errs = decodeStrict(o.JSON, d); len(errs) == 0 {
			normalizeDeployment(d, ns)
			errs = v.deployment(d)
			if len(errs) == 0 && opts.Check != nil {
				if p := check(d, opts); p != nil {
					errs = append(errs, fieldError{Field: p.Field, Message: p.Message, Fix: p.Fix})
				}
			}
			r.Deployment, spec = d, &d.Spec
		}
	} else if o.Kind == v1beta1.KindFlinkStateSnapshot {
		sn := &v1beta1.FlinkStateSnapshot{}
		if errs = decodeStrict(o.JSON, sn); len(errs) == 0 {
			sn.Namespace, sn.Status = ns, nil
			errs = v.snapshot(sn)
			r.Snapshot, spec = sn, &sn.Spec
		}
	} else {
		j := &v1beta1.FlinkSessionJob{}
		if errs = decodeStrict(o.JSON, j); len(errs) == 0 {
			normalizeSessionJob(j, ns)
			errs = v.sessionJob(j)
			r.SessionJob, spec = j, &j.Spec
		}
	}
	for _, w := range v.warnings {
		warnings = append(warnings, mk(w))
	}
	for _, e := range errs {
		problems = append(problems, mk(e))
	}
	if len(problems) > 0 {
		return key, nil, problems, warnings
	}
	h, err := SpecHash(spec)
	if err != nil {
		return key, nil, []Problem{mk(fieldError{Field: "spec", Message: err.Error()})}, warnings
	}
	r.Hash = h
	return key, r, nil, warnings
}

// setFields returns the paths among fields that the object sets.
func setFields(data []byte, fields []string) []string {
	if len(fields) == 0 {
		return nil
	}
	var obj map[string]any
	if json.Unmarshal(data, &obj) != nil {
		return nil
	}
	var out []string
	for _, f := range fields {
		var cur any = obj
		for _, part := range strings.Split(f, ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				cur = nil
				break
			}
			cur = m[part]
		}
		if cur != nil {
			out = append(out, f)
		}
	}
	return out
}

// readOnlyPaths are fields kubectl or the operator write that are not
// desired state: a spec exported with kubectl keeps working.
var readOnlyPaths = [][]string{{"status"}, {"spec", "podTemplate", "status"}, {"spec", "jobManager", "podTemplate", "status"}, {"spec", "taskManager", "podTemplate", "status"}}

// withoutReadOnly drops readOnlyPaths from an object's JSON.
func withoutReadOnly(data []byte) []byte {
	var obj map[string]any
	if json.Unmarshal(data, &obj) != nil {
		return data
	}
	changed := false
	for _, p := range readOnlyPaths {
		m := obj
		for _, part := range p[:len(p)-1] {
			next, ok := m[part].(map[string]any)
			if !ok {
				m = nil
				break
			}
			m = next
		}
		if _, ok := m[p[len(p)-1]]; ok {
			delete(m, p[len(p)-1])
			changed = true
		}
	}
	if !changed {
		return data
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return data
	}
	return out
}

// check runs opts.Check on a copy of the deployment with the default mode
// applied, as the reconciler will build it.
func check(d *v1beta1.FlinkDeployment, opts Options) *FieldProblem {
	c := *d
	if c.Spec.Mode == "" {
		c.Spec.Mode = opts.DefaultMode
		if c.Spec.Mode == "" {
			c.Spec.Mode = v1beta1.ModeStandalone
		}
	}
	return opts.Check(&c, opts.DefaultConfiguration)
}

// normalizeDeployment applies the namespace default and the operator's
// defaults that decoding does not.
func normalizeDeployment(d *v1beta1.FlinkDeployment, ns string) {
	d.Namespace = ns
	if d.Spec.FlinkConfiguration == nil {
		d.Spec.FlinkConfiguration = v1beta1.FlinkConfiguration{}
	}
	d.Status = nil
}

func normalizeSessionJob(j *v1beta1.FlinkSessionJob, ns string) {
	j.Namespace = ns
	if j.Spec.FlinkConfiguration == nil {
		j.Spec.FlinkConfiguration = v1beta1.FlinkConfiguration{}
	}
	j.Status = nil
}
