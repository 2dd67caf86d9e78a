package prcomment

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/sync/forge"
)

const (
	stateOpen    = "<!-- flink-gitops:state "
	stateClose   = " -->"
	resultMarker = "<!-- flink-gitops:result -->"
)

// state is what the comment remembers about itself, in a hidden line, so a
// restarted daemon neither plans an unchanged head again nor loses which
// resources a merged pull request changes.
type state struct {
	// Head is the pull request head the plan was made for; Records the
	// fingerprint of the records it was planned against.
	Head    string `json:"head"`
	Records string `json:"records"`
	// Planned maps each resource the plan changes (Key) to its action.
	Planned map[string]string `json:"planned,omitempty"`
	// Merge is the merge commit whose result was written ("" before).
	Merge string `json:"merge,omitempty"`
}

func encodeState(s state) string {
	b, _ := json.Marshal(s) // a map and strings: cannot fail
	return stateOpen + string(b) + stateClose
}

// parseState reads the hidden state line of a comment body.
func parseState(body string) (state, bool) {
	i := strings.Index(body, stateOpen)
	if i < 0 {
		return state{}, false
	}
	rest := body[i+len(stateOpen):]
	j := strings.Index(rest, stateClose)
	if j < 0 {
		return state{}, false
	}
	var s state
	if err := json.Unmarshal([]byte(rest[:j]), &s); err != nil {
		return state{}, false
	}
	return s, true
}

// withState replaces the hidden state line of body.
func withState(body string, s state) string {
	i := strings.Index(body, stateOpen)
	if i < 0 {
		return body
	}
	j := strings.Index(body[i:], stateClose)
	if j < 0 {
		return body
	}
	return body[:i] + encodeState(s) + body[i+j+len(stateClose):]
}

// Links says where a comment points people for details.
type Links struct {
	// StatusBranch is the status branch's name.
	StatusBranch string
	// File returns a web link to a file on the status branch ("" when
	// unknown; then the path is shown as code).
	File func(path string) string
}

func (l Links) file(path string) string {
	if l.File != nil {
		if u := l.File(path); u != "" {
			return fmt.Sprintf("[%s](<%s>)", code(path), strings.NewReplacer("<", "%3C", ">", "%3E", " ", "%20", "\n", "").Replace(u))
		}
	}
	return fmt.Sprintf("%s on branch %s", code(path), code(l.StatusBranch))
}

// Plan is one pull request head's plan: what FormatPlan shows.
type Plan struct {
	Number int
	Head   string
	// Base is the watched branch, BaseCommit its commit the daemon last
	// rendered (the records reflect it).
	Base, BaseCommit string
	Resources        []lifecycle.Planned
	// Problems are the render's validation problems; Warnings its notes.
	Problems []render.Problem
	Warnings []render.Problem
}

// FormatPlan renders the plan comment: the marker, the hidden state, a
// summary table and one section per resource (action, warnings, folded
// spec diff), validation errors with their file and field, and a pointer
// to the status branch. It is cut to forge.MaxCommentChars: first the
// diffs are dropped, then the text is truncated.
func FormatPlan(p Plan, st state, links Links) string {
	body := formatPlan(p, st, links, true)
	if len([]rune(body)) > forge.MaxCommentChars {
		body = formatPlan(p, st, links, false)
	}
	return forge.Fit(body, forge.MaxCommentChars, truncNote(links))
}

func truncNote(l Links) string {
	return fmt.Sprintf("_The comment was cut to GitHub's size limit; each resource's full status is in %s._", l.file("README.md"))
}

