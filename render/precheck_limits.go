package render

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// This file holds the precheck's budget and network checks: every YAML
// input of an entry point is measured (aliases expanded) before Kustomize
// parses it, and every string that Kustomize could hand to its loader as a
// URL is refused, including those in inline transformer configs.

// measureFile charges the file at p (read by referrer's field) to the
// entry point's budget; ok is false when it is refused. data, when given,
// is the file's contents (else it is read if not measured yet).
func (c *checker) measureFile(referrer, field, p string, data []byte) (yamlStats, bool) {
	if c.overBudget {
		return yamlStats{}, false
	}
	m, ok := c.t.measures[p]
	if !ok {
		if data == nil {
			b, err := c.t.src.ReadFile(c.t.files[p])
			if err != nil {
				c.add(referrer, field, fmt.Sprintf("read %s: %v", p, err), "")
				return yamlStats{}, false
			}
			data = b
		}
		m = measure(data, c.budget.opts.MaxYAMLNodes)
		c.t.measures[p] = m
	}
	if msg, fix := c.budget.yamlProblem("the file", m, p); msg != "" {
		c.refuse(referrer, field, p, msg, fix)
		return m.st, false
	}
	return m.st, true
}

// measure charges inline YAML of a kustomization to the budget.
func (c *checker) measure(file, field, what string, data []byte) bool {
	if c.overBudget {
		return false
	}
	if msg, fix := c.budget.yamlProblem(what, measure(data, c.budget.opts.MaxYAMLNodes), ""); msg != "" {
		c.refuse(file, field, file, msg, fix)
		return false
	}
	return true
}

// refuse reports a budget problem. A problem with the file itself names
// that file; one with the entry point's total stops the precheck from
// reading more.
func (c *checker) refuse(referrer, field, p, msg, fix string) {
	if strings.HasPrefix(msg, "the entry point") {
		c.overBudget = true
	}
	if p != referrer {
		// Name the offending file; the field says who included it.
		c.add(p, "", msg+" (included by "+referrer+" "+field+")", fix)
		return
	}
	c.add(referrer, field, msg, fix)
}

// resourceFile measures a resource file and counts its objects.
func (c *checker) resourceFile(referrer, field, p string) {
	st, ok := c.measureFile(referrer, field, p, nil)
	if !ok {
		return
	}
	if !c.budget.addObjects(st.docs) {
		c.overBudget = true
		c.add(referrer, field, fmt.Sprintf("the entry point declares more than %d objects, reached at %s", c.budget.opts.MaxObjects, p),
			"split the entry point into several, or raise render.maxObjects in the daemon config")
	}
}

// yamlRef checks a reference to a file Kustomize parses as YAML; sweep asks
// for the file's own URLs to be refused too (transformer, generator and
// validator configs name files themselves).
func (c *checker) yamlRef(referrer, dir, field, ref string, sweep bool) {
	p, ok := c.fileRef(referrer, dir, field, ref)
	if !ok {
		return
	}
	if _, ok := c.measureFile(referrer, field, p, nil); ok && sweep {
		for _, h := range c.t.urlsIn(p, false) {
			c.refuseURL(p, h.field, h.value)
		}
	}
}

// dataRef checks a reference to a file read as data (generator files and
// env files): it counts against the entry point's bytes.
func (c *checker) dataRef(referrer, dir, field, ref string) {
	p, ok := c.fileRef(referrer, dir, field, ref)
	if !ok || c.overBudget {
		return
	}
	if n, ok := c.t.size(p); ok {
		c.budget.bytes += n
		if c.budget.bytes > c.budget.opts.MaxInputBytes {
			c.refuse(referrer, field, p, fmt.Sprintf("the entry point reads more than %d bytes in total; the file goes over it", c.budget.opts.MaxInputBytes),
				"split the entry point, or raise render.maxInputBytes in the daemon config")
		}
	}
}

// sweepKustomization refuses every URL in a kustomization outside the
// fields that never load anything (labels, annotations, literals, inline
// patches); fields the precheck already refused are not reported twice.
func (c *checker) sweepKustomization(file string) {
	for _, h := range c.t.urlsIn(file, true) {
		c.refuseURL(file, h.field, h.value)
	}
}

// urlHit is a one-line string value that names something by URL.
type urlHit struct{ field, value string }

