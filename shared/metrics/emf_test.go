package metrics

import (
	"bytes"
	"testing"
)

func TestEMFRefusesWhatCloudWatchWouldDrop(t *testing.T) {
	ok := func() EMF {
		return EMF{Namespace: "n", DimensionSets: [][]string{{"D"}}, Dimensions: map[string]string{"D": "v"},
			Metrics: []Metric{{Name: "M", Value: 1}}}
	}
	cases := []struct {
		name   string
		change func(*EMF)
	}{
		{"no namespace", func(d *EMF) { d.Namespace = "" }},
		{"no metrics", func(d *EMF) { d.Metrics = nil }},
		{"dimension without value", func(d *EMF) { d.DimensionSets = [][]string{{"E"}} }},
		{"metric dimension without value", func(d *EMF) { d.Metrics[0].DimensionSets = [][]string{{"E"}} }},
		{"metric named like a dimension", func(d *EMF) { d.Metrics = []Metric{{Name: "D"}} }},
		{"duplicate metric", func(d *EMF) { d.Metrics = append(d.Metrics, Metric{Name: "M"}) }},
		{"unnamed metric", func(d *EMF) { d.Metrics = []Metric{{Value: 1}} }},
		{"reserved member", func(d *EMF) { d.Properties = map[string]any{"_aws": 1} }},
		{"dimension also a property", func(d *EMF) { d.Properties = map[string]any{"D": 1} }},
		{"too many values", func(d *EMF) { d.Metrics[0].Values = make([]float64, MaxValues+1) }},
		{"not a number", func(d *EMF) { d.Metrics[0].Values = []float64{1, nan()} }},
	}
	if _, err := ok().MarshalJSON(); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := ok()
			c.change(&d)
			var buf bytes.Buffer
			if err := d.Write(&buf); err == nil || buf.Len() != 0 {
				t.Fatalf("want an error and nothing written, got %v, %q", err, buf.String())
			}
		})
	}
}

func nan() float64 { var z float64; return z / z }
