package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// typeName names the type of a key's Default for error messages.
func typeName(k Key) string {
	switch k.Default.(type) {
	case []string:
		return "list of strings"
	case time.Duration:
		return "duration"
	case nil:
		return "string"
	}
	return reflect.TypeOf(k.Default).String()
}

// Parse converts a textual value (from a .properties file, the environment, a
// --set flag or a runtime update) to the type of k's Default. Strings are kept as
// they are; numbers are decimal; booleans are true/false (any case, or 1/0);
// durations are Go durations ("500ms", "5s"); lists are comma-separated.
func Parse(value string, k Key) (any, error) {
	switch k.Default.(type) {
	case int:
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, strconv.IntSize)
		if err != nil {
			return nil, numError(err)
		}
		return int(n), nil
	case int64:
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return nil, numError(err)
		}
		return n, nil
	case bool:
		switch strings.ToLower(strings.TrimSpace(value)) {
		case "true", "1":
			return true, nil
		case "false", "0":
			return false, nil
		}
		return nil, fmt.Errorf("want true or false")
	case float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, numError(err)
		}
		return f, nil
	case []string:
		return splitList(value), nil
	case time.Duration:
		s := strings.TrimSpace(value)
		if s == "0" {
			return time.Duration(0), nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("want a duration with a unit, like 500ms or 5s")
		}
		return d, nil
	case string, nil:
		return value, nil
	}
	// Other numeric kinds (int32, uint16, float32, ...), kept in the Default's
	// exact type so that the range is checked here rather than on Unmarshal.
	t := reflect.TypeOf(k.Default)
	s := strings.TrimSpace(value)
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, t.Bits())
		if err != nil {
			return nil, numError(err)
		}
		return reflect.ValueOf(n).Convert(t).Interface(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, t.Bits())
		if err != nil {
			return nil, numError(err)
		}
		return reflect.ValueOf(n).Convert(t).Interface(), nil
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, t.Bits())
		if err != nil {
			return nil, numError(err)
		}
		return reflect.ValueOf(f).Convert(t).Interface(), nil
	case reflect.String:
		return reflect.ValueOf(value).Convert(t).Interface(), nil
	}
	return nil, fmt.Errorf("keys of type %s are not supported", t)
}

func numError(err error) error {
	if ne, ok := err.(*strconv.NumError); ok {
		if ne.Err == strconv.ErrRange {
			return fmt.Errorf("out of range")
		}
		return fmt.Errorf("not a number")
	}
	return err
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	out := []string{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// coerce converts a value decoded from YAML (string, int, float64, bool, list,
// ...) to the type of k's Default.
func coerce(v any, k Key) (any, error) {
	if s, ok := v.(string); ok {
		return Parse(s, k)
	}
	switch k.Default.(type) {
	case int:
		n, ok := integral(v)
		if !ok || n < math.MinInt || n > math.MaxInt {
			return nil, fmt.Errorf("want an integer")
		}
		return int(n), nil
	case int64:
		n, ok := integral(v)
		if !ok {
			return nil, fmt.Errorf("want an integer")
		}
		return n, nil
	case bool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, fmt.Errorf("want true or false")
	case float64:
		switch x := v.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		}
		if n, ok := integral(v); ok {
			return float64(n), nil
		}
		return nil, fmt.Errorf("want a number")
	case []string:
		switch x := v.(type) {
		case []string:
			return append([]string{}, x...), nil
		case []any:
			out := make([]string, 0, len(x))
			for _, e := range x {
				switch e.(type) {
				case map[string]any, []any, nil:
					return nil, fmt.Errorf("want a list of scalars")
				}
				out = append(out, fmt.Sprint(e))
			}
			return out, nil
		}
		return nil, fmt.Errorf("want a list or a comma-separated string")
	case time.Duration:
		if d, ok := v.(time.Duration); ok {
			return d, nil
		}
		if n, ok := integral(v); ok && n == 0 {
			return time.Duration(0), nil
		}
		return nil, fmt.Errorf("want a duration with a unit, like 500ms or 5s")
	case string, nil:
		switch v.(type) {
		case map[string]any, []any, nil:
			return nil, fmt.Errorf("want a string")
		}
		// A YAML scalar such as 8 or true written where a string is wanted.
		return fmt.Sprint(v), nil
	}
	// Other numeric kinds: go through the text form, which checks the range.
	if n, ok := integral(v); ok {
		return Parse(strconv.FormatInt(n, 10), k)
	}
	switch x := v.(type) {
	case float64:
		return Parse(strconv.FormatFloat(x, 'g', -1, 64), k)
	case bool:
		return nil, fmt.Errorf("want a number")
	}
	return nil, fmt.Errorf("want a %s", typeName(k))
}

// integral returns v as an int64 if it is an integer (or a float with no
// fractional part, as some YAML/JSON decoders produce).
func integral(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint:
		return int64(x), x <= math.MaxInt64
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case float64:
		if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

// formatValue renders a value the way Parse reads it back.
func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []string:
		return strings.Join(x, ",")
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	case time.Duration:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	default:
		return fmt.Sprint(v)
	}
}
