package forge

import (
	"strings"
	"unicode/utf8"
)

// Fit returns body unchanged when it has at most limit characters;
// otherwise it cuts body at a line boundary, closes the code fences and
// <details> blocks the cut left open (so the rest of the page still
// renders), and appends note (e.g. where the full text is). The result has
// at most limit characters.
func Fit(body string, limit int, note string) string {
	if utf8.RuneCountInString(body) <= limit {
		return body
	}
	note = "\n" + strings.TrimSpace(note) + "\n"
	keep := limit - utf8.RuneCountInString(note)
	for keep > 0 {
		cut := cutRunes(body, keep)
		if i := strings.LastIndexByte(cut, '\n'); i >= 0 {
			cut = cut[:i+1]
		}
		out := cut + closeOpen(cut) + note
		if utf8.RuneCountInString(out) <= limit {
			return out
		}
		keep -= utf8.RuneCountInString(out) - limit
	}
	return cutRunes(note, limit)
}

// cutRunes returns the first n characters of s.
func cutRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// closeOpen returns the markup that closes what text leaves open: a code
// fence, then any <details> blocks.
func closeOpen(text string) string {
	fence, details := false, 0
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "```") {
			fence = !fence
			continue
		}
		if fence {
			continue
		}
		details += strings.Count(t, "<details") - strings.Count(t, "</details>")
	}
	var b strings.Builder
	if fence {
		b.WriteString("```\n")
	}
	for ; details > 0; details-- {
		b.WriteString("</details>\n")
	}
	return b.String()
}
