package flinktb

import (
	"bufio"
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed log4j-console.properties
var log4jConsole []byte

// Log4jFileName is the logging configuration flink-console.sh points the JVM at.
const Log4jFileName = "log4j-console.properties"

// ConfigFileName is the Flink configuration file a version reads from its
// config dir: config.yaml for 2.x, flink-conf.yaml for 1.x (1.19 and 1.20 also
// read config.yaml and prefer it when present).
func ConfigFileName(version string) string {
	if major(version) >= 2 {
		return "config.yaml"
	}
	return "flink-conf.yaml"
}

// WriteConfig writes conf as the Flink configuration of version into dir
// (ConfigFileName: flat "key: value" lines, which both the legacy 1.x parser and
// 2.x's standard YAML accept) plus log4j-console.properties. A stale config.yaml
// is removed for 1.x, because 1.20 would prefer it over flink-conf.yaml.
func WriteConfig(dir, version string, conf map[string]string) error {
	if major(version) == 0 {
		return fmt.Errorf("write flink config: version %q: want 1.x or 2.x", version)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write flink config: %w", err)
	}
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("# Written by the flink-gitops test bed (flinktb.WriteConfig).\n")
	for _, k := range keys {
		v := conf[k]
		if strings.ContainsAny(k+v, "\n\r") || strings.TrimSpace(k) != k || k == "" {
			return fmt.Errorf("write flink config: key %q or its value has a line break or blank edges", k)
		}
		if major(version) >= 2 {
			v = yamlScalar(v)
		}
		fmt.Fprintf(&b, "%s: %s\n", k, v)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFileName(version)), b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write flink config: %w", err)
	}
	if major(version) == 1 {
		if err := os.Remove(filepath.Join(dir, "config.yaml")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("write flink config: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, Log4jFileName), log4jConsole, 0o644); err != nil {
		return fmt.Errorf("write flink config: %w", err)
	}
	return nil
}

// yamlScalar renders v as a YAML scalar that reads back as the same text:
// plain when that is safe, quoted otherwise (e.g. "a: b", "#x", "'q'").
func yamlScalar(v string) string {
	var m map[string]any
	if err := yaml.Unmarshal([]byte("k: "+v), &m); err == nil {
		switch back := m["k"].(type) {
		case string, int, int64, float64, bool:
			// Plain numbers and booleans are fine: Flink converts YAML types.
			if fmt.Sprint(back) == v {
				return v
			}
		}
	}
	out, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%q", v)
	}
	return strings.TrimSuffix(string(out), "\n")
}

// ReadConfig reads the Flink configuration in dir as Flink of version would:
// 2.x reads config.yaml (standard YAML, nested keys are flattened with dots);
// 1.x reads config.yaml when present, else flink-conf.yaml with the legacy
// line parser ("key: value", '#' starts a comment). A missing file is an
// empty configuration.
func ReadConfig(dir, version string) (map[string]string, error) {
	std := filepath.Join(dir, "config.yaml")
	if major(version) >= 2 || fileExists(std) {
		data, err := os.ReadFile(std)
		if errors.Is(err, fs.ErrNotExist) {
			return map[string]string{}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read flink config: %w", err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("read flink config %s: %w", std, err)
		}
		out := map[string]string{}
		flatten("", doc, out)
		return out, nil
	}
	legacy := filepath.Join(dir, "flink-conf.yaml")
	data, err := os.ReadFile(legacy)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read flink config: %w", err)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k != "" && v != "" {
			out[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read flink config %s: %w", legacy, err)
	}
	return out, nil
}

// flatten turns nested YAML maps into Flink's dotted keys; lists become
// Flink's ';'-separated form.
func flatten(prefix string, v any, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, sub := range t {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flatten(key, sub, out)
		}
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = fmt.Sprint(e)
		}
		out[prefix] = strings.Join(parts, ";")
	case nil:
	default:
		out[prefix] = fmt.Sprint(t)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
