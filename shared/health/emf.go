package health

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Metric is one value of an Embedded Metric Format document.
type Metric struct {
	Name  string
	Unit  string // a CloudWatch unit name, e.g. "Count"; empty means "None"
	Value float64
}

// EMF is one CloudWatch Embedded Metric Format document: CloudWatch Logs turns the
// line into metrics, so no PutMetricData call (and no permission for it) is needed.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
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

// Limits from the EMF specification.
const (
	maxEMFMetrics       = 100
	maxEMFDimensionKeys = 30
)

// Write writes d as one JSON line in a single Write call, so it never interleaves with
// other log lines on the same stream.
func (d EMF) Write(w io.Writer) error {
	b, err := d.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// MarshalJSON renders the document, refusing one CloudWatch would silently drop: the
// service does not report invalid EMF, the metrics just never appear.
func (d EMF) MarshalJSON() ([]byte, error) {
	if d.Namespace == "" {
		return nil, errors.New("emf: namespace is empty")
	}
	if len(d.Metrics) == 0 || len(d.Metrics) > maxEMFMetrics {
		return nil, fmt.Errorf("emf: need 1 to %d metrics, got %d", maxEMFMetrics, len(d.Metrics))
	}
	root := make(map[string]any, len(d.Properties)+len(d.Dimensions)+len(d.Metrics)+1)
	for k, v := range d.Properties {
		root[k] = v
	}
	for k, v := range d.Dimensions {
		if _, dup := d.Properties[k]; dup {
			return nil, fmt.Errorf("emf: %q is both a dimension and a property", k)
		}
		root[k] = v
	}
	sets := make([][]string, 0, len(d.DimensionSets))
	for _, set := range d.DimensionSets {
		if len(set) > maxEMFDimensionKeys {
			return nil, fmt.Errorf("emf: a dimension set has %d keys, at most %d", len(set), maxEMFDimensionKeys)
		}
		for _, k := range set {
			if _, ok := d.Dimensions[k]; !ok {
				return nil, fmt.Errorf("emf: dimension %q has no value", k)
			}
		}
		sets = append(sets, append([]string{}, set...)) // never null in the JSON
	}
	type directive struct {
		Name string `json:"Name"`
		Unit string `json:"Unit,omitempty"`
	}
	metrics := make([]directive, 0, len(d.Metrics))
	for _, m := range d.Metrics {
		if m.Name == "" {
			return nil, errors.New("emf: a metric has no name")
		}
		if _, dup := root[m.Name]; dup {
			return nil, fmt.Errorf("emf: metric %q collides with another member", m.Name)
		}
		root[m.Name] = m.Value
		metrics = append(metrics, directive{Name: m.Name, Unit: m.Unit})
	}
	if _, dup := root["_aws"]; dup {
		return nil, errors.New("emf: _aws is reserved")
	}
	root["_aws"] = map[string]any{
		"Timestamp": d.Timestamp.UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace":  d.Namespace,
			"Dimensions": sets,
			"Metrics":    metrics,
		}},
	}
	return json.Marshal(root)
}
