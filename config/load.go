package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// Sources says where configuration comes from. Later sources override
// earlier ones: defaults < File < Environ < Flags.
type Sources struct {
	// File is a YAML file; empty means none.
	File string
	// Environ is the process environment (os.Environ()); only FLINK_GITOPS_*
	// variables are read. Nil means none.
	Environ []string
	// Set are "key=value" overrides from the command line (--set), applied
	// last.
	Set []string
}

// Problem is one thing wrong with the configuration.
type Problem struct {
	// Source is where the value came from: the file path, "env" or "flag".
	Source string
	// Key is the key path, e.g. "git.pollInterval".
	Key string
	// Message says what is wrong.
	Message string
	// Fix says what to do about it.
	Fix string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Source != "" {
		b.WriteString(p.Source)
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	if p.Fix != "" {
		b.WriteString(" (fix: ")
		b.WriteString(p.Fix)
		b.WriteString(")")
	}
	return b.String()
}

// Error carries every problem found while loading and validating, so a user
// fixes them all in one go.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	if len(lines) == 1 {
		return "invalid configuration: " + lines[0]
	}
	return fmt.Sprintf("invalid configuration (%d problems):\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// Load reads the sources over the defaults, then validates the result. A
// returned *Error lists every problem; any other error means a source could
// not be read at all.
func Load(src Sources) (*Config, error) {
	var probs []Problem
	merged := map[string]any{}

	if src.File != "" {
		if _, err := os.Stat(src.File); err != nil {
			return nil, fmt.Errorf("read config file: %w", err)
		}
		k := koanf.New(".")
		if err := k.Load(file.Provider(src.File), yaml.Parser()); err != nil {
			return nil, &Error{Problems: []Problem{{
				Source:  src.File,
				Message: "not valid YAML: " + strings.TrimPrefix(unwrapAll(err).Error(), "yaml: "),
				Fix:     "correct the YAML syntax at the line shown",
			}}}
		}
		probs = append(probs, apply(merged, k.All(), src.File)...)
	}

	if src.Environ != nil {
		var unknown []Problem
		k := koanf.New(".")
		err := k.Load(env.Provider(".", env.Opt{
			Prefix:      EnvPrefix,
			EnvironFunc: func() []string { return src.Environ },
			TransformFunc: func(name, v string) (string, any) {
				key, ok := envKeys[name]
				if !ok {
					p := Problem{Source: "env", Key: name, Message: "unknown environment variable"}
					if s := suggest(strings.ToLower(strings.TrimPrefix(name, EnvPrefix))); s != "" {
						p.Fix = "did you mean " + EnvName(s) + "?"
					} else {
						p.Fix = "remove it, or see `flink-gitops validate --help` for the variable names"
					}
					unknown = append(unknown, p)
					return "", nil
				}
				return key, v
			},
		}), nil)
		if err != nil {
			return nil, fmt.Errorf("read environment: %w", err)
		}
		probs = append(probs, unknown...)
		probs = append(probs, apply(merged, k.All(), "env")...)
	}

	if len(src.Set) > 0 {
		flat := map[string]any{}
		for _, kv := range src.Set {
			key, val, ok := strings.Cut(kv, "=")
			if !ok || key == "" {
				probs = append(probs, Problem{Source: "flag", Key: kv, Message: "not of the form key=value", Fix: "write --set git.pollInterval=30s"})
				continue
			}
			flat[key] = val
		}
		k := koanf.New(".")
		if err := k.Load(confmap.Provider(flat, "."), nil); err != nil {
			return nil, fmt.Errorf("read flags: %w", err)
		}
		probs = append(probs, apply(merged, k.All(), "flag")...)
	}

	if len(probs) > 0 {
		sortProblems(probs)
		return nil, &Error{Problems: probs}
	}
	cfg, err := build(merged)
	if err != nil {
		return nil, err
	}
	if probs := Validate(cfg); len(probs) > 0 {
		return nil, &Error{Problems: probs}
	}
	return cfg, nil
}

// BindFlags registers the flags that override configuration on fs and
// returns a function producing the --set style overrides they imply.
func BindFlags(fs *pflag.FlagSet) func() []string {
	set := fs.StringArray("set", nil, "override a key: --set git.pollInterval=30s (repeatable; lists are comma separated)")
	logLevel := fs.String("log-level", "", "shorthand for --set log.level=LEVEL")
	kubeconfig := fs.String("kubeconfig", "", "shorthand for --set kubernetes.kubeconfig=PATH")
	return func() []string {
		var out []string
		if fs.Changed("log-level") {
			out = append(out, "log.level="+*logLevel)
		}
		if fs.Changed("kubeconfig") {
			out = append(out, "kubernetes.kubeconfig="+*kubeconfig)
		}
		return append(out, *set...)
	}
}

// apply checks every key of one source and copies the converted values into
// merged, so a later source overrides an earlier one key by key.
func apply(merged map[string]any, flat map[string]any, source string) []Problem {
	var probs []Problem
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		raw := flat[key]
		base, kind, ok := lookupKey(key)
		if !ok {
			p := Problem{Source: source, Key: key, Message: "unknown key"}
			if s := suggest(key); s != "" {
				p.Fix = "did you mean " + s + "?"
			} else {
				p.Fix = "remove it; `flink-gitops validate --help` lists every key"
			}
			probs = append(probs, p)
			continue
		}
		if kind == kindStringMap && key == base {
			// An empty map (`defaultConfiguration: {}`) sets nothing.
			if m, isMap := raw.(map[string]any); isMap && len(m) == 0 || raw == nil {
				continue
			}
			probs = append(probs, Problem{Source: source, Key: key, Message: "must be a map of Flink configuration keys to values", Fix: "write one `key: value` per line below it"})
			continue
		}
		v, err := convert(kind, raw)
		if err != nil {
			probs = append(probs, Problem{Source: source, Key: key, Message: err.Error(), Fix: fixFor(kind)})
			continue
		}
		merged[key] = v
	}
	return probs
}

