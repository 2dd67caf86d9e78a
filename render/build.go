package render

import (
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

// buildMu serialises kustomize builds: kustomize keeps global state (the
// OpenAPI schema) and is not safe to run concurrently in one process.
var buildMu gosync.Mutex

// schemaDirty (guarded by buildMu) is true when the global OpenAPI schema
// may not be kustomize's default: after a build whose kustomizations set
// their own schema, or one that panicked. Resetting costs a re-parse of the
// built-in schema (tens of milliseconds), so it is done only then.
var schemaDirty = true

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
func build(fsys *recordingFS, entry string, customSchema bool) (objs []rawObject, err error) {
	kf, _ := fsys.t.kustomizationFile(entry)
	injected := false
	if kf != "" {
		if b, ok := withOriginAnnotations(fsys, kf); ok {
			fsys.override["/"+kf] = b
			injected = true
		}
	}

	buildMu.Lock()
	defer buildMu.Unlock()
	if schemaDirty || customSchema {
		openapi.ResetOpenAPI()
	}
	schemaDirty = customSchema
	defer func() {
		if r := recover(); r != nil {
			schemaDirty = true
			err = fmt.Errorf("kustomize panicked: %v (at %s)", r, panicSite(debug.Stack()))
		}
	}()

	opts := krusty.MakeDefaultOptions()
	opts.PluginConfig = types.DisabledPluginConfig()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	k := krusty.MakeKustomizer(opts)
	m, err := k.Run(fsys, "/"+entry)
	if err != nil {
		return nil, err
	}
	for _, r := range m.Resources() {
		objs = append(objs, toRaw(r, entry, injected))
	}
	return objs, nil
}

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
