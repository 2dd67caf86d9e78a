package v1beta1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// FlinkConfiguration is the flinkConfiguration map with flat keys.
//
// The operator accepts flat keys ("state.checkpoints.dir: ...") and nested
// YAML ("state: {checkpoints.dir: ...}") alike and flattens them with dots;
// lists become semicolon-separated strings and scalars their text. The same
// key given twice (once flat, once nested) is an error here rather than
// "last one wins", because which one wins in the operator depends on map order.
type FlinkConfiguration map[string]string

// UnmarshalJSON accepts a flat or nested object and flattens it.
func (c *FlinkConfiguration) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*c = nil
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return fmt.Errorf("flinkConfiguration must be a map of config keys to values, got %s", jsonKind(raw))
	}
	flat, err := Flatten(m)
	if err != nil {
		return err
	}
	*c = flat
	return nil
}

// Flatten turns a nested configuration map into flat dotted keys, the way
// the operator's ConfigObjectNode.asFlatMap does.
func Flatten(m map[string]any) (FlinkConfiguration, error) {
	out := FlinkConfiguration{}
	if err := flattenInto(out, "", m); err != nil {
		return nil, err
	}
	return out, nil
}

func flattenInto(out FlinkConfiguration, prefix string, m map[string]any) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		switch v := m[k].(type) {
		case map[string]any:
			if err := flattenInto(out, key, v); err != nil {
				return err
			}
		default:
			s, err := scalarText(v)
			if err != nil {
				return fmt.Errorf("flinkConfiguration key %q: %w", key, err)
			}
			if _, dup := out[key]; dup {
				return fmt.Errorf("flinkConfiguration key %q is given twice (once flat, once nested); keep one", key)
			}
			out[key] = s
		}
	}
	return nil
}

// scalarText renders a leaf value as the operator does (Jackson's asText):
// lists are joined with ';'.
func scalarText(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "null", nil
	case string:
		return v, nil
	case bool:
		if v {
			return "true", nil
		}
		return "false", nil
	case json.Number:
		return v.String(), nil
	case float64:
		return fmt.Sprint(v), nil
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			if _, isMap := e.(map[string]any); isMap {
				return "", fmt.Errorf("a list item is a map; only lists of scalars are allowed")
			}
			if _, isList := e.([]any); isList {
				return "", fmt.Errorf("a list item is a list; only lists of scalars are allowed")
			}
			s, err := scalarText(e)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ";"), nil
	default:
		return "", fmt.Errorf("unsupported value of type %T", v)
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case []any:
		return "a list"
	default:
		return fmt.Sprintf("%T", v)
	}
}