func convert(kind keyKind, raw any) (any, error) {
	s, isString := raw.(string)
	switch kind {
	case kindString:
		switch raw.(type) {
		case map[string]any, []any:
			return nil, fmt.Errorf("must be a single value, not %s", describe(raw))
		}
		return fmt.Sprint(raw), nil
	case kindStringMap:
		switch v := raw.(type) {
		case map[string]any:
			return nil, fmt.Errorf("must be a value, not a map")
		case []any:
			parts := make([]string, len(v))
			for i, e := range v {
				parts[i] = fmt.Sprint(e)
			}
			return strings.Join(parts, ";"), nil
		case nil:
			return "", nil
		default:
			return fmt.Sprint(v), nil
		}
	case kindBool:
		if b, ok := raw.(bool); ok {
			return b, nil
		}
		if isString {
			if b, err := strconv.ParseBool(s); err == nil {
				return b, nil
			}
		}
		return nil, fmt.Errorf("%s is not a boolean", quote(raw))
	case kindInt:
		switch v := raw.(type) {
		case int:
			return int64(v), nil
		case int64:
			return v, nil
		case float64:
			if v == float64(int64(v)) {
				return int64(v), nil
			}
		case string:
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return n, nil
			}
		}
		return nil, fmt.Errorf("%s is not a whole number", quote(raw))
	case kindFloat:
		switch v := raw.(type) {
		case int:
			return float64(v), nil
		case int64:
			return float64(v), nil
		case float64:
			return v, nil
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return f, nil
			}
		}
		return nil, fmt.Errorf("%s is not a number", quote(raw))
	case kindDuration:
		if isString {
			if d, err := time.ParseDuration(strings.TrimSpace(s)); err == nil {
				return d, nil
			}
		}
		return nil, fmt.Errorf("%s is not a duration", quote(raw))
	case kindStringList:
		switch v := raw.(type) {
		case []any:
			out := make([]string, 0, len(v))
			for _, e := range v {
				switch e.(type) {
				case map[string]any, []any:
					return nil, fmt.Errorf("must be a list of strings, found %s in it", describe(e))
				}
				out = append(out, fmt.Sprint(e))
			}
			return out, nil
		case string:
			if strings.TrimSpace(v) == "" {
				return []string{}, nil
			}
			parts := strings.Split(v, ",")
			for i := range parts {
				parts[i] = strings.TrimSpace(parts[i])
			}
			return parts, nil
		case nil:
			return []string{}, nil
		}
		return nil, fmt.Errorf("must be a list, not %s", describe(raw))
	}
	return nil, fmt.Errorf("unsupported key kind")
}

func fixFor(kind keyKind) string {
	switch kind {
	case kindBool:
		return "write true or false"
	case kindInt:
		return "write a whole number such as 4"
	case kindFloat:
		return "write a number such as 50"
	case kindDuration:
		return "write a Go duration such as 30s, 5m or 1h30m"
	case kindStringList:
		return "write a YAML list, or a comma-separated string in env and flags"
	}
	return "write a single string value"
}

func describe(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a map"
	case []any:
		return "a list"
	}
	return quote(v)
}

func quote(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

// build turns the merged flat map into a Config over the defaults.
func build(merged map[string]any) (*Config, error) {
	cfg := Default()
	plain := map[string]any{}
	flinkDefaults := map[string]string{}
	const fdc = "flink.defaultConfiguration."
	for k, v := range merged {
		if strings.HasPrefix(k, fdc) {
			flinkDefaults[strings.TrimPrefix(k, fdc)] = v.(string)
			continue
		}
		plain[k] = v
	}
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(plain, "."), nil); err != nil {
		return nil, fmt.Errorf("merge configuration: %w", err)
	}
	if err := k.UnmarshalWithConf("", cfg, koanf.UnmarshalConf{Tag: "koanf"}); err != nil {
		return nil, fmt.Errorf("decode configuration: %w", err)
	}
	if len(flinkDefaults) > 0 {
		cfg.Flink.DefaultConfiguration = flinkDefaults
	}
	return cfg, nil
}

func unwrapAll(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

func sortProblems(p []Problem) {
	sort.SliceStable(p, func(i, j int) bool {
		if p[i].Source != p[j].Source {
			return sourceRank(p[i].Source) < sourceRank(p[j].Source)
		}
		return p[i].Key < p[j].Key
	})
}

func sourceRank(s string) int {
	switch s {
	case "env":
		return 1
	case "flag":
		return 2
	case "":
		return 3
	}
	return 0
}
