package render

import (
	"fmt"
	"path"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/types"
)

// kustomizationNames are the file names kustomize recognises, in its order.
var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// kustomizationFile returns the kustomization file in dir, if any.
func (t *tree) kustomizationFile(dir string) (string, bool) {
	for _, n := range kustomizationNames {
		p := path.Join(dir, n)
		if t.isFile(p) {
			return p, true
		}
	}
	return "", false
}

// precheck walks the kustomizations reachable from an entry point and
// rejects, before kustomize runs, every reference that could make a build
// read outside the snapshot: remote resources (URLs, git specs), absolute
// paths, paths leaving the repository and resources that do not exist
// (kustomize would try a missing local resource as a remote one).
//
// customSchema reports whether any of the kustomizations sets its own
// OpenAPI schema (the `openapi` field), which changes kustomize's global
// schema for the build.
//
// warnings are kustomize's deprecation notices for the kustomizations
// (which kustomize itself only prints to stderr).
func precheck(t *tree, entry string, opts Options) (problems, warnings []Problem, customSchema bool) {
	c := &checker{t: t, entry: entry, seen: map[string]bool{}, budget: newBudget(opts), reported: map[string]bool{}}
	kf, ok := t.kustomizationFile(entry)
	if !ok {
		return []Problem{{EntryPoint: entry, File: entry, Message: fmt.Sprintf("no kustomization.yaml in %s", displayDir(entry)),
			Fix: "add a kustomization.yaml to the entry point directory, or remove it from the configured entry points"}}, nil, false
	}
	c.kustomization(kf)
	return c.problems, c.warnings, c.customSchema
}

func displayDir(d string) string {
	if d == "" || d == "." {
		return "the repository root"
	}
	return d + "/"
}

type checker struct {
	warnings     []Problem
	customSchema bool
	t            *tree
	entry        string
	seen         map[string]bool
	problems     []Problem
	budget       *budget
	// reported holds "file\x00field" of every field already refused, so
	// the generic URL sweep does not report it twice.
	reported map[string]bool
	// overBudget is set once the entry point's budget is used up: one
	// problem is enough, and nothing more is read.
	overBudget bool
}

func (c *checker) add(file, field, msg, fix string) {
	c.reported[file+"\x00"+field] = true
	c.problems = append(c.problems, Problem{EntryPoint: c.entry, File: file, Field: field, Message: msg, Fix: fix})
}

