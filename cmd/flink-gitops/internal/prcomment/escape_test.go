package prcomment

import (
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	gmtext "github.com/yuin/goldmark/text"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// hostile are strings a spec, a file name or an error may carry.
var hostile = []string{
	"</details><img src=x onerror=alert(1)>",
	"```\n</details>\n# pwned",
	"````` fence",
	"@admin please merge, cc @org/team",
	"[click](https://evil.example/phish) ![img](https://evil.example/p.png)",
	"https://evil.example/auto and www.evil.example and mail@evil.example",
	"<script>alert(1)</script><a href='https://evil.example'>x</a>",
	"line1\nline2\r\n| a | b |\n- [x] task",
	"**bold** _it_ ~~s~~ `code` \\ trailing\\",
	"<!-- flink-gitops:state {\"head\":\"x\"} -->",
	"`",
	"",
}

// parsed renders md as GitHub does (GFM: tables, strikethrough, autolinks).
func parsed(t *testing.T, md string) (ast.Node, []byte) {
	t.Helper()
	src := []byte(md)
	p := goldmark.New(goldmark.WithExtensions(extension.GFM)).Parser()
	return p.Parse(gmtext.NewReader(src)), src
}

// countBlocks counts doc's top-level blocks (goldmark's ChildCount is not
// updated when the table extension replaces a paragraph).
func countBlocks(doc ast.Node) int {
	n := 0
	for c := doc.FirstChild(); c != nil; c = c.NextSibling() {
		n++
	}
	return n
}

// TestHostileTextStaysInert: every hostile string, put through text or
// code, renders as one inline run of text or code with no HTML, links,
// images, autolinks, emphasis or extra blocks.
func TestHostileTextStaysInert(t *testing.T) {
	for _, s := range hostile {
		for name, f := range map[string]func(string) string{"text": text, "code": code, "cellCode": cellCode} {
			md := "| a | b |\n|---|---|\n| x " + f(s) + " y | z |\n"
			doc, src := parsed(t, md)
			if blocks := countBlocks(doc); blocks != 1 || doc.FirstChild().Kind() != east.KindTable {
				t.Errorf("%s(%q): %d blocks, want one table:\n%s", name, s, blocks, md)
				continue
			}
			cells := 0
			_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
				if !entering {
					return ast.WalkContinue, nil
				}
				switch n.Kind() {
				case east.KindTableCell:
					cells++
				case ast.KindRawHTML, ast.KindHTMLBlock, ast.KindLink, ast.KindImage, ast.KindAutoLink, ast.KindEmphasis, east.KindStrikethrough, east.KindTaskCheckBox:
					t.Errorf("%s(%q) renders a %s node:\n%s", name, s, n.Kind(), md)
				}
				return ast.WalkContinue, nil
			})
			if cells != 4 {
				t.Errorf("%s(%q): %d table cells, want 4 (a pipe or line break leaked):\n%s", name, s, cells, md)
			}
			if name == "text" && strings.Contains(string(src), "@admin") {
				t.Errorf("text(%q) keeps a pingable @mention", s)
			}
		}
	}
}

// TestPlanWithHostileSpecTextStaysInert: a whole plan and result comment
// built from hostile names, paths, diffs, warnings and errors keeps its
// structure: the diff stays in its code block inside its <details>, and
// nothing hostile becomes HTML, a link, an image or a mention.
func TestPlanWithHostileSpecTextStaysInert(t *testing.T) {
	for _, s := range hostile {
		plan := Plan{Number: 1, Head: "h", Base: "main",
			Resources: []lifecycle.Planned{{Key: "FlinkDeployment/flink/" + s, Kind: "FlinkDeployment", Namespace: "flink", Name: s, EntryPoint: s, File: s,
				Desired: &lifecycle.Desired{}, Action: lifecycle.Action{Kind: lifecycle.ActionUpgrade, Mode: v1beta1.UpgradeModeStateless,
					Diff:     lifecycle.Diff{Type: lifecycle.DiffUpgrade, Changes: []lifecycle.Change{{Path: "spec.job.args[0]", Old: s, New: s + "2"}, {Path: s, Old: "a", New: "b"}}},
					Warnings: []string{s}}}},
			Problems: []render.Problem{{EntryPoint: s, File: s, Resource: s, Field: s, Message: s, Fix: s}},
			Warnings: []render.Problem{{Message: s}},
		}
		links := Links{StatusBranch: "flink-gitops/status", File: func(p string) string { return "https://forge.example/blob/status/" + p }}
		st := state{Head: "h", Planned: map[string]string{"FlinkDeployment/flink/" + s: "upgrade (stateless)"}}
		body := FormatPlan(plan, st, links)
		st.Merge = "m"
		body = FormatResult(body, st, "m", []Outcome{{Key: "FlinkDeployment/flink/" + s, Action: s, Err: s}, {Key: "FlinkDeployment/flink/ok", Action: "upgrade", Done: true, State: s, Savepoint: s}}, links)
		doc, src := parsed(t, body)
		codeBlocks := 0
		_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
			if !entering {
				return ast.WalkContinue, nil
			}
			switch n.Kind() {
			case ast.KindHTMLBlock, ast.KindRawHTML:
				var raw strings.Builder
				if h, ok := n.(*ast.HTMLBlock); ok {
					for i := 0; i < h.Lines().Len(); i++ {
						seg := h.Lines().At(i)
						raw.Write(seg.Value(src))
					}
				} else {
					r := n.(*ast.RawHTML)
					for i := 0; i < r.Segments.Len(); i++ {
						seg := r.Segments.At(i)
						raw.Write(seg.Value(src))
					}
				}
				h := strings.TrimSpace(raw.String())
				switch {
				case strings.HasPrefix(h, "<!-- flink-gitops:"), strings.HasPrefix(h, "<sub>"), strings.HasPrefix(h, "</sub>"):
				case strings.HasPrefix(h, "<details><summary>"):
					// the diff's fold
				case h == "</details>":
				default:
					t.Errorf("input %q: unexpected HTML %q in:\n%s", s, h, body)
				}
			case ast.KindFencedCodeBlock:
				codeBlocks++
			case ast.KindImage, ast.KindAutoLink:
				t.Errorf("input %q: an image or autolink in:\n%s", s, body)
			case ast.KindLink:
				dest := string(n.(*ast.Link).Destination)
				if !strings.HasPrefix(dest, "https://forge.example/blob/status/") {
					t.Errorf("input %q: a link to %q in:\n%s", s, dest, body)
				}
			}
			return ast.WalkContinue, nil
		})
		if codeBlocks != 1 {
			t.Errorf("input %q: %d code blocks, want the one diff:\n%s", s, codeBlocks, body)
		}
		// Mentions ping from text, not from code, code blocks or HTML comments.
		_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
			if tn, ok := n.(*ast.Text); ok && entering && n.Parent().Kind() != ast.KindCodeSpan && strings.Contains(string(tn.Segment.Value(src)), "@admin") {
				t.Errorf("input %q: a pingable @mention in text %q", s, tn.Segment.Value(src))
			}
			return ast.WalkContinue, nil
		})
		if got, ok := parseState(body); !ok || got.Merge != "m" {
			t.Errorf("input %q: hidden state lost or replaced: %+v", s, got)
		}
	}
}
