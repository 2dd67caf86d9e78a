package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// fieldError is a problem with one field of one object.
type fieldError struct {
	Field   string
	Message string
	Fix     string
}

var (
	unmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	v1beta1PkgPath  = reflect.TypeOf(v1beta1.FlinkDeployment{}).PkgPath()
	quantityType    = reflect.TypeOf(resource.Quantity{})
	flinkConfType   = reflect.TypeOf(v1beta1.FlinkConfiguration{})
)

// decodeStrict decodes an object's JSON into out (a pointer), first checking
// it against out's type so that every unknown field, wrong type and
// unparsable value (quantities, times) is reported with its path, rather
// than silently dropped or reported as one opaque error.
func decodeStrict(data []byte, out any) []fieldError {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return []fieldError{{Message: "object is not valid JSON: " + err.Error()}}
	}
	var errs []fieldError
	checkSchema(raw, reflect.TypeOf(out).Elem(), "", &errs)
	if len(errs) > 0 {
		return errs
	}
	if err := json.Unmarshal(data, out); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return []fieldError{{Field: te.Field, Message: fmt.Sprintf("expected %s, got a %s", te.Type, te.Value)}}
		}
		return []fieldError{{Message: err.Error()}}
	}
	return nil
}

func join(field, name string) string {
	if field == "" {
		return name
	}
	return field + "." + name
}

func mapKey(field, key string) string {
	if strings.ContainsAny(key, "./[] ") {
		return field + "[" + strconv.Quote(key) + "]"
	}
	return join(field, key)
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// jsonFields returns the JSON names of a struct's fields, following
// embedded structs without a JSON name (encoding/json's inlining).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					if _, dup := out[k]; !dup {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func checkSchema(raw any, t reflect.Type, field string, errs *[]fieldError) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if raw == nil {
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) && (t.Kind() != reflect.Struct || t.PkgPath() != v1beta1PkgPath) {
		b, err := json.Marshal(raw)
		if err == nil {
			err = reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(b)
		}
		if err != nil {
			fe := fieldError{Field: field, Message: fmt.Sprintf("invalid value %s: %v", shortJSON(b), err), Fix: "correct the value"}
			switch t {
			case quantityType:
				fe.Fix = "use a Kubernetes quantity such as 2Gi, 2048Mi, 1 or 500m"
			case flinkConfType:
				fe.Message = err.Error()
				fe.Fix = "write flinkConfiguration as a map of keys to values, each key once (flat or nested)"
			}
			*errs = append(*errs, fe)
		}
		return
	}
	want := func(kind string) {
		*errs = append(*errs, fieldError{Field: field, Message: fmt.Sprintf("expected %s, got %s", kind, describe(raw)),
			Fix: fmt.Sprintf("write %s as %s", field, kind)})
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			want("an object")
			return
		}
		fields := jsonFields(t)
		keys := sortedKeys(m)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				*errs = append(*errs, fieldError{Field: join(field, k), Message: fmt.Sprintf("unknown field %q", k),
					Fix: "remove it or correct its spelling; flink-gitops rejects fields it does not support rather than ignoring them"})
				continue
			}
			checkSchema(m[k], ft, join(field, k), errs)
		}
	case reflect.Map:
		m, ok := raw.(map[string]any)
		if !ok {
			want("an object")
			return
		}
		for _, k := range sortedKeys(m) {
			checkSchema(m[k], t.Elem(), mapKey(field, k), errs)
		}
	case reflect.Slice:
		l, ok := raw.([]any)
		if !ok {
			want("a list")
			return
		}
		for i, e := range l {
			checkSchema(e, t.Elem(), fmt.Sprintf("%s[%d]", field, i), errs)
		}
	case reflect.String:
		if _, ok := raw.(string); !ok {
			want("a string")
		}
	case reflect.Bool:
		if _, ok := raw.(bool); !ok {
			want("a boolean")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := raw.(json.Number)
		if !ok {
			want("an integer")
			return
		}
		if _, err := strconv.ParseInt(n.String(), 10, t.Bits()); err != nil {
			lo, hi := -(int64(1) << (t.Bits() - 1)), int64(1)<<(t.Bits()-1)-1
			*errs = append(*errs, fieldError{Field: field, Message: fmt.Sprintf("expected a whole number that fits %d bits, got %s", t.Bits(), n),
				Fix: fmt.Sprintf("write a whole number from %d to %d", lo, hi)})
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := raw.(json.Number)
		if !ok {
			want("a non-negative integer")
			return
		}
		if _, err := strconv.ParseUint(n.String(), 10, t.Bits()); err != nil {
			*errs = append(*errs, fieldError{Field: field, Message: fmt.Sprintf("expected a non-negative whole number that fits %d bits, got %s", t.Bits(), n),
				Fix: fmt.Sprintf("write a whole number from 0 to %d", uint64(1)<<(t.Bits()-1)*2-1)})
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := raw.(json.Number); !ok {
			want("a number")
		}
	}
}

func shortJSON(b []byte) string {
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