func (c *checker) kustomization(file string) {
	if c.seen[file] {
		return
	}
	c.seen[file] = true
	if why, bad := c.t.bad[file]; bad {
		c.add(file, "", why, badFix)
		return
	}
	b, err := c.t.src.ReadFile(c.t.files[file])
	if err != nil {
		c.add(file, "", fmt.Sprintf("read %s: %v", file, err), "")
		return
	}
	if _, ok := c.measureFile(file, "", file, b); !ok {
		return
	}
	var k map[string]any
	if err := yaml.Unmarshal(b, &k); err != nil {
		c.add(file, "", "invalid YAML: "+err.Error(), "fix the YAML syntax (duplicate keys are not allowed)")
		return
	}
	var kust types.Kustomization
	if kust.Unmarshal(b) == nil {
		if msgs := kust.CheckDeprecatedFields(); msgs != nil {
			for _, m := range *msgs {
				c.warnings = append(c.warnings, Problem{EntryPoint: c.entry, File: file, Message: strings.TrimPrefix(m, "# Warning: "),
					Fix: "run `kustomize edit fix` in " + displayDir(path.Dir(file))})
			}
		}
	}
	dir := path.Dir(file)
	for _, field := range []string{"resources", "bases", "components"} {
		for i, ref := range stringList(k[field]) {
			c.resourceRef(file, dir, fmt.Sprintf("%s[%d]", field, i), ref)
		}
	}
	for _, field := range []string{"crds", "configurations", "generators", "transformers", "validators", "patchesStrategicMerge"} {
		for i, ref := range stringList(k[field]) {
			f := fmt.Sprintf("%s[%d]", field, i)
			if strings.ContainsAny(ref, "\n:") && !isURL(ref) || strings.Contains(ref, "\n") {
				// Inline YAML, not a path: Kustomize parses it, and a
				// transformer or generator config may name files itself.
				if c.measure(file, f, "inline YAML at "+f, []byte(ref)) && field != "patchesStrategicMerge" {
					c.sweepInline(file, f, ref)
				}
				continue
			}
			c.yamlRef(file, dir, f, ref, field == "generators" || field == "transformers" || field == "validators")
		}
	}
	for _, field := range []string{"patches", "patchesJson6902", "replacements"} {
		for i, item := range list(k[field]) {
			if m, ok := item.(map[string]any); ok {
				if p, ok := m["path"].(string); ok {
					c.yamlRef(file, dir, fmt.Sprintf("%s[%d].path", field, i), p, false)
				}
				if p, ok := m["patch"].(string); ok {
					f := fmt.Sprintf("%s[%d].patch", field, i)
					c.measure(file, f, "the inline patch at "+f, []byte(p))
				}
			}
		}
	}
	if _, ok := k["openapi"]; ok {
		c.customSchema = true
	}
	if m, ok := k["openapi"].(map[string]any); ok {
		if p, ok := m["path"].(string); ok {
			c.yamlRef(file, dir, "openapi.path", p, false)
		}
	}
	for _, field := range []string{"configMapGenerator", "secretGenerator"} {
		for i, item := range list(k[field]) {
			m, ok := item.(map[string]any)
			if !ok {
				continue
			}
			for j, f := range stringList(m["files"]) {
				if _, p, ok := strings.Cut(f, "="); ok {
					f = p
				}
				c.dataRef(file, dir, fmt.Sprintf("%s[%d].files[%d]", field, i, j), f)
			}
			for j, f := range stringList(m["envs"]) {
				c.dataRef(file, dir, fmt.Sprintf("%s[%d].envs[%d]", field, i, j), f)
			}
			if f, ok := m["env"].(string); ok && f != "" {
				c.dataRef(file, dir, fmt.Sprintf("%s[%d].env", field, i), f)
			}
		}
	}
	if _, ok := k["helmCharts"]; ok {
		c.add(file, "helmCharts", "Helm charts are not supported: builds read only the repository snapshot and run no programs",
			"render the chart with `helm template` and commit the output, or vendor it and refer to its files")
	}
	c.sweepKustomization(file)
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func stringList(v any) []string {
	var out []string
	for _, e := range list(v) {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// looksRemote reports whether ref is a URL or a kustomize remote (git) spec.
func looksRemote(ref string) bool {
	if strings.Contains(ref, "://") || strings.HasPrefix(ref, "git@") || strings.HasPrefix(ref, "git::") ||
		strings.HasPrefix(ref, "ssh:") || strings.HasPrefix(ref, "file:") {
		return true
	}
	for _, q := range []string{"?ref=", "?version=", "?timeout=", "?submodules=", "//"} {
		if strings.Contains(ref, q) {
			return true
		}
	}
	first, _, _ := strings.Cut(ref, "/")
	return strings.Contains(first, ".") && first != "." && first != ".." && strings.Contains(ref, "/")
}

// kustomizeReadsAsRepo reports whether kustomize's loader would treat ref
// as a git repository to clone rather than a path: a "git::" prefix, an
// ssh, https, http or file URL, a user@ prefix (SCP style), or a github.com
// path — compared without case, as kustomize does. It errs on the side of
// "remote" (kustomize also needs a parseable path after the host).
func kustomizeReadsAsRepo(ref string) bool {
	l := strings.ToLower(ref)
	l = strings.TrimPrefix(l, "git::")
	for _, p := range []string{"ssh://", "https://", "http://", "file://", "github.com/", "github.com:"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return strings.Contains(l, "@")
}

// safeJoin resolves ref against dir, reporting absolute paths and paths that
// leave the repository.
func (c *checker) safeJoin(file, dir, field, ref string) (string, bool) {
	if strings.HasPrefix(ref, "/") || (len(ref) > 1 && ref[1] == ':') {
		c.add(file, field, fmt.Sprintf("absolute path %q is not allowed", ref),
			fmt.Sprintf("use a path relative to %s", displayDir(dir)))
		return "", false
	}
	p := path.Join(dir, ref)
	if p == ".." || strings.HasPrefix(p, "../") {
		c.add(file, field, fmt.Sprintf("path %q leaves the repository", ref),
			"refer only to files inside the repository")
		return "", false
	}
	if p == "." {
		p = ""
	}
	return p, true
}

func (c *checker) resourceRef(file, dir, field, ref string) {
	if ref == "" {
		c.add(file, field, "empty resource path", "remove the empty entry")
		return
	}
	local := !strings.Contains(ref, "://") && !strings.HasPrefix(ref, "git@") && !strings.HasPrefix(ref, "git::")
	// Kustomize asks "is this a git repository?" before "is this a local
	// directory?", so a directory of the repository named like a remote
	// (github.com/org/repo, user@host/…) would make it run git: refuse
	// every reference it would read as one, whether or not it exists here.
	if local && !kustomizeReadsAsRepo(ref) {
		if p, ok := c.safeJoin(file, dir, field, ref); ok {
			switch {
			case c.t.isDir(p):
				if kf, ok := c.t.kustomizationFile(p); ok {
					c.kustomization(kf)
				}
				return
			case c.t.isFile(p):
				if why, bad := c.t.bad[p]; bad {
					c.add(file, field, why, badFix)
					return
				}
				c.resourceFile(file, field, p)
				return
			}
		} else {
			return
		}
	}
	if local {
		// Only a lookup: whatever else is wrong with ref, it is refused once,
		// below, as a remote.
		if p := path.Join(dir, ref); c.t.isDir(p) || c.t.isFile(p) {
			c.add(file, field, fmt.Sprintf("%q is in the repository, but kustomize reads a path of this form as a git repository to clone", ref),
				"rename the directory (a path starting with github.com/ or holding @ is a remote to kustomize) and refer to it by the new name")
			return
		}
	}
	if looksRemote(ref) {
		c.add(file, field, fmt.Sprintf("remote resource %q is not allowed: builds read only the repository snapshot, never the network", ref),
			"vendor the remote base into the repository and refer to it by a relative path")
		return
	}
	c.add(file, field, fmt.Sprintf("resource %q does not exist in the repository", ref),
		"add the file or directory to the repository, or fix the path")
}

// fileRef checks a reference to a file and returns its repository path
// when the file can be read.
func (c *checker) fileRef(file, dir, field, ref string) (string, bool) {
	if isURL(ref) {
		c.add(file, field, fmt.Sprintf("remote file %q is not allowed: builds read only the repository snapshot, never the network", ref),
			"copy the file into the repository and refer to it by a relative path")
		return "", false
	}
	p, ok := c.safeJoin(file, dir, field, ref)
	if !ok {
		return "", false
	}
	if why, bad := c.t.bad[p]; bad {
		c.add(file, field, why, badFix)
		return "", false
	}
	_, isFile := c.t.files[p]
	return p, isFile
}

const badFix = "keep every file an entry point reads inside the repository (not behind a symlink that leaves it), under the size limit, and named with letters, digits and - _ . : only"
