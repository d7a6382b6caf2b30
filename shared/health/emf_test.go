package health

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// emfDoc is the EMF specification's shape, parsed back from a written line.
type emfDoc struct {
	AWS struct {
		Timestamp         int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit string `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	} `json:"_aws"`
	Root map[string]any `json:"-"`
}

func parseEMF(t *testing.T, line string) emfDoc {
	t.Helper()
	var d emfDoc
	if err := json.Unmarshal([]byte(line), &d); err != nil {
		t.Fatalf("EMF line is not JSON: %v\n%s", err, line)
	}
	if err := json.Unmarshal([]byte(line), &d.Root); err != nil {
		t.Fatal(err)
	}
	if len(d.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("want one CloudWatchMetrics directive, got %s", line)
	}
	// The specification: every dimension and metric named must be a top-level member.
	cw := d.AWS.CloudWatchMetrics[0]
	for _, set := range cw.Dimensions {
		for _, k := range set {
			if _, ok := d.Root[k].(string); !ok {
				t.Fatalf("dimension %q has no string value at top level: %s", k, line)
			}
		}
	}
	for _, m := range cw.Metrics {
		if _, ok := d.Root[m.Name].(float64); !ok {
			t.Fatalf("metric %q has no numeric value at top level: %s", m.Name, line)
		}
	}
	return d
}

func TestEMFWrite(t *testing.T) {
	at := time.Date(2026, 11, 24, 12, 0, 0, 123e6, time.UTC)
	var buf bytes.Buffer
	err := EMF{
		Namespace:     "lpmtls",
		Timestamp:     at,
		DimensionSets: [][]string{{"AccountId"}, {}},
		Dimensions:    map[string]string{"AccountId": "90412233"},
		Metrics:       []Metric{{Name: "A", Unit: "Count", Value: 2}, {Name: "B", Unit: "Count", Value: 0}},
		Properties:    map[string]any{"checked": 2},
	}.Write(&buf)
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("want exactly one line, got %q", out)
	}
	d := parseEMF(t, strings.TrimSpace(out))
	cw := d.AWS.CloudWatchMetrics[0]
	if d.AWS.Timestamp != at.UnixMilli() || cw.Namespace != "lpmtls" {
		t.Fatalf("metadata: %+v", d.AWS)
	}
	if !reflect.DeepEqual(cw.Dimensions, [][]string{{"AccountId"}, {}}) {
		t.Fatalf("dimensions %v", cw.Dimensions)
	}
	if len(cw.Metrics) != 2 || cw.Metrics[0].Name != "A" || cw.Metrics[0].Unit != "Count" {
		t.Fatalf("metrics %+v", cw.Metrics)
	}
	if d.Root["A"] != 2.0 || d.Root["B"] != 0.0 || d.Root["AccountId"] != "90412233" || d.Root["checked"] != 2.0 {
		t.Fatalf("values %v", d.Root)
	}
}

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
		{"metric named like a dimension", func(d *EMF) { d.Metrics = []Metric{{Name: "D"}} }},
		{"duplicate metric", func(d *EMF) { d.Metrics = append(d.Metrics, Metric{Name: "M"}) }},
		{"unnamed metric", func(d *EMF) { d.Metrics = []Metric{{Value: 1}} }},
		{"reserved member", func(d *EMF) { d.Properties = map[string]any{"_aws": 1} }},
		{"dimension also a property", func(d *EMF) { d.Properties = map[string]any{"D": 1} }},
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
