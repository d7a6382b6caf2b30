// Package metrics writes CloudWatch Embedded Metric Format (EMF) documents: one JSON log
// line that CloudWatch Logs turns into metrics, so no PutMetricData call (and no IAM
// permission for it) is needed. Tests read them back with shared/testworld/emfdoc.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lpmtls/lpmtls/shared/jsonstr"
)

// Metric is one metric of a document.
type Metric struct {
	Name  string
	Unit  string // a CloudWatch unit name, e.g. "Count"; empty means "None"
	Value float64
	// Values, when not empty, replace Value: the member is written as an array, which
	// CloudWatch aggregates as that many samples (percentiles included).
	Values []float64
	// DimensionSets, when not nil, replace the document's for this metric (it is then
	// written under a directive of its own). An empty set publishes it without dimensions.
	DimensionSets [][]string
}

// EMF is one CloudWatch Embedded Metric Format document.
type EMF struct {
	Namespace string
	Timestamp time.Time
	// DimensionSets name the dimensions each metric is published under; every name must
	// be a key of Dimensions. An empty set publishes the metric without dimensions.
	DimensionSets [][]string
	// Dimensions are the dimension values, written as top-level members.
	Dimensions map[string]string
	Metrics    []Metric
	// Properties are extra top-level members: searchable in Logs Insights, not metrics.
	Properties map[string]any
}

// DimensionFunction is in every dimension set of both functions: the function's name
// is unique per stack, so two stacks in one account and region never share a series.
const DimensionFunction = "FunctionName"

// Limits from the EMF specification.
const (
	MaxMetrics       = 100
	MaxDimensionKeys = 30
	MaxValues        = 100
)

var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Write writes d as one JSON line in a single Write call, so it never interleaves with
// other log lines on the same stream.
func (d EMF) Write(w io.Writer) error {
	bp := bufs.Get().(*[]byte)
	b, err := d.AppendJSON((*bp)[:0])
	if err == nil {
		b = append(b, '\n')
		_, err = w.Write(b)
	}
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		bufs.Put(bp)
	}
	return err
}

// MarshalJSON renders the document (see AppendJSON).
func (d EMF) MarshalJSON() ([]byte, error) { return d.AppendJSON(nil) }

// AppendJSON appends the document to dst, refusing one CloudWatch would silently drop:
// the service does not report invalid EMF, the metrics just never appear. It is written
// by hand rather than through a map and encoding/json because the forward function
// writes one per invocation on its warm path.
func (d EMF) AppendJSON(dst []byte) ([]byte, error) {
	if err := d.validate(); err != nil {
		return dst, err
	}
	b := append(dst, '{')
	first := true
	member := func(k string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = jsonstr.Append(b, k)
		b = append(b, ':')
	}
	for k, v := range d.Properties {
		member(k)
		var err error
		if b, err = appendAny(b, v); err != nil {
			return dst, fmt.Errorf("emf: property %q: %w", k, err)
		}
	}
	for k, v := range d.Dimensions {
		member(k)
		b = jsonstr.Append(b, v)
	}
	for _, m := range d.Metrics {
		member(m.Name)
		if len(m.Values) == 0 {
			b = appendFloat(b, m.Value)
			continue
		}
		b = append(b, '[')
		for i, v := range m.Values {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendFloat(b, v)
		}
		b = append(b, ']')
	}
	member("_aws")
	b = append(b, `{"Timestamp":`...)
	b = strconv.AppendInt(b, d.Timestamp.UnixMilli(), 10)
	b = append(b, `,"CloudWatchMetrics":[`...)
	// One directive for the metrics under the document's dimension sets, then one per
	// metric that names its own.
	wrote := false
	directive := func(sets [][]string, only int) {
		if wrote {
			b = append(b, ',')
		}
		wrote = true
		b = append(b, `{"Namespace":`...)
		b = jsonstr.Append(b, d.Namespace)
		b = append(b, `,"Dimensions":[`...)
		for i, set := range sets {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			for j, k := range set {
				if j > 0 {
					b = append(b, ',')
				}
				b = jsonstr.Append(b, k)
			}
			b = append(b, ']')
		}
		b = append(b, `],"Metrics":[`...)
		n := 0
		for i, m := range d.Metrics {
			if only >= 0 && i != only || only < 0 && m.DimensionSets != nil {
				continue
			}
			if n > 0 {
				b = append(b, ',')
			}
			n++
			b = append(b, `{"Name":`...)
			b = jsonstr.Append(b, m.Name)
			if m.Unit != "" {
				b = append(b, `,"Unit":`...)
				b = jsonstr.Append(b, m.Unit)
			}
			b = append(b, '}')
		}
		b = append(b, `]}`...)
	}
	for _, m := range d.Metrics {
		if m.DimensionSets == nil {
			directive(d.DimensionSets, -1)
			break
		}
	}
	for i, m := range d.Metrics {
		if m.DimensionSets != nil {
			directive(m.DimensionSets, i)
		}
	}
	b = append(b, "]}}"...)
	return b, nil
}

