package config

import (
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode"
)

// keyKind is what a configuration key holds, as far as loading cares.
type keyKind int

const (
	kindString keyKind = iota
	kindBool
	kindInt
	kindFloat
	kindDuration
	kindStringList
	kindStringMap // a free-form map: every key below it is accepted
)

// schema maps every leaf key path ("git.pollInterval") to its kind. It is
// derived once from the koanf tags of Config, so a new field needs no extra
// bookkeeping here.
var schema = func() map[string]keyKind {
	m := map[string]keyKind{}
	walkKeys(reflect.TypeOf(Config{}), "", m)
	return m
}()

var durationType = reflect.TypeOf(time.Duration(0))

func walkKeys(t reflect.Type, prefix string, m map[string]keyKind) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("koanf")
		if tag == "" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		switch {
		case f.Type == durationType:
			m[key] = kindDuration
		case f.Type.Kind() == reflect.Struct:
			walkKeys(f.Type, key, m)
		case f.Type.Kind() == reflect.Map:
			m[key] = kindStringMap
		case f.Type.Kind() == reflect.Slice:
			m[key] = kindStringList
		case f.Type.Kind() == reflect.Bool:
			m[key] = kindBool
		case f.Type.Kind() == reflect.Int, f.Type.Kind() == reflect.Int64:
			m[key] = kindInt
		case f.Type.Kind() == reflect.Float64:
			m[key] = kindFloat
		default:
			m[key] = kindString
		}
	}
}

// lookupKey returns the schema key that key is, or lies below (for free-form
// maps), and its kind.
func lookupKey(key string) (string, keyKind, bool) {
	if k, ok := schema[key]; ok {
		return key, k, true
	}
	for p, k := range schema {
		if k == kindStringMap && strings.HasPrefix(key, p+".") {
			return p, k, true
		}
	}
	return "", 0, false
}

// Keys returns every leaf key path, sorted; used by docs and --help.
func Keys() []string {
	out := make([]string, 0, len(schema))
	for k := range schema {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// EnvPrefix is the prefix of environment variables that set keys.
const EnvPrefix = "FLINK_GITOPS_"

// EnvName returns the environment variable that sets key:
// "git.pollInterval" → "FLINK_GITOPS_GIT_POLL_INTERVAL".
func EnvName(key string) string {
	var b strings.Builder
	b.WriteString(EnvPrefix)
	rs := []rune(key)
	for i, r := range rs {
		if r == '.' {
			b.WriteByte('_')
			continue
		}
		if unicode.IsUpper(r) && i > 0 && rs[i-1] != '.' {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			// A word starts at lower→Upper ("pollInterval") and at the last
			// capital of an acronym followed by lower ("restURLTemplate").
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// envKeys maps environment variable names to key paths. Free-form maps are
// left out: they are set in the file.
var envKeys = func() map[string]string {
	m := map[string]string{}
	for k, kind := range schema {
		if kind != kindStringMap {
			m[EnvName(k)] = k
		}
	}
	return m
}()

// suggest returns the known key closest to an unknown one, if any is close.
func suggest(key string) string {
	best, bestD := "", 4
	for k := range schema {
		if d := editDistance(strings.ToLower(key), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