func formatPlan(p Plan, st state, links Links, diffs bool) string {
	var b strings.Builder
	b.WriteString(forge.Marker + "\n")
	b.WriteString(encodeState(st) + "\n")
	fmt.Fprintf(&b, "## flink-gitops plan\n\nHead `%s` of #%d, planned against what is deployed from `%s`", short(p.Head), p.Number, p.Base)
	if p.BaseCommit != "" {
		fmt.Fprintf(&b, " (at `%s`)", short(p.BaseCommit))
	}
	b.WriteString(". Nothing changes until the pull request is merged.\n\n")

	invalid := problemsByResource(p.Problems)
	changes := 0
	for _, r := range p.Resources {
		if r.Action.Kind != lifecycle.ActionNone {
			changes++
		}
	}
	fmt.Fprintf(&b, "**%d resource%s, %d to change", len(p.Resources), plural(len(p.Resources)), changes)
	if n := len(invalid); n > 0 {
		fmt.Fprintf(&b, ", %d invalid (left as deployed)", n)
	}
	b.WriteString(".**\n\n")
	if len(p.Resources)+len(invalid) > 0 {
		b.WriteString("| resource | action | notes |\n|---|---|---|\n")
		for _, r := range p.Resources {
			notes := ""
			if n := len(r.Action.Warnings); n > 0 {
				notes = fmt.Sprintf("⚠️ %d warning%s", n, plural(n))
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", resName(r.Kind, r.Namespace, r.Name), actionCell(r.Action), notes)
		}
		for _, k := range sortedKeys(invalid) {
			fmt.Fprintf(&b, "| %s | none: invalid spec | ⚠️ %d validation error%s |\n", text(k), len(invalid[k]), plural(len(invalid[k])))
		}
		b.WriteString("\n")
	}
	for _, r := range p.Resources {
		if r.Action.Kind == lifecycle.ActionNone && len(r.Action.Warnings) == 0 {
			continue
		}
		fmt.Fprintf(&b, "### %s — %s\n\n", resName(r.Kind, r.Namespace, r.Name), r.Action)
		if r.File != "" {
			fmt.Fprintf(&b, "From %s", code(r.File))
			if r.EntryPoint != "" {
				fmt.Fprintf(&b, " (entry point %s)", code(r.EntryPoint))
			}
			b.WriteString(".\n\n")
		}
		if r.Desired == nil {
			b.WriteString("The resource is no longer in Git: it will be deleted.\n\n")
		}
		for _, w := range r.Action.Warnings {
			fmt.Fprintf(&b, "> ⚠️ %s\n", text(w))
		}
		if len(r.Action.Warnings) > 0 {
			b.WriteString("\n")
		}
		if d := r.Action.Diff; !d.Empty() {
			if diffs {
				var lines []string
				for _, c := range d.Changes {
					lines = append(lines, fmt.Sprintf("- %s: %s", diffValue(c.Path), diffValue(c.Old)), fmt.Sprintf("+ %s: %s", diffValue(c.Path), diffValue(c.New)))
				}
				// The fence is longer than any backtick run in the values,
				// so no value can close it (nor the <details> around it).
				fence := codeFence(lines...)
				fmt.Fprintf(&b, "<details><summary>Spec diff: %d change%s (%s)</summary>\n\n%sdiff\n", len(d.Changes), plural(len(d.Changes)), d.Type, fence)
				for _, l := range lines {
					b.WriteString(l + "\n")
				}
				b.WriteString(fence + "\n\n</details>\n\n")
			} else {
				fmt.Fprintf(&b, "Spec diff: %d change%s (%s), left out for size.\n\n", len(d.Changes), plural(len(d.Changes)), d.Type)
			}
		}
	}
	if len(p.Problems) > 0 {
		b.WriteString("### ⚠️ Validation errors\n\nInvalid resources are not applied: what is deployed stays as it is.\n\n")
		for _, pr := range p.Problems {
			fmt.Fprintf(&b, "- %s\n", problemLine(pr))
		}
		b.WriteString("\n")
	}
	if len(p.Warnings) > 0 {
		b.WriteString("<details><summary>Render notes</summary>\n\n")
		for _, w := range p.Warnings {
			fmt.Fprintf(&b, "- %s\n", problemLine(w))
		}
		b.WriteString("\n</details>\n\n")
	}
	fmt.Fprintf(&b, "<sub>Updated on every push to the pull request; after the merge the result is added here. Live status: %s.</sub>\n", links.file("README.md"))
	return b.String()
}

// Outcome is one resource's result after the merge.
type Outcome struct {
	Key    string
	Action string
	// Done is false for an error or an operation still in flight.
	Done bool
	// State is e.g. "STABLE, job RUNNING"; Savepoint the savepoint the
	// operation took or restored from; Err what went wrong.
	State, Savepoint, Err string
	// Pending is true while an operation is still in flight.
	Pending bool
}

// FormatResult returns body with its result section set to outcomes of
// merge commit merge, and the hidden state updated.
func FormatResult(body string, st state, merge string, outcomes []Outcome, links Links) string {
	if i := strings.Index(body, resultMarker); i >= 0 {
		body = body[:i]
	}
	body = strings.TrimRight(withState(body, st), "\n") + "\n\n"
	var b strings.Builder
	b.WriteString(resultMarker + "\n")
	fmt.Fprintf(&b, "## Result\n\nMerged as `%s` and reconciled.\n\n", short(merge))
	if len(outcomes) == 0 {
		b.WriteString("Nothing to change.\n")
	} else {
		b.WriteString("| resource | action | result |\n|---|---|---|\n")
		for _, o := range outcomes {
			kind, ns, name := splitKey(o.Key)
			fmt.Fprintf(&b, "| %s | %s | %s |\n", resName(kind, ns, name), text(o.Action), outcomeCell(o))
		}
		b.WriteString("\nDetails per resource on the status branch: ")
		for i, o := range outcomes {
			if i > 0 {
				b.WriteString(", ")
			}
			kind, ns, name := splitKey(o.Key)
			b.WriteString(links.file(lifecycle.StatusPath(kind, ns, name)))
		}
		b.WriteString(".\n")
	}
	return forge.Fit(body+b.String(), forge.MaxCommentChars, truncNote(links))
}

func outcomeCell(o Outcome) string {
	switch {
	case o.Pending:
		s := "⏳ still in progress"
		if o.State != "" {
			s += ": " + text(o.State)
		}
		return s
	case !o.Done:
		return "❌ " + text(o.Err)
	}
	s := "✅ done"
	if o.State != "" {
		s += ": " + text(o.State)
	}
	if o.Savepoint != "" {
		s += "; savepoint " + cellCode(o.Savepoint)
	}
	return s
}

func actionCell(a lifecycle.Action) string {
	if a.Kind == lifecycle.ActionNone {
		return "none"
	}
	return "**" + text(a.String()) + "**"
}

func problemLine(p render.Problem) string {
	var where []string
	if p.File != "" {
		where = append(where, code(p.File))
	} else if p.EntryPoint != "" {
		where = append(where, "entry point "+code(p.EntryPoint))
	}
	if p.Field != "" {
		where = append(where, code(p.Field))
	}
	s := ""
	if p.Resource != "" {
		s = text(p.Resource) + ": "
	}
	if len(where) > 0 {
		s += strings.Join(where, " ") + ": "
	}
	s += text(p.Message)
	if p.Fix != "" {
		s += " — fix: " + text(p.Fix)
	}
	return s
}

// problemsByResource groups problems by "Kind namespace/name" (as shown).
func problemsByResource(ps []render.Problem) map[string][]render.Problem {
	out := map[string][]render.Problem{}
	for _, p := range ps {
		if p.Resource != "" {
			out[p.Resource] = append(out[p.Resource], p)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// resName is a resource as a reader names it: "Kind namespace/name".
func resName(kind, ns, name string) string {
	return text(render.Key{Kind: kind, Namespace: ns, Name: name}.String())
}

func splitKey(key string) (kind, ns, name string) {
	p := strings.SplitN(key, "/", 3)
	for len(p) < 3 {
		p = append(p, "")
	}
	return p[0], p[1], p[2]
}

// cellCode is code(s) for a table cell, whose pipes GFM splits on even in
// code spans.
func cellCode(s string) string {
	return strings.ReplaceAll(code(s), "|", "\\|")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