func (d EMF) validate() error {
	if d.Namespace == "" {
		return errors.New("emf: namespace is empty")
	}
	if len(d.Metrics) == 0 || len(d.Metrics) > MaxMetrics {
		return fmt.Errorf("emf: need 1 to %d metrics, got %d", MaxMetrics, len(d.Metrics))
	}
	if _, ok := d.Properties["_aws"]; ok {
		return errors.New("emf: _aws is reserved")
	}
	if _, ok := d.Dimensions["_aws"]; ok {
		return errors.New("emf: _aws is reserved")
	}
	for k := range d.Dimensions {
		if _, dup := d.Properties[k]; dup {
			return fmt.Errorf("emf: %q is both a dimension and a property", k)
		}
	}
	checkSets := func(sets [][]string) error {
		for _, set := range sets {
			if len(set) > MaxDimensionKeys {
				return fmt.Errorf("emf: a dimension set has %d keys, at most %d", len(set), MaxDimensionKeys)
			}
			for _, k := range set {
				if _, ok := d.Dimensions[k]; !ok {
					return fmt.Errorf("emf: dimension %q has no value", k)
				}
			}
		}
		return nil
	}
	if err := checkSets(d.DimensionSets); err != nil {
		return err
	}
	for i, m := range d.Metrics {
		if m.Name == "" {
			return errors.New("emf: a metric has no name")
		}
		if m.Name == "_aws" {
			return errors.New("emf: _aws is reserved")
		}
		_, isDim := d.Dimensions[m.Name]
		_, isProp := d.Properties[m.Name]
		if isDim || isProp {
			return fmt.Errorf("emf: metric %q collides with another member", m.Name)
		}
		for _, o := range d.Metrics[:i] {
			if o.Name == m.Name {
				return fmt.Errorf("emf: metric %q collides with another member", m.Name)
			}
		}
		if len(m.Values) > MaxValues {
			return fmt.Errorf("emf: metric %q has %d values, at most %d", m.Name, len(m.Values), MaxValues)
		}
		if err := checkSets(m.DimensionSets); err != nil {
			return err
		}
		if !finite(m.Value) || slices.ContainsFunc(m.Values, func(v float64) bool { return !finite(v) }) {
			return fmt.Errorf("emf: metric %q is not a finite number", m.Name)
		}
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func appendFloat(b []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendAny writes the common property types directly and anything else through
// encoding/json.
func appendAny(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return jsonstr.Append(b, x), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return b, errors.New("not a finite number")
		}
		return appendFloat(b, x), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}

// LineLevel is the level an EMF line carries: INFO, or the log filter's level when that
// is higher. With the JSON log format Lambda drops lines below its application log
// level and reads a line without a level as INFO, so a metric line must not rank lower.
func LineLevel(filter slog.Level) string {
	switch {
	case filter > slog.LevelError:
		return "FATAL"
	case filter > slog.LevelWarn:
		return "ERROR"
	case filter > slog.LevelInfo:
		return "WARN"
	}
	return "INFO"
}
