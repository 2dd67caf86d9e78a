package prcomment

import (
	"strings"
)

// Everything from a spec, a file path or an error that goes into a comment
// is untrusted: it must not add HTML, close a <details> block or a code
// fence, ping people with @mentions, or add links and images. text and
// code make such strings inert.

// wordJoiner is an invisible character that breaks @mentions and autolinks
// (GitHub links "@user", "https://…" and "www.…" in plain text).
const wordJoiner = "\u2060"

// text escapes s for markdown prose that never starts a line (table cells,
// list items after their bullet, headings after their #): one line, every
// inline markdown and HTML character backslash-escaped, mentions and
// autolinks broken.
func text(s string) string {
	s = oneLine(s)
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '[', ']', '#', '!', '|', '<', '>', '~', '&':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '@':
			b.WriteString("@" + wordJoiner)
		default:
			b.WriteRune(r)
		}
	}
	out := b.String()
	// GitHub autolinks "scheme://…" and "www.…" in text.
	out = strings.ReplaceAll(out, "://", ":"+wordJoiner+"//")
	for _, w := range []string{"www.", "WWW.", "Www."} {
		out = strings.ReplaceAll(out, w, w[:3]+wordJoiner+".")
	}
	return out
}

// code returns s as an inline code span: nothing in it is interpreted
// (no HTML, links or mentions). The span's backtick fence is longer than
// any backtick run in s, so s cannot close it.
func code(s string) string {
	s = oneLine(s)
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") || s == "" {
		s = " " + s + " "
	}
	return fence + s + fence
}

// codeFence returns the opening (and closing) fence of a code block that
// holds lines: longer than any backtick run in them.
func codeFence(lines ...string) string {
	n := 3
	for _, l := range lines {
		n = max(n, longestRun(l, '`')+1)
	}
	return strings.Repeat("`", n)
}

// oneLine replaces line breaks and other control characters, which could
// end a table row, a list item or a code span early.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// diffValue shows a spec value on one line of a diff block, line breaks
// written as \n so a value cannot add lines of its own.
func diffValue(s string) string {
	s = strings.ReplaceAll(s, "\r", `\r`)
	return strings.ReplaceAll(s, "\n", `\n`)
}

func longestRun(s string, c byte) int {
	best, cur := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			cur++
			best = max(best, cur)
		} else {
			cur = 0
		}
	}
	return best
}