// urlsIn returns the URLs in the YAML file at p outside the fields that
// never load anything (kustomization's, or a transformer or generator
// config's), computed once per render.
func (t *tree) urlsIn(p string, kustomization bool) []urlHit {
	if hits, ok := t.urls[p]; ok {
		return hits
	}
	var hits []urlHit
	if b, err := t.src.ReadFile(t.files[p]); err == nil {
		skip := configNoLoad
		if kustomization {
			skip = kustomizationNoLoad
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc yaml.Node
			if dec.Decode(&doc) != nil {
				break
			}
			walkStrings(&doc, "", skip, func(field, v string) {
				if isURL(v) {
					hits = append(hits, urlHit{field, v})
				}
			})
		}
	}
	t.urls[p] = hits
	return hits
}

// sweepInline refuses URLs in inline transformer or generator YAML.
func (c *checker) sweepInline(file, field, text string) {
	c.sweepDocs(file, field+".", []byte(text))
}

func (c *checker) sweepDocs(file, prefix string, b []byte) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if err == io.EOF || err != nil {
			return
		}
		walkStrings(&doc, "", configNoLoad, func(field, v string) {
			c.refuseURL(file, prefix+field, v)
		})
	}
}

func (c *checker) refuseURL(file, field, v string) {
	if c.reported[file+"\x00"+field] || !isURL(v) {
		return
	}
	c.add(file, field, fmt.Sprintf("URL %q is not allowed: builds read only the repository snapshot, never the network", v),
		"copy what it points to into the repository and refer to it by a relative path")
}

// isURL reports whether a one-line value names something by URL. Any
// scheme counts: Kustomize fetches http(s) itself and hands git specs to
// git.
func isURL(v string) bool {
	return !strings.Contains(v, "\n") && (strings.Contains(v, "://") || strings.HasPrefix(v, "git@") || strings.HasPrefix(v, "git::"))
}

// kustomizationNoLoad lists kustomization fields whose values are never
// loaded: a URL there is data (an annotation, a label, a literal).
func kustomizationNoLoad(field string) bool {
	top, _, _ := strings.Cut(field, ".")
	top, _, _ = strings.Cut(top, "[")
	switch top {
	case "helmCharts", "helmGlobals", "commonAnnotations", "commonLabels", "labels", "buildMetadata", "metadata", "images", "vars", "replicas", "namespace", "namePrefix", "nameSuffix":
		return true
	}
	return strings.HasSuffix(field, ".literals") || strings.Contains(field, ".literals[") ||
		strings.HasSuffix(field, ".patch") || strings.Contains(field, ".options.")
}

// configNoLoad lists the fields of a transformer or generator config that
// are never loaded.
func configNoLoad(field string) bool {
	return field == "metadata" || strings.HasPrefix(field, "metadata.") || strings.HasSuffix(field, ".patch") || field == "patch" ||
		strings.Contains(field, "literals")
}

// walkStrings calls fn for every string scalar under n with its field path
// (a.b[0].c), skipping subtrees where skip(field) is true. Aliases are
// followed; the precheck has bounded their expansion before any walk.
func walkStrings(n *yaml.Node, field string, skip func(string) bool, fn func(field, v string)) {
	if n == nil || (field != "" && skip(field)) {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, k := range n.Content {
			walkStrings(k, field, skip, fn)
		}
	case yaml.AliasNode:
		walkStrings(n.Alias, field, skip, fn)
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			walkStrings(n.Content[i+1], join(field, n.Content[i].Value), skip, fn)
		}
	case yaml.SequenceNode:
		for i, e := range n.Content {
			walkStrings(e, fmt.Sprintf("%s[%d]", field, i), skip, fn)
		}
	case yaml.ScalarNode:
		if n.Tag == "!!str" || n.Tag == "" {
			fn(field, n.Value)
		}
	}
}

// size returns the size of the file at p.
func (t *tree) size(p string) (int64, bool) {
	real, ok := t.files[p]
	if !ok {
		return 0, false
	}
	if s, ok := t.src.(SizeSource); ok {
		if n, ok := s.Size(real); ok {
			return n, true
		}
	}
	b, err := t.src.ReadFile(real)
	return int64(len(b)), err == nil
}
