package render

import (
	"context"
	"errors"
	"fmt"
	"path"
	"runtime/debug"
	"strings"
	gosync "sync"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// gate orders Kustomize builds around its one piece of global state, the
// OpenAPI schema: builds with the default schema share it and run side by
// side (so a build abandoned after its time limit, still running in the
// background, never holds up the next one, and pull-request renders never
// wait for the watched branch's); a build that needs another schema, or a
// reset after a panic, runs alone.
var gate = newBuildGate()

// buildGate is a reader-preferring read/write lock whose acquisition
// honours a context.
type buildGate struct {
	mu      gosync.Mutex
	shared  int
	alone   bool
	changed chan struct{} // closed and replaced on every release
	// dirty is true when the global OpenAPI schema may not be Kustomize's
	// default: after a build whose kustomizations set their own schema, or
	// one that panicked. Resetting costs a re-parse of the built-in schema
	// (tens of milliseconds), so it is done only then.
	dirty bool
}

func newBuildGate() *buildGate { return &buildGate{changed: make(chan struct{}), dirty: true} }

// acquire waits until a build may run: alone when custom is set or the
// schema is dirty, else beside other default-schema builds. reset tells
// the build to reset the schema first. release records whether the build
// left the schema dirty.
func (g *buildGate) acquire(ctx context.Context, custom bool) (reset bool, release func(dirty bool), err error) {
	for {
		g.mu.Lock()
		exclusive := custom || g.dirty
		if !g.alone && (!exclusive || g.shared == 0) {
			if exclusive {
				g.alone = true
			} else {
				g.shared++
			}
			g.mu.Unlock()
			return exclusive, func(dirty bool) { g.release(exclusive, dirty) }, nil
		}
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false, nil, ctx.Err()
		}
	}
}

func (g *buildGate) release(exclusive, dirty bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if exclusive {
		g.alone = false
		g.dirty = dirty
	} else {
		g.shared--
		g.dirty = g.dirty || dirty
	}
	close(g.changed)
	g.changed = make(chan struct{})
}

const originAnnotation = "config.kubernetes.io/origin"

// rawObject is one object of a build's output, before decoding.
type rawObject struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	// File is the repository path of the file that declared the object
	// (from kustomize's origin annotation), empty if unknown.
	File string
	// JSON is the object as kustomize emitted it (origin annotation removed
	// unless the repository asked for it).
	JSON []byte
	// Err says why the object could not be encoded (e.g. duplicate keys);
	// JSON is empty then.
	Err string
}

// build runs kustomize on one entry point over the recording filesystem and
// returns the objects it emitted. Panics inside kustomize become errors.
// The caller holds the gate; reset says to reset the OpenAPI schema first,
// and dirty says whether the build left it in need of a reset.
func build(fsys *recordingFS, entry string, reset, customSchema bool, maxObjects int) (objs []rawObject, dirty bool, err error) {
	kf, _ := fsys.t.kustomizationFile(entry)
	injected := false
	if kf != "" {
		if b, ok := withOriginAnnotations(fsys, kf); ok {
			fsys.override["/"+kf] = b
			injected = true
		}
	}

	if reset {
		openapi.ResetOpenAPI()
	}
	dirty = customSchema
	defer func() {
		if r := recover(); r != nil {
			dirty = true
			err = fmt.Errorf("kustomize panicked: %v (at %s)", r, panicSite(debug.Stack()))
		}
	}()

	opts := krusty.MakeDefaultOptions()
	opts.PluginConfig = types.DisabledPluginConfig()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	k := krusty.MakeKustomizer(opts)
	m, err := k.Run(fsys, "/"+entry)
	if err != nil {
		return nil, dirty, err
	}
	if n := m.Size(); n > maxObjects {
		return nil, dirty, &limitError{fmt.Sprintf("the entry point produces %d objects, over the limit of %d", n, maxObjects),
			"split the entry point into several, or raise render.maxObjects in the daemon config"}
	}
	for _, r := range m.Resources() {
		objs = append(objs, toRaw(r, entry, injected))
	}
	return objs, dirty, nil
}

// limitError is a build stopped by one of the render budgets.
type limitError struct{ msg, fix string }

func (e *limitError) Error() string { return e.msg }

// withOriginAnnotations returns the kustomization with buildMetadata
// originAnnotations switched on, so each output object says which file it
// came from. ok is false when the file already asks for it or cannot be
// parsed (kustomize then reports the problem itself).
func withOriginAnnotations(fsys *recordingFS, kf string) ([]byte, bool) {
	if _, bad := fsys.t.bad[kf]; bad {
		return nil, false
	}
	b, err := fsys.FileSystem.ReadFile("/" + kf)
	if err != nil {
		return nil, false
	}
	node, err := kyaml.Parse(string(b))
	if err != nil || node.YNode().Kind != kyaml.MappingNode {
		return nil, false
	}
	bm, err := node.Pipe(kyaml.Lookup("buildMetadata"))
	if err != nil {
		return nil, false
	}
	if bm != nil {
		for _, e := range bm.Content() {
			if e.Value == types.OriginAnnotations {
				return nil, false
			}
		}
		bm.YNode().Content = append(bm.YNode().Content, kyaml.NewScalarRNode(types.OriginAnnotations).YNode())
	} else if err := node.PipeE(kyaml.SetField("buildMetadata", kyaml.NewListRNode(types.OriginAnnotations))); err != nil {
		return nil, false
	}
	s, err := node.String()
	if err != nil {
		return nil, false
	}
	return []byte(s), true
}

func toRaw(r *resource.Resource, entry string, injected bool) rawObject {
	o := rawObject{APIVersion: r.GetApiVersion(), Kind: r.GetKind(), Namespace: r.GetNamespace(), Name: r.GetName()}
	if origin, err := r.GetOrigin(); err == nil && origin != nil && origin.Repo == "" && origin.Path != "" {
		o.File = path.Clean(path.Join(entry, origin.Path))
	}
	if injected {
		a := r.GetAnnotations()
		if _, ok := a[originAnnotation]; ok {
			delete(a, originAnnotation)
			if err := r.SetAnnotations(a); err != nil {
				o.Err = fmt.Sprintf("strip origin annotation: %v", err)
				return o
			}
		}
	}
	b, err := r.MarshalJSON()
	if err != nil {
		o.Err = strings.Join(strings.Fields(err.Error()), " ")
		return o
	}
	o.JSON = b
	return o
}

// panicSite returns the first stack frame inside kustomize or kyaml, to
// make a panic report actionable without a whole stack in the message.
func panicSite(stack []byte) string {
	lines := strings.Split(string(stack), "\n")
	for i := 0; i+1 < len(lines); i++ {
		if strings.HasPrefix(lines[i], "sigs.k8s.io/kustomize/") {
			return strings.TrimSpace(lines[i+1])
		}
	}
	return "unknown"
}

// isPoisoned reports whether a build error came from a path the snapshot refused.
func isPoisoned(err error) bool { return errors.Is(err, errPoisoned) }
