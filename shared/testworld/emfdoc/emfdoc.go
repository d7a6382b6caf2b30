// Package emfdoc parses CloudWatch Embedded Metric Format lines back into documents and
// series, so tests and tools can check what the functions publish the way CloudWatch
// would read it. The writer lives in the product package metrics; this reader is test
// world only.
package emfdoc

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/lpmtls/lpmtls/shared/metrics"
)

// Doc is a parsed EMF document in the specification's shape.
type Doc struct {
	AWS struct {
		Timestamp         int64       `json:"Timestamp"`
		CloudWatchMetrics []Directive `json:"CloudWatchMetrics"`
	} `json:"_aws"`
	// Root holds every top-level member.
	Root map[string]any `json:"-"`
}

// Directive is one MetricDirective of a document.
type Directive struct {
	Namespace  string     `json:"Namespace"`
	Dimensions [][]string `json:"Dimensions"`
	Metrics    []struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	} `json:"Metrics"`
}

// Series is one metric as CloudWatch publishes it: namespace, name and dimensions
// (name → value).
type Series struct {
	Namespace  string
	Name       string
	Unit       string
	Dimensions map[string]string
}

// Key is a stable spelling of the series, e.g. "lpmtls|Forwards|FunctionName=f,Outcome=delivered".
func (s Series) Key() string {
	keys := make([]string, 0, len(s.Dimensions))
	for k := range s.Dimensions {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := s.Namespace + "|" + s.Name + "|"
	for i, k := range keys {
		if i > 0 {
			out += ","
		}
		out += k + "=" + s.Dimensions[k]
	}
	return out
}

// Parse reads one EMF line and checks what the specification requires of it: a
// timestamp, at least one directive, every dimension a string member and every metric
// a number (or an array of up to 100 numbers) member.
func Parse(line []byte) (Doc, error) {
	var d Doc
	if err := json.Unmarshal(line, &d); err != nil {
		return d, fmt.Errorf("emf: not JSON: %w", err)
	}
	if err := json.Unmarshal(line, &d.Root); err != nil {
		return d, err
	}
	if d.AWS.Timestamp <= 0 || len(d.AWS.CloudWatchMetrics) == 0 {
		return d, errors.New("emf: no _aws timestamp or no CloudWatchMetrics directive")
	}
	for _, cw := range d.AWS.CloudWatchMetrics {
		if cw.Namespace == "" || len(cw.Metrics) == 0 || cw.Dimensions == nil {
			return d, errors.New("emf: a directive lacks its namespace, metrics or dimensions")
		}
		for _, set := range cw.Dimensions {
			for _, k := range set {
				if _, ok := d.Root[k].(string); !ok {
					return d, fmt.Errorf("emf: dimension %q has no string value at top level", k)
				}
			}
		}
		for _, m := range cw.Metrics {
			switch v := d.Root[m.Name].(type) {
			case float64:
			case []any:
				if len(v) == 0 || len(v) > metrics.MaxValues {
					return d, fmt.Errorf("emf: metric %q has %d values", m.Name, len(v))
				}
				for _, x := range v {
					if _, ok := x.(float64); !ok {
						return d, fmt.Errorf("emf: metric %q has a value that is not a number", m.Name)
					}
				}
			default:
				return d, fmt.Errorf("emf: metric %q has no numeric value at top level", m.Name)
			}
		}
	}
	return d, nil
}

// Series lists every series the document publishes.
func (d Doc) Series() []Series {
	var out []Series
	for _, cw := range d.AWS.CloudWatchMetrics {
		for _, set := range cw.Dimensions {
			for _, m := range cw.Metrics {
				s := Series{Namespace: cw.Namespace, Name: m.Name, Unit: m.Unit, Dimensions: map[string]string{}}
				for _, k := range set {
					s.Dimensions[k], _ = d.Root[k].(string)
				}
				out = append(out, s)
			}
		}
	}
	return out
}

// Sum is the total of a metric's value(s) in the document.
func (d Doc) Sum(name string) float64 {
	switch v := d.Root[name].(type) {
	case float64:
		return v
	case []any:
		t := 0.0
		for _, x := range v {
			f, _ := x.(float64)
			t += f
		}
		return t
	}
	return 0
}
